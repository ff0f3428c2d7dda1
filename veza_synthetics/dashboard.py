"""The Grafana dashboard of `veza-synth serve`'s metrics and the runs' (through the Pushgateway), generated from
the catalog (grafana-foundation-sdk, the `grafana` extra): the outcome of every check over time, each check's
measurements beside its warn and fail levels, the time since each last passed, the budgets spent, the prober's
own health, the nightly's and the gate's last runs. Provisioning-ready JSON
(`veza-synth dashboard`; the repository keeps grafana/veza-synthetics.json current)."""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from .catalog import Catalog
from .outcome import Outcome

UID = "veza-synthetics"
PROBER_JOB = "veza_synthetics_serve"  # the job name serve.rules.yml and docs/ways/serve.md's scrape config use
SOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
AT = 'location=~"$location"'
OUTCOMES = tuple(Outcome)  # each outcome's code on the timeline: its place here


def _query(expr: str, legend: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend)


def outcome_code() -> str:
    """One number per check and variant: the code of its last round's outcome (serve sets exactly one to 1)."""
    terms = [f'{code} * sum without (outcome, instance, job) (veza_synthetic_check_outcome{{{AT}, outcome="{o.value}"}})'
             for code, o in enumerate(OUTCOMES) if code]
    return " + ".join(terms)


def _timeline() -> statetimeline.Panel:
    mappings = model.ValueMap({str(code): model.ValueMappingResult(text=o.value, color=o.colour, index=code)
                               for code, o in enumerate(OUTCOMES)})
    return (statetimeline.Panel().title("Outcome of every check, each round").datasource(SOURCE).span(24).height(14)
            .mappings([mappings]).with_target(_query(outcome_code(), "{{symptom}} ({{variant}})")))


def _thresholds(symptom_id: str, title: str) -> timeseries.Panel:
    selector = f'symptom="{symptom_id}", {AT}'
    return (timeseries.Panel().title(f"{symptom_id}: {title}").datasource(SOURCE).span(8).height(8)
            .description("What each round measured, beside the check's warn and fail levels (base units).")
            .with_target(_query(f"veza_synthetic_check_measurement{{{selector}}}", "{{threshold}} ({{unit}})"))
            .with_target(_query(f'veza_synthetic_check_threshold{{{selector}, level=~"warn|fail"}}',
                                "{{threshold}} {{level}}")))


def _stat(title: str, expr: str, legend: str, unit: str, span: int = 6) -> stat.Panel:
    return stat.Panel().title(title).datasource(SOURCE).span(span).height(6).unit(unit).with_target(_query(expr, legend))


def _series(title: str, unit: str, *queries: tuple[str, str]) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).datasource(SOURCE).span(8).height(8).unit(unit)
    for expr, legend in queries:
        panel = panel.with_target(_query(expr, legend))
    return panel


def build(catalog: Catalog) -> dashboard.Dashboard:
    board = (dashboard.Dashboard("Veza synthetic checks").uid(UID).tags(["veza", "synthetics"]).refresh("1m")
             .time("now-6h", "now")
             .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
             .with_variable(dashboard.QueryVariable("location").label("Location").datasource(SOURCE)
                            .query("label_values(veza_synthetic_check_outcome, location)").include_all(True)
                            .all_value(".*").multi(True).refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED))
             .with_row(dashboard.Row("Every check")).with_panel(_timeline())
             .with_panel(_stat("Since each check last passed",
                               f"time() - veza_synthetic_check_last_success_timestamp_seconds{{{AT}}}", "{{symptom}}", "s",
                               24)))
    for category in sorted({s.category for s in catalog.symptoms.values()}):
        board = board.with_row(dashboard.Row(f"{category}: measurements and thresholds"))
        for symptom in sorted((s for s in catalog.symptoms.values() if s.category == category and s.thresholds),
                              key=lambda s: s.id):
            board = board.with_panel(_thresholds(symptom.id, symptom.title_en))
    return (board.with_row(dashboard.Row("The prober"))
            .with_panel(_series("Budget spent and its limit", "short",
                                (f"veza_synthetic_budget_spent{{{AT}}}", "{{budget}} spent"),
                                (f"veza_synthetic_budget_limit{{{AT}}}", "{{budget}} limit")))
            .with_panel(_series("Rounds", "short",
                                (f"increase(veza_synthetic_rounds_total{{{AT}}}[$__rate_interval])", "rounds"),
                                (f"increase(veza_synthetic_round_errors_total{{{AT}}}[$__rate_interval])",
                                 "could not complete")))
            .with_panel(_series("Round duration", "s", (f"veza_synthetic_round_duration_seconds{{{AT}}}", "{{location}}")))
            .with_panel(_stat("Prober up", f'up{{job="{PROBER_JOB}"}}', "{{instance}}", "none", 8))
            .with_panel(_stat("Prober started", f"veza_synthetic_start_time_seconds{{{AT}}} * 1000", "{{location}}",
                              "dateTimeFromNow", 8))
            .with_panel(_series("Requests and logins the rounds made", "short",
                                (f"increase(veza_synthetic_api_requests_total{{{AT}}}[$__rate_interval])", "requests"),
                                (f"increase(veza_synthetic_logins_total{{{AT}}}[$__rate_interval])", "logins")))
            .with_row(dashboard.Row("The nightly and the gate (their runs, through the Pushgateway)"))
            .with_panel(_series("Each check in the last runs: 1 passed, 0 failed", "short",
                                (f"min by (symptom, variant) (veza_synthetic_check_success{{{AT}}})",
                                 "{{symptom}} ({{variant}})")))
            .with_panel(_stat("Since the last completed run",
                              f"time() - veza_synthetic_run_last_completed_timestamp_seconds{{{AT}}}", "{{env}} {{location}}",
                              "s", 8))
            .with_panel(_stat("Checks the last run failed", f"veza_synthetic_run_failed_checks{{{AT}}}",
                              "{{env}} {{location}}", "short", 8)))


def render(catalog: Catalog) -> str:
    """The dashboard's JSON, stable from one generation to the next (keys sorted)."""
    return str(JSONEncoder(sort_keys=True, indent=2).encode(build(catalog).build())) + "\n"
