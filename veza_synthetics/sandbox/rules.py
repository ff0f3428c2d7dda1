"""Veza's alert rules (the guide's "Alertes configurées"), as the sandbox's Prometheus loads them."""
from __future__ import annotations

# Their rate windows scaled to the sandbox's 1 s scrapes as its profile's rate_window is (5m -> 15s); the `for:`
# durations are kept, so an alert fires on errors that last minutes, not on one test's fault.
RULES = """groups:
  - name: veza_alerts
    rules:
      - alert: HighErrorRate
        expr: rate(http_requests_total{status=~"5.."}[15s]) > 0.1
        for: 2m
        labels: {severity: critical}
        annotations: {summary: "Taux d'erreur élevé", description: "Le taux d'erreur HTTP 5xx est supérieur à 10%"}
      - alert: HighResponseTime
        expr: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[15s]))) > 0.2
        for: 5m
        labels: {severity: warning}
      - alert: ErrorRateAboveOnePercent
        expr: sum(rate(http_requests_total{status=~"5.."}[15s])) / sum(rate(http_requests_total[15s])) > 0.01
        for: 5m
        labels: {severity: warning}
      - alert: HighCPU
        expr: 100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[15s]))) > 80
        for: 5m
        labels: {severity: warning}
      - alert: HighMemory
        expr: 100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) > 85
        for: 5m
        labels: {severity: warning}
      - alert: DiskAlmostFull
        expr: 100 * (1 - node_filesystem_avail_bytes / node_filesystem_size_bytes) > 90
        for: 5m
        labels: {severity: warning}
"""
NO_RULES = "groups: []\n"  # infra.rules_missing: the rules file an operator's deploy emptied
