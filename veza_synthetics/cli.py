"""`veza-synth`: the sandbox, the suite run with its reports, and the detection matrix."""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from .catalog import load as load_catalog
from .errors import SetupError
from .profile import SANDBOX_VARIANTS
from .run import NO_DATA_EXIT
from .sandbox.limits import TIME_SCALE

REPO_TOOLS = Path(__file__).resolve().parents[1] / "tools"  # npm-installed tools of a checkout (`make setup`)


def _sandbox_up(args: argparse.Namespace, argv: list[str]) -> int:
    from .profile import ENV_DIR
    from .sandbox.guard import WORKDIR_VAR
    from .sandbox.run import serve
    if WORKDIR_VAR not in os.environ:  # not yet under the guard: nothing may outlive this command, however it ends
        return _guarded(argv)
    inject = load_catalog().validate_faults([f.strip() for f in (args.inject or "").split(",") if f.strip()])
    base = Path(args.base_profile) if args.base_profile else ENV_DIR / SANDBOX_VARIANTS[args.variant]
    if args.time_scale <= 0:
        raise SetupError(f"--time-scale must be > 0 (1: production's windows), not {args.time_scale:g}")
    asyncio.run(serve(inject, Path(args.profile_out) if args.profile_out else None, base,
                      wait_prometheus=not args.no_wait_prometheus, variant=args.variant, time_scale=args.time_scale))
    return 0


def _guarded(argv: list[str]) -> int:
    """This command again, under the sandbox's guard (sandbox/guard.py), which dies with this process: a
    SIGKILLed `sandbox up` leaves no server, no port and no folder. Ctrl-C reaches the whole process group;
    this process waits for the guard's cleanup, and passes a SIGTERM on."""
    from .sandbox.guard import die_with_parent
    guard = subprocess.Popen([sys.executable, "-m", "veza_synthetics.sandbox.guard", sys.executable, "-m",
                              "veza_synthetics", *argv], preexec_fn=die_with_parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: guard.send_signal(signal.SIGTERM))
    return guard.wait()


def _check_markers(expression: str) -> None:
    known = set(load_catalog().markers())
    unknown = set(re.findall(r"[A-Za-z_]\w*", expression)) - known - {"and", "or", "not"}
    if unknown:
        raise SetupError(f"-m: unknown marker(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")


def _checks_dir() -> Path:
    """tests_synthetic/: in the current directory, else beside the package (a checkout or editable install),
    so the gate runs from any directory."""
    from .plugin import CHECKS_DIR
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (base / CHECKS_DIR).is_dir():
            return base / CHECKS_DIR
    raise SetupError(f"veza-synth run: no {CHECKS_DIR}/ in {Path.cwd()} nor beside the installed package: run it "
                     f"from the veza-synthetics repository, or `pytest YOUR_CHECKS --env NAME|PATH`")


def _run(args: argparse.Namespace, extra: list[str]) -> int:
    """pytest with the report options; exit 0 all passed, 1 a check failed, 2 could not start, 3 a check
    measured nothing (unless --allow-no-data)."""
    import pytest
    if args.markers:
        _check_markers(args.markers)
    cmd = [str(_checks_dir()), "-p", "no:cacheprovider"]
    for flag, value in (("--env", args.env), ("-m", args.markers), ("--location", args.location),
                        ("--inject", args.inject), ("--pushgateway", args.pushgateway)):
        cmd += [flag, value] if value else []
    cmd += [flag for flag, on in (("--fail-on-degraded", args.fail_on_degraded), ("--allow-no-data", args.allow_no_data))
            if on]
    reports_dir = Path(args.reports_dir)
    code = int(pytest.main(cmd + ["--reports-dir", str(reports_dir)] + extra))
    if code == 5:
        print("veza-synth: no check selected", file=sys.stderr)
        return 2
    if code == NO_DATA_EXIT:
        return 3
    return code if code in (0, 1) else 2


def _ids(args: argparse.Namespace) -> int:
    from .reports.results import ids_with
    print(ids_with(Path(args.results), "failed" if args.command == "failed-ids" else "no_data"))
    return 0


def _notify(args: argparse.Namespace) -> int:
    """For $GITHUB_OUTPUT: action=open|comment|quiet and the issue's title (the body is summary.md)."""
    import json

    from .history import notification
    from .record import upgrade
    try:
        run = upgrade(json.loads(Path(args.results).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise SetupError(f"{args.results}: not a readable results.json ({exc})") from None
    for key, value in notification(run).items():
        print(f"{key}={value}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    """One verdict from several locations' results.json: written to --out as results.json and summary.md."""
    from .merge import merge, read
    from .profile import quorum_of
    from .redact import PATTERNS_ONLY
    from .reports import markdown, results
    quorum = args.quorum if args.quorum is not None else (quorum_of(args.env) if args.env else 0)
    run = merge(read([Path(p) for p in args.results]), quorum)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results.write(run, out / "results.json", PATTERNS_ONLY)  # each location's results were masked when written
    markdown.write(run, out / "summary.md", PATTERNS_ONLY)
    failed = [c["id"] for c in run["checks"] if c["outcome"] == "failed"]
    partial = [c["id"] for c in run["checks"] if c["outcome"] == "degraded" and "partial outage" in c["summary"]]
    print(f"merged {len(run['locations'])} location(s), quorum {run['quorum']}: failed {', '.join(failed) or 'none'}; "
          f"partial outage {', '.join(partial) or 'none'} -> {out}")
    return 1 if failed else 0


def _allure(args: argparse.Namespace) -> int:
    """Allure 3's report of one run folder, into RUN/allure-report. Its history (transitions, flaky marks,
    trends) lives beside the suite's history of the same env and location, kept and bounded alike."""
    import json
    import shutil
    import subprocess

    from .history import ALLURE_HISTORY, folder
    run_dir = Path(args.run)
    try:
        run = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SetupError(f"{run_dir}: not a run folder with a results.json ({exc})") from None
    binary = shutil.which("allure") or str(REPO_TOOLS / "allure" / "node_modules" / ".bin" / "allure")
    if not Path(binary).exists():
        raise SetupError("Allure 3 is not installed: `make setup` (npm install in tools/allure), or npm install -g allure")
    history_dir = folder(Path(args.history) if args.history else run_dir.resolve().parent / "history",
                         run["env"], run["location"])
    history_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "allurerc.json"
    config.write_text(json.dumps({"name": f"Veza synthetic checks: {run['env']} ({run['location']})",
                                  "historyPath": str((history_dir / ALLURE_HISTORY).resolve())}))
    done = subprocess.run([binary, "generate", str(run_dir / "allure-results"), "-o", str(run_dir / "allure-report"),
                           "-c", str(config), "--history-limit", str(args.keep)], capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        raise SetupError(f"allure generate failed: {(done.stderr or done.stdout).strip()[-300:]}")
    print(f"{run_dir / 'allure-report' / 'index.html'} (history: {history_dir / ALLURE_HISTORY})")
    return 0


def _matrix(args: argparse.Namespace) -> int:
    from .matrix import render
    print(render(Path(args.results) if args.results else None))
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    try:
        from .dashboard import render
    except ImportError:
        raise SetupError("the dashboard is generated with grafana-foundation-sdk: pip install "
                         "'veza-synthetics[grafana]' (or import the shipped grafana/veza-synthetics.json)") from None
    text = render(load_catalog())
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import examine, render
    from .profile import load
    profile = load(args.env)
    found = examine(profile, load_catalog())
    print(profile.redactor().text(render(found)))  # an error's text may carry a URL's token or a DSN's password
    return 1 if found.problems else 0


def _reference(args: argparse.Namespace) -> int:
    from .reference import write
    write(load_catalog(), Path(args.out))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from . import quarantine
    from .profile import load
    from .serve import serve, webconfig
    catalog = load_catalog()
    profile = load(args.env or "sandbox")
    asked = [s.strip() for s in (args.symptoms or "").split(",") if s.strip()]
    unknown = sorted(set(asked) - set(catalog.symptoms))
    if unknown:
        raise SetupError(f"--symptoms: unknown check(s) {', '.join(unknown)}; known: {', '.join(sorted(catalog.symptoms))}")
    web = webconfig.load(args.web_config_file) if args.web_config_file else webconfig.WebConfig()
    quarantined = quarantine.load(Path(args.quarantine), dt.date.today()) if args.quarantine else {}
    return serve(profile, catalog, asked or sorted(catalog.symptoms), args.location or profile.location,
                 args.listen or profile.serve.listen, Path(args.history), web, quarantined, args.log_format)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="veza-synth", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sandbox = sub.add_parser("sandbox", help="the reference Veza stack").add_subparsers(dest="action", required=True)
    up = sandbox.add_parser("up", help="start the sandbox in the foreground until Ctrl-C")
    up.add_argument("--inject", default="", help="fault ids to switch on, comma-separated")
    up.add_argument("--profile-out", help="write an environment profile pointing at the sandbox here")
    up.add_argument("--no-wait-prometheus", action="store_true",
                    help="ready before Prometheus's first scrapes (for runs without health/performance checks)")
    up.add_argument("--variant", choices=tuple(SANDBOX_VARIANTS), default="contract",
                    help="contract: the guide's Veza; deployed: the public Veza code with its dev server; "
                         "production-server: the same with its production server")
    up.add_argument("--time-scale", type=float, default=TIME_SCALE,
                    help=f"how many times shorter the rate limits' windows are than production's (default {TIME_SCALE:g}, "
                         "the sandbox profiles' pace; 1: production's, for a benchmark at production's pace)")
    up.add_argument("--base-profile", help="the profile the written one extends (default: fixtures/environments/sandbox.toml)")
    run = sub.add_parser("run", help="run the suite and write the reports")
    run.add_argument("--env")
    run.add_argument("-m", dest="markers")
    run.add_argument("--location")
    run.add_argument("--inject")
    run.add_argument("--pushgateway", help="Pushgateway URL for one gauge set per check")
    run.add_argument("--reports-dir", default="reports")
    run.add_argument("--fail-on-degraded", action="store_true", help="exit 1 on degraded checks too")
    run.add_argument("--allow-no-data", action="store_true", help="exit 0, not 3, when a check measured nothing")
    for command, what in (("failed-ids", "failed"), ("no-data-ids", "measured nothing")):
        ids = sub.add_parser(command, help=f"the ids of the checks that {what} in a results.json (the nightly's issue)")
        ids.add_argument("results")
    notify = sub.add_parser("notify", help="the nightly's news from a results.json: open (a new failure), "
                                           "comment (a recovery) or quiet, with the issue's title")
    notify.add_argument("results")
    merge = sub.add_parser("merge", help="one verdict from several locations' runs of one env, by quorum")
    merge.add_argument("results", nargs="+", help="results.json files or run folders, one per location")
    merge.add_argument("--env", help="the profile whose `quorum` applies (its ${VAR} references are not needed)")
    merge.add_argument("--quorum", type=int, help="locations that must fail a check (default: the profile's "
                                                  "quorum, else a majority)")
    merge.add_argument("--out", default="reports/merged", help="folder for the merged results.json and summary.md")
    allure = sub.add_parser("allure", help="Allure 3's report of a run folder, with its history kept beside the suite's")
    allure.add_argument("run", nargs="?", default="reports/latest", help="a run folder (default: reports/latest)")
    allure.add_argument("--history", help="the history folder (default: the run folder's ../history)")
    allure.add_argument("--keep", type=int, default=30, help="runs Allure keeps in its history (default: 30)")
    board = sub.add_parser("dashboard", help="the Grafana dashboard of serve's metrics, generated from the catalog")
    board.add_argument("--out", help="write it here (default: stdout)")
    doctor = sub.add_parser("doctor", help="before the first night: reach, credentials, grants, the platform's shapes "
                                           "(the settings that match, as TOML), the cost; exit 0 ready, 1 problems")
    doctor.add_argument("--env", required=True, help="the profile: a name in fixtures/environments or a .toml path")
    ref = sub.add_parser("reference", help="the settings' and checks' reference pages, from settings.py and the catalog")
    ref.add_argument("--out", default="docs/reference", help="their folder (default: docs/reference)")
    served = sub.add_parser("serve", help="run the checks in rounds (serve.interval_s) for Prometheus to scrape")
    served.add_argument("--env", help="the profile (default: sandbox; the sandbox itself is not started)")
    served.add_argument("--symptoms", help="the check ids to run, comma-separated (default: all)")
    served.add_argument("--location", help="the location label (default: the profile's)")
    served.add_argument("--listen", help="HOST:PORT for /metrics (default: the profile's serve.listen; port 0: any)")
    served.add_argument("--history", default="reports/history", help="the run-to-run memory every round joins")
    served.add_argument("--quarantine", help="a quarantine file (TOML): checks whose failures report but never page")
    served.add_argument("--log-format", choices=("text", "ecs"), default="text",
                        help="ecs: each check result as an Elastic Common Schema line on stdout, for Filebeat")
    served.add_argument("--web.config.file", dest="web_config_file",
                        help="TLS and basic auth for every route, in exporter-toolkit's format (docs/ways/serve.md)")
    matrix = sub.add_parser("matrix", help="print the detection matrix (faults x checks)")
    matrix.add_argument("results", nargs="?", help="a results.json or a run folder: show the last measured outcomes")
    args, extra = parser.parse_known_args(argv)
    try:
        if args.command == "sandbox":
            return _sandbox_up(args, sys.argv[1:] if argv is None else argv)
        if args.command == "run":
            return _run(args, extra)
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        commands = {"notify": _notify, "merge": _merge, "allure": _allure, "serve": _serve, "dashboard": _dashboard,
                    "reference": _reference, "doctor": _doctor,
                    "matrix": _matrix, "failed-ids": _ids, "no-data-ids": _ids}
        return commands[args.command](args)
    except SetupError as exc:
        print(f"veza-synth: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
