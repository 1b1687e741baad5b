"""The Grafana dashboard and the Prometheus alert rules under deploy/ use only metrics that
taskwheel exposes: every name in a panel's or a rule's expression is in a scrape."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from taskwheel.metrics import metrics_exposition
from taskwheel.stores.sqlite.store import SQLiteStore

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_NAME = re.compile(r"\btaskwheel_[a-z_]+\b")
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count",
                                                             "_created"), "gauge": ("",)}


def exposed() -> set[str]:
    """Every series name a scrape can hold (a histogram's _bucket, _sum and _count)."""
    store = SQLiteStore(":memory:")
    store.migrate()
    exposition, detach = metrics_exposition(store)
    try:
        text = exposition.render().decode()
    finally:
        detach()
        store.close()
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            base = name.removesuffix("_total")
            names.update(base + suffix for suffix in _SUFFIXES[kind])
    return names


def dashboard_expressions() -> list[str]:
    document = json.loads((DEPLOY / "grafana" / "taskwheel.json").read_text())
    found = [target["expr"] for panel in document["panels"] for target in panel["targets"]]
    found += [variable["query"] for variable in document["templating"]["list"]
              if variable["type"] == "query"]
    return found


def rule_expressions() -> list[str]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "taskwheel-alerts.yml").read_text())
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]


def test_every_metric_a_dashboard_panel_uses_is_exposed() -> None:
    names = exposed()
    used = {name for expr in dashboard_expressions() for name in _NAME.findall(expr)}
    assert len(used) >= 15
    assert used - names == set()


def test_every_metric_an_alert_rule_uses_is_exposed() -> None:
    names = exposed()
    used = {name for expr in rule_expressions() for name in _NAME.findall(expr)}
    assert len(used) >= 6
    assert used - names == set()


def test_a_misspelt_metric_would_be_caught() -> None:
    assert "taskwheel_jobs_finishd_total" not in exposed()
    assert {"taskwheel_job_wait_seconds_bucket", "taskwheel_jobs_finished_total",
            "taskwheel_queue_jobs"} <= exposed()
