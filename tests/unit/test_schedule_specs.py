"""A stored schedule reads back as it was declared: every field of its definition
survives the store's spec (`ScheduleDefinition.spec_json`) and `definition_from_spec`,
whether its spec was parsed already (another schedule shares it) or not."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from taskwheel import App, Workflow
from taskwheel.errors import InvalidInput
from taskwheel.schedules import ScheduleDefinition, definition_from_spec
from taskwheel.triggers import IntervalTrigger, trigger_from_dict


def _declared(tmp_path: Path) -> list[ScheduleDefinition]:
    app = App(f"sqlite:///{tmp_path / 'specs.db'}", namespace="reports")

    @app.task(name="send", queue="mail", priority=3, retry=4, timeout="2m")
    def send(to: str) -> None:
        del to

    wf = Workflow("etl", on_failure="continue")
    wf.step(send, ["a@example.com"])
    start, end = datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)
    job = app.schedule("weekly", send, cron="0 9 * * MON", timezone="Europe/Paris",
                       args=["ops@example.com"], misfire="catch_up", max_catch_up=7,
                       misfire_grace="2m", overlap="skip", jitter="30s", start=start,
                       end=end, deadline="1h", dst_gap="skip", dst_fold="both")
    flow = app.schedule("nightly", workflow=wf, every="1h", misfire="skip",
                        max_catch_up=3, misfire_grace="5m", overlap="skip", jitter="10s",
                        start=start, end=end)
    return [job, flow]


def test_every_field_of_a_definition_reads_back_from_its_spec(tmp_path: Path) -> None:
    defaults = ScheduleDefinition("-", "-", IntervalTrigger.build("1h", datetime.now(UTC)),
                                  None)
    for declared in _declared(tmp_path):
        # Each field but the target differs from its default: a field the reading
        # leaves out (and so defaults) fails this.
        left_default = {f.name for f in dataclasses.fields(ScheduleDefinition)
                        if getattr(declared, f.name) == getattr(defaults, f.name)}
        assert left_default <= {"job", "workflow"}
        spec = declared.spec_json()
        assert definition_from_spec(declared.name, declared.namespace, spec) == declared
        # The spec parsed once: another schedule of the same spec gets its own name
        # and namespace (a workflow's runs too), nothing else of the first one.
        other = definition_from_spec("other", "billing", spec)
        assert (other.name, other.namespace) == ("other", "billing")
        if other.workflow is not None:
            assert other.workflow.namespace == "billing"
        assert dataclasses.replace(other, name=declared.name, namespace=declared.namespace,
                                   workflow=declared.workflow) == declared


@pytest.mark.parametrize(("data", "field"), [
    ({"kind": "interval", "anchor": "2027-01-01T00:00:00+00:00"}, "every"),
    ({"kind": "interval", "every": 60.0}, "anchor"),
    ({"kind": "interval", "every": 60.0, "anchor": "2027-01-01T00:00:00+00:00", "x": 1}, "x"),
    ({"kind": "interval", "every": 0, "anchor": "2027-01-01T00:00:00+00:00"}, "every"),
    ({"kind": "interval", "every": "1h", "anchor": "2027-01-01T00:00:00"}, "anchor"),
    ({"kind": "interval", "every": "1h", "anchor": "tomorrow"}, "anchor"),
    ({"kind": "interval", "every": "1h", "anchor": 5}, "anchor"),
    ({"kind": "cron", "timezone": "UTC"}, "cron"),
    ({"kind": "once", "at": "2027-01-01T00:00:00+00:00", "every": 1}, "every"),
])
def test_a_trigger_read_from_a_mapping_is_refused_naming_its_wrong_field(
    data: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        trigger_from_dict(data)
    assert refused.value.field == field


def test_an_interval_read_from_a_mapping_takes_a_duration_text() -> None:
    anchor = datetime(2027, 1, 1, tzinfo=UTC)
    read = trigger_from_dict({"kind": "interval", "every": "1h30m",
                              "anchor": anchor.isoformat()})
    assert read == IntervalTrigger.build(5400, anchor)
    assert trigger_from_dict(read.to_dict()) == read
