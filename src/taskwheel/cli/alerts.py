"""``taskwheel alerts``: rules judged by the maintenance lease holder and delivered to a
webhook (see `taskwheel.alerts`)."""

from __future__ import annotations

import click

from taskwheel.alerts import AlertKind, new_alert_rule
from taskwheel.cli.options import Target, common_options, listing_options
from taskwheel.cli.output import error_line, new_table
from taskwheel.errors import InvalidInput

_DURATION_KINDS = (AlertKind.OLDEST_READY.value, AlertKind.SCHEDULE_MISSED.value)


@click.group()
def alerts() -> None:
    """Alert rules: failure rate, DLQ growth, starvation, missed schedules, no worker."""


@alerts.command("add")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice([k.value for k in AlertKind]),
              help="What the rule watches.")
@click.option("--url", required=True, help="Where firings and resolutions are POSTed.")
@click.option("--task", default=None, help="failure_rate: the task.")
@click.option("--queue", default=None, help="oldest_ready, no_worker: the queue (dlq_growing: "
              "only its jobs).")
@click.option("--priority", type=int, default=None, help="oldest_ready: only this priority.")
@click.option("--schedule", default=None, help="schedule_missed: only this schedule.")
@click.option("--threshold", default=None, metavar="NUMBER|DURATION",
              help="failure_rate: a percent; dlq_growing: a count; oldest_ready, "
              "schedule_missed: a duration (5m).")
@click.option("--window", default="10m", show_default=True, metavar="DURATION",
              help="failure_rate, dlq_growing: how far back to look.")
@click.option("--min-attempts", type=int, default=5, show_default=True,
              help="failure_rate: fewer attempts in the window never fire.")
@click.option("--secret", default=None, envvar="TASKWHEEL_ALERT_SECRET",
              help="Signs each delivery (16 to 200 characters).  [default: a random one, "
              "printed once]")
@common_options
def add_alert(
    target: Target, *, name: str, kind: str, url: str, task: str | None, queue: str | None,
    priority: int | None, schedule: str | None, threshold: str | None, window: str,
    min_attempts: int, secret: str | None,
) -> None:
    """Create the rule NAME in --namespace, or replace its definition (where it stands is
    kept); print the secret that signs its deliveries (X-Taskwheel-Signature:
    sha256=HMAC-SHA256(body))."""
    limit: float | str | None = threshold
    if threshold is not None and kind not in _DURATION_KINDS:
        try:
            limit = float(threshold)
        except ValueError:
            raise InvalidInput("threshold", f"must be a number, got {threshold!r}") from None
    with target.client() as client:
        rule = client.define_alert(new_alert_rule(
            client.namespace, name, kind, url=url, secret=secret, task=task, queue=queue,
            priority=priority, schedule=schedule, threshold=limit, window=window,
            min_attempts=min_attempts))
    if target.output.json:
        target.output.emit_json({**rule.to_dict(), "secret": rule.secret})
        return
    click.echo(rule.secret)
    click.echo(f"alert {rule.name}: fires when {rule.describe()}; delivered to {rule.url}, "
               "signed with the secret above", err=True)


@alerts.command("list")
@listing_options
def list_alerts(target: Target) -> None:
    """--namespace's rules and where each stands (never their secrets)."""
    with target.client() as client:
        found = client.alerts()
    if target.output.data:
        target.output.records([rule.to_dict() for rule in found], columns=("name", "state"))
        return
    if not found:
        target.output.note("no alerts")
        return
    table = new_table(title="Alerts", title_justify="left")
    for column in ("name", "state", "fires when", "value", "firings", "url"):
        table.add_column(column)
    for rule in found:
        table.add_row(rule.name, rule.state.value, rule.describe(),
                      "-" if rule.value is None else f"{rule.value:g}", str(rule.firing),
                      rule.url)
    target.output.console.print(table)


@alerts.command("remove")
@click.argument("name")
@common_options
def remove_alert(target: Target, *, name: str) -> None:
    """Remove the rule NAME and its deliveries."""
    with target.client() as client:
        client.remove_alert(name)
    target.output.note(f"removed alert {name}")


@alerts.command("test")
@click.argument("name")
@common_options
def test_alert(target: Target, *, name: str) -> None:
    """Send NAME's receiver a signed test event now (once); exit 1 if it is refused."""
    with target.client() as client:
        delivery = client.test_alert(name)
    if target.output.json:
        target.output.emit_json(delivery.to_dict())
    elif delivery.status.value == "delivered":
        target.output.note(f"delivered to {delivery.url} ({delivery.last_status_code})")
    if delivery.status.value != "delivered":
        raise click.exceptions.Exit(_refused(target, delivery.last_error))


def _refused(target: Target, error: str | None) -> int:
    error_line(f"the test delivery failed: {error}", as_json=target.output.json)
    return 1
