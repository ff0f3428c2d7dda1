"""What the profile's credentials open: the synthetic login and the admin's role, the database role's grants
(pg_monitor, the session store's table, nothing that writes), Redis, the Prometheus jobs and rule groups the profile
names; and what a run and serve cost against the platform's limits."""
from __future__ import annotations

import psycopg

from ..client import login_failure
from ..planning import plan
from ..probes import auth, postgres, prometheus, redis
from ..profile import Profile
from ..target import Load, Target
from .findings import Findings

# What Veza's production server allows one address (B12): logins per 15 minutes, requests per minute.
PLATFORM_LOGINS_PER_15_MIN, PLATFORM_REQUESTS_PER_MIN = 3, 30


def credentials(target: Target, found: Findings) -> None:
    p = target.profile
    if not (p.backend.url and p.accounts.user_email):
        found.add("accounts.user_email", "no backend or no synthetic account: the checks that log in say so")
        return
    login = target.session()
    if login.session is None:
        found.add("accounts.user_email", f"login as {p.accounts.user_email}: {login_failure(login)}",
                  "accounts.user_email / accounts.user_password: the synthetic login is refused")
        return
    role = auth.claims(login.session.access_token).get("role", "?")
    found.add("accounts.user_email", f"login as {p.accounts.user_email} works (role {role})",
              "accounts.user_email: the synthetic account is an admin; a user's is needed" if role == "admin" else "")
    if p.accounts.admin_email:
        admin = target.session(admin=True)
        admin_role = auth.claims(admin.session.access_token).get("role") if admin.session else None
        found.add("accounts.admin_email", f"login as {p.accounts.admin_email}: " +
                  (f"role {admin_role}" if admin.session else login_failure(admin)),
                  "" if admin_role == "admin" else "accounts.admin_email: not an admin's account (or refused)")


def grants(target: Target, found: Findings) -> None:
    p, timeout = target.profile, target.profile.timeouts.request_s
    if p.has_postgres:
        _database(target, found)
    if p.has_redis:
        pong = redis.inspect(target.transport, p.redis.url, p.redis.password, timeout)
        found.add("redis.url", f"PING answered in {pong.measurements['ping_ms']:g} ms" if not pong.error else pong.error,
                  f"redis.url / redis.password: {pong.error}" if pong.error else "")
    if p.has_prometheus:
        seen = prometheus.overview(target.transport, p.prometheus.url, timeout)
        if seen.error:
            found.add("prometheus.url", seen.error, f"prometheus.url: {seen.error}")
            return
        jobs = prometheus.query(target.transport, p.prometheus.url, "count by (job) (up)", timeout)
        present = {str(s["labels"].get("job")) for s in jobs.series}
        wanted = [j.strip() for j in p.prometheus.jobs.split(",") if j.strip()]
        missing = [job for job in wanted if job not in present]
        found.add("prometheus.jobs", f"jobs scraped: {', '.join(sorted(present))}",
                  f"prometheus.jobs: {', '.join(missing)} not scraped here" if missing else "")
        if missing:  # the checks judge the jobs that are there; the others' absence is said, not failed each night
            found.setting("prometheus", "jobs", ",".join(job for job in wanted if job in present))
        scraped = {job: s for job, s in seen.evidence["scrape_intervals_s"].items() if job in (wanted or present)}
        if scraped:  # the checks wait up to twice it for the exporters' figures to hold their own sample
            longest = max(scraped.values())
            found.compare("prometheus.scrape_interval_s", p.prometheus.scrape_interval_s, longest,
                          f"the jobs are scraped every {', '.join(f'{job} {s:g} s' for job, s in sorted(scraped.items()))}")
        groups = set(seen.evidence["rule_groups"])
        absent = sorted(p.prometheus.group_names() - groups)
        found.add("prometheus.rule_groups", f"rule groups loaded: {', '.join(sorted(groups)) or 'none'}",
                  f"prometheus.rule_groups: {', '.join(absent)} not loaded" if absent else "")


def _database(target: Target, found: Findings) -> None:
    cfg, timeout = target.profile.postgres, target.profile.timeouts.request_s
    try:
        with postgres.connect(target.transport, cfg, timeout) as conn:
            role = postgres.rows(conn, "SELECT current_user AS name, pg_has_role(current_user, 'pg_monitor', 'MEMBER') "
                                       "AS monitor, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS super")[0]
            writes = postgres.rows(conn, "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                         "WHERE n.nspname = 'public' AND c.relkind = 'r' AND "
                                         "has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE')")  # what changes rows
            tokens = postgres.rows(conn, "SELECT to_regclass('public.refresh_tokens') IS NOT NULL AS present, "
                                         "CASE WHEN to_regclass('public.refresh_tokens') IS NULL THEN NULL ELSE "
                                         "has_table_privilege('public.refresh_tokens', 'SELECT') END AS readable")[0]
    except (psycopg.Error, OSError) as exc:
        found.add("postgres.user", f"{cfg.user}@{cfg.host}:{cfg.port}/{cfg.dbname}: {exc}",
                  "postgres.host / postgres.user / postgres.password: the suite's role cannot connect")
        return
    found.add("postgres.user", f"{role['name']}: pg_monitor {'yes' if role['monitor'] else 'no'}",
              "" if role["monitor"] else f"postgres.user: GRANT pg_monitor TO {role['name']}")
    found.add("postgres.user writes", "may write to: " + (", ".join(r["relname"] for r in writes) or "nothing"),
              f"postgres.user: {role['name']} may write ({'a superuser' if role['super'] else 'tables'}): "
              "give the suite a role of its own with pg_monitor only" if writes or role["super"] else "")
    if target.profile.auth.session_store == "postgres":
        found.add("auth.session_store", f"refresh_tokens readable: {tokens['readable']}",
                  "" if tokens["readable"] else f"auth.session_store = \"postgres\": GRANT SELECT ON refresh_tokens TO "
                                                f"{role['name']}")


def cost(profile: Profile, found: Findings, spent: Load) -> None:
    """Doctor's own logins and requests, a run's and serve's, against what Veza's production server allows an
    address: a run started right after doctor shares doctor's login window."""
    logins = profile.auth.max_logins_per_run
    left = PLATFORM_LOGINS_PER_15_MIN - spent.logins
    found.add("cost of doctor", f"{spent.logins} login(s), {spent.api_requests} API requests; the production server "
              f"allows an address {PLATFORM_LOGINS_PER_15_MIN} logins per 15 minutes: "
              + (f"a run from here within 15 minutes may log in {left} more time(s)" if left >= logins else
                 f"a run from here within 15 minutes, which may log in {logins} time(s), would meet 429 at its login: "
                 "wait 15 minutes"))
    planned = plan(profile, profile.sampling.max_rps)
    found.add("cost of a run", f"{logins} login(s) at most (auth.max_logins_per_run), {planned.sample_requests} sampled requests "
              f"at {profile.sampling.max_rps:g}/s ({60 * profile.sampling.max_rps:g} a minute; the production server "
              f"allows {PLATFORM_REQUESTS_PER_MIN})",
              "sampling.max_rps: above what the production server allows an address" if
              60 * profile.sampling.max_rps > PLATFORM_REQUESTS_PER_MIN and profile.kind != "sandbox" else "")
    s = profile.serve
    per_15 = s.max_logins * 900 / s.login_window_s
    per_min = s.max_requests * 60 / s.request_window_s
    found.add("cost of serve", f"at most {per_15:g} login(s) per 15 minutes and {per_min:g} requests a minute "
              f"(serve.max_logins, serve.max_requests; the production server allows {PLATFORM_LOGINS_PER_15_MIN} and "
              f"{PLATFORM_REQUESTS_PER_MIN})",
              "serve.max_logins / serve.max_requests: above the production server's limits" if
              (per_15 > PLATFORM_LOGINS_PER_15_MIN or per_min > PLATFORM_REQUESTS_PER_MIN) and profile.kind != "sandbox"
              else "")
