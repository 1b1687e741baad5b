"""A task's concurrency key: a template over the job's arguments (by name, with
defaults, or by position), its task and queue; a bad declaration or a job whose key
cannot be made is refused before anything is written."""

from __future__ import annotations

import pytest

import taskwheel
from taskwheel import ConcurrencyLimit
from taskwheel.errors import InvalidInput


def test_a_key_is_rendered_from_arguments_task_and_queue() -> None:
    app = taskwheel.App("sqlite://:memory:")

    @app.task(queue="sync", concurrency=ConcurrencyLimit(key="{queue}/{task}/{tenant}:{region}",
                                                        limit=5))
    def push(tenant: int, region: str = "eu") -> None: ...

    assert push.prepare(7).gate_key == "sync/push/7:eu"
    assert push.prepare(tenant=8, region="us", queue="other").gate_key == "other/push/8:us"
    assert push.prepare(7).gate_capacity == 5
    by_position = app.task(lambda a, b: None, name="pair",
                           concurrency=ConcurrencyLimit(key="pair:{1}", limit=1))
    assert by_position.prepare("x", "y").gate_key == "pair:y"
    whole_task = app.task(lambda: None, name="solo", concurrency=ConcurrencyLimit(limit=2))
    assert whole_task.prepare().gate_key == "task:solo"
    assert app.task(lambda: None, name="free").prepare().gate_key is None


@pytest.mark.parametrize(("declared", "field"), [
    (lambda: ConcurrencyLimit(limit=0), "concurrency.limit"),
    (lambda: ConcurrencyLimit(limit=-1), "concurrency.limit"),
    (lambda: ConcurrencyLimit(limit=True), "concurrency.limit"),  # type: ignore[arg-type]
    (lambda: ConcurrencyLimit(key="{", limit=1), "concurrency.key"),
    (lambda: ConcurrencyLimit(key="a:{}", limit=1), "concurrency.key"),
    (lambda: ConcurrencyLimit(key="", limit=1), "concurrency.key"),
])
def test_a_bad_declaration_is_refused(declared: object, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        declared()  # type: ignore[operator]
    assert refused.value.field == field


def test_a_job_whose_key_cannot_be_made_is_refused() -> None:
    app = taskwheel.App("sqlite://:memory:")
    sync = app.task(lambda tenant: None, name="sync",
                    concurrency=ConcurrencyLimit(key="tenant:{account}", limit=1))
    with pytest.raises(InvalidInput, match="names 'account'"):
        sync.prepare(1)
    spaced = app.task(lambda tenant: None, name="spaced",
                      concurrency=ConcurrencyLimit(key="tenant:{tenant}", limit=1))
    with pytest.raises(InvalidInput, match="without spaces"):
        spaced.prepare("a b")
    with pytest.raises(InvalidInput, match="concurrency"):
        app.task(lambda: None, name="wrong", concurrency=5)  # type: ignore[arg-type]
