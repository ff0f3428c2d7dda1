"""The sandbox's stream server: signed progressive MP3 with Range support, and its faults."""
from __future__ import annotations

import asyncio
import gzip
import hmac
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from . import audio
from .answers import sign_stream
from .variants import STREAMS

EXPIRY_TOLERANCE_S = 300  # the public stream_server refuses an expired URL only past this (S2)

if TYPE_CHECKING:
    from .state import SandboxState

CHUNK = 16 * 1024


class StreamServer:
    """The contract's stream server; under the deployed variant, the public code's stream_server."""
    name = audio.CANARY_NAME  # the canary's stream name

    def __init__(self, state: SandboxState):
        self.s, self.shape = state, STREAMS[state.variant]
        self.public_code = self.shape.public_code
        self.media_type = self.shape.content_type
        self.files = {key: path.read_bytes() for key, path in audio.canary_files().items()}
        reg = self.registry = CollectorRegistry()
        self.requests = Counter("http_requests_total", "HTTP requests", ["method", "endpoint", "status"], registry=reg)
        self.bytes_sent = Counter("veza_stream_bytes_total", "Audio bytes sent", registry=reg)

    def asgi(self) -> Starlette:
        return Starlette(routes=[
            Route("/stream/{name}", self.stream),
            *([Route("/info/{name}", self.info)] if self.shape.info_route else []),
            Route("/health", self.health),
            Route("/health/detailed", self.health_detailed),
            Route("/metrics", self.metrics),
        ])

    def _served(self, quality: str) -> tuple[bytes, int]:
        # The public stream server ignores the quality and serves the file as it was encoded (S3): 320 kbps here.
        asked = "high" if self.public_code else quality
        kbps = audio.DEGRADED_KBPS if self.s.faults.on("stream.low_bitrate") else audio.QUALITIES[asked]
        body = self.files[(kbps, self.s.faults.on("stream.silence_gap"))]
        if self.s.faults.on("stream.file_truncated"):  # the file on disk is cut: served whole, as it is
            body = body[:len(body) // 2]
        return body, kbps

    def _count(self, endpoint: str, status: int) -> None:
        self.requests.labels("GET", endpoint, str(status)).inc()

    def _refused(self, name: str, expires_text: str, sig: str) -> Response | None:
        """The signature check: the contract refuses an expired URL at once, in JSON; the public
        stream_server only past a 300 s tolerance, with both refusals in plain text (S2)."""
        expires = int(expires_text) if expires_text.isdigit() else 0
        signed = hmac.compare_digest(sig, sign_stream(name, expires, self.s.stream_secret))
        if self.public_code:
            late = expires + EXPIRY_TOLERANCE_S < time.time()
            return PlainTextResponse("Invalid signature", 403) if not signed or late else None
        if not signed:
            return JSONResponse({"error": "Invalid signature"}, 403)
        return JSONResponse({"error": "URL expired"}, 403) if expires < time.time() else None

    async def stream(self, request: Request) -> Response:
        name, q = request.path_params["name"], request.query_params
        if name != self.name:
            self._count("/stream/{name}", 404)
            return self._not_found()
        refused = self._refused(name, q.get("expires", ""), q.get("sig", ""))
        if refused is not None:
            self._count("/stream/{name}", 403)
            return refused
        quality = q.get("quality", "medium")
        if quality not in audio.QUALITIES and not self.public_code:
            self._count("/stream/{name}", 400)
            return JSONResponse({"error": f"unknown quality {quality}"}, 400)
        body, kbps = self._served(quality)
        start, status, headers = 0, 200, {"Accept-Ranges": "bytes"}
        if "range" in request.headers:
            span = _byte_range(request.headers["range"], len(body))
            if span is None:
                self._count("/stream/{name}", 416)
                return Response(status_code=416, headers={"Content-Range": f"bytes */{len(body)}"})
            (start, end), status = span, 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
            body = body[:end + 1]
        if self.s.faults.on("stream.slow_start"):
            await asyncio.sleep(3)
        self._count("/stream/{name}", status)
        headers["Content-Length"] = str(len(body) - start)
        if self.public_code and "gzip" in request.headers.get("accept-encoding", ""):
            # tower-http's CompressionLayer (S5): gzip whenever the client accepts it, no Content-Length
            body, start = gzip.compress(body[start:], compresslevel=6), 0
            headers["Content-Encoding"] = "gzip"
            del headers["Content-Length"]
        return StreamingResponse(self._chunks(body, start, kbps), status_code=status,
                                 media_type=self.media_type, headers=headers)

    async def _chunks(self, body: bytes, start: int, kbps: int) -> AsyncIterator[bytes]:
        faults = self.s.faults
        cut_at = int(len(body) * 0.6) if faults.on("stream.truncate") else None
        bytes_per_s = kbps * 1000 / 8 * faults.param("stream.throttle")
        began = time.monotonic()
        sent = 0
        for offset in range(start, len(body), CHUNK):
            if cut_at is not None and offset >= cut_at:
                raise ConnectionAbortedError("stream.truncate: connection closed mid-body")
            chunk = body[offset:offset + CHUNK]
            if faults.on("stream.throttle"):
                due = began + sent / bytes_per_s
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            sent += len(chunk)
            self.bytes_sent.inc(len(chunk))
            yield chunk

    def _not_found(self) -> Response:
        return JSONResponse({"error": "stream not found"}, 404)

    async def info(self, request: Request) -> Response:
        if request.path_params["name"] != self.name:
            return self._not_found()
        return JSONResponse({"name": self.name, "duration_s": audio.DURATION_S, "sample_rate": audio.SAMPLE_RATE,
                             "channels": 2, "qualities": audio.QUALITIES})

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "healthy", "service": "veza-stream-server"})

    async def health_detailed(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "Healthy", "checks": {"canary": {"status": "Healthy", "files": len(self.files)}}})

    async def metrics(self, request: Request) -> Response:
        if not self.shape.prometheus_metrics:  # JSON in the public stream server (S7)
            return JSONResponse({"active_streams": 0, "files": len(self.files)})
        return PlainTextResponse(generate_latest(self.registry).decode(), media_type="text/plain; version=0.0.4")


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """`bytes=first-[last]` as (first, last), or None when it is not a satisfiable range of `size` bytes."""
    try:
        first, last = header.removeprefix("bytes=").split("-")
        start, end = int(first), int(last) if last else size - 1
    except ValueError:
        return None
    return (start, end) if 0 <= start <= end < size else None


class SimpleStreamServer(StreamServer):
    """The public code's other stream binary, simple_stream_server (S8): files by name with their extension,
    no signature, audio/mpeg, a correct Range, the quality ignored and gzip whenever asked (S5, as
    stream_server); /health and /info/{file} ({filename, size, content_type}), no /health/detailed, no /metrics."""
    name = f"{audio.CANARY_NAME}.mp3"

    def __init__(self, state: SandboxState):
        super().__init__(state)
        self.public_code, self.media_type = True, "audio/mpeg"

    def asgi(self) -> Starlette:
        return Starlette(routes=[Route("/health", self.health), Route("/stream/{name}", self.stream),
                                 Route("/info/{name}", self.info), Route("/list", self.listing)])

    def _refused(self, name: str, expires_text: str, sig: str) -> Response | None:
        return None  # it checks no signature

    def _not_found(self) -> Response:
        return Response(status_code=404)  # axum's bare StatusCode::NOT_FOUND

    async def info(self, request: Request) -> Response:
        if request.path_params["name"] != self.name:
            return self._not_found()
        size = len(self._served("high")[0])
        return JSONResponse({"filename": self.name, "size": size, "content_type": "audio/mpeg"})

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "healthy", "timestamp": int(time.time()), "service": "veza-stream-server",
                             "version": "0.2.0"})

    async def listing(self, request: Request) -> JSONResponse:
        return JSONResponse([self.name])
