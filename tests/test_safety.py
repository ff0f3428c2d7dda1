"""Nothing destructive is in the suite's own code: remedies are text, never commands it runs.

(The sandbox may restart and rewrite its own servers; it is not part of what runs against a target.)
"""
import ast
import re
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "veza_synthetics"
SUITE_CODE = [p for p in LIBRARY.rglob("*.py") if "sandbox" not in p.parts]
DESTRUCTIVE = re.compile(r"flushdb|flushall|config_set|CONFIG SET|\bDROP\s|\bTRUNCATE\b|\bDELETE FROM\b|"
                         r"\bALTER\s|\bINSERT INTO\b|\bUPDATE\s+\w+\s+SET\b|pg_terminate_backend|shutdown", re.I)


def test_no_destructive_command_in_the_suite_code():
    for path in SUITE_CODE:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not DESTRUCTIVE.search(line), f"{path.name}:{number}: {line.strip()}"


def test_the_redis_probe_only_reads():
    tree = ast.parse((LIBRARY / "probes" / "redis.py").read_text())
    calls = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
             and node.func.value.id in ("client", "redis")}
    assert calls <= {"from_url", "Redis", "ping", "info", "ttl"}, calls


def test_the_redis_fixture_refuses_writes():
    from veza_synthetics.fixtures import ReadOnlyRedis
    assert not ReadOnlyRedis.READS & {"set", "delete", "flushdb", "flushall", "expire", "config_set", "eval"}
    readonly = ReadOnlyRedis(client=None)  # refused before any client is touched
    for command in ("set", "flushdb", "delete"):
        try:
            getattr(readonly, command)
        except PermissionError:
            continue
        raise AssertionError(f"{command} was not refused")


def test_postgres_sessions_are_read_only_with_a_statement_timeout():
    source = (LIBRARY / "probes" / "postgres.py").read_text()
    assert "default_transaction_read_only=on" in source and "statement_timeout=" in source
