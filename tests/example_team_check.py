"""A team's own checks, written with the plugin's fixtures (the README shows this file)."""
import asyncio
import json
import time

import pytest


def test_track_listing_is_fast(veza_api, veza_verdict):
    def measure(v, attempt):
        response = veza_api.get("/api/v1/tracks", params={"limit": 20})
        v.require(response.status_code == 200, f"tracks answered {response.status_code}", ok_text="tracks 200")
        v.against("latency_ms", response.elapsed.total_seconds() * 1000, label="tracks latency")

    veza_verdict("team.tracks_listing", measure, runbook="Look for a missing index on tracks (EXPLAIN the query).",
                 thresholds={"latency_ms": {"warn": 300, "fail": 1000, "unit": "ms"}})


@pytest.mark.asyncio
async def test_chat_answers_ping(veza_chat, veza_verdict):
    async def measure(v, attempt):
        chat = await veza_chat()
        async with asyncio.timeout(5):  # every wait is bounded
            while json.loads(await chat.recv()).get("type") != "ActionConfirmed":
                pass
            sent = time.perf_counter()
            await chat.send(json.dumps({"type": "Ping"}))
            while json.loads(await chat.recv()).get("type") != "Pong":
                pass
        v.against("pong_ms", (time.perf_counter() - sent) * 1000, label="Pong")

    await veza_verdict.confirm("team.chat_ping", measure, thresholds={"pong_ms": {"fail": 500, "unit": "ms"}})
