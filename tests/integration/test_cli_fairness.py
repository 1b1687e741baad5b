"""``taskwheel fairness``, ``taskwheel queues age`` and ``queues reserve`` on both
stores: weights, aging rates and caps set at run time take effect on the jobs written
after, a reserve on the next claim; an enqueue takes a fairness key; a bad weight,
rate, cap or reserve is one line naming the option, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

import taskwheel
from contract.backends import DATABASE_URLS
from contract.conftest import new_job
from taskwheel.stores.claims import ClaimRequest

from .command_line import APP
from .command_line import taskwheel as run


@pytest.fixture
def url(app: taskwheel.App, backend: str, tmp_path: Path) -> str:
    return DATABASE_URLS[backend](tmp_path)


def test_weights_set_from_the_command_line_share_the_claims(
    app: taskwheel.App, url: str
) -> None:
    send = app.task(lambda: None, name="send")
    assert run("fairness", "weight", "big", "--weight", "3", "--format", "json",
               url=url).json()["weight"] == 3.0
    for key in ("small", "big"):
        for _ in range(20):
            send.enqueue(fairness_key=key)
    taken = app.store.claim_jobs(app.namespace, "w1", ["default"], 8, 30).jobs
    assert sorted(job.fairness_key or "" for job in taken) == ["big"] * 6 + ["small"] * 2
    listed = run("fairness", "list", "--format", "json", url=url).json()
    assert [(row["key"], row["weight"]) for row in listed] == [("big", 3.0), ("small", 1.0)]


def test_an_enqueue_from_the_command_line_carries_its_fairness_key(
    app: taskwheel.App, url: str
) -> None:
    app.task(lambda: None, name="send")
    ns = ("--namespace", app.namespace)
    job = run("enqueue", "send", "--fairness-key", "customer:42", "--format", "json",
              "--app", APP, *ns, url=url).json()
    assert job["fairness_key"] == "customer:42"
    assert app.store.get_jobs(app.namespace, [job["id"]])[0].fairness_key == "customer:42"


def test_a_queue_s_capped_aging_and_reserve_from_the_command_line(
    app: taskwheel.App, url: str
) -> None:
    aged = run("queues", "age", "reports", "--rate", "1/min", "--cap", "7", "--format",
               "json", url=url).json()
    assert aged["cap"] == 7
    kept = run("queues", "reserve", "reports", "--share", "25%", "--below", "5", "--format",
               "json", url=url).json()
    assert (kept["share"], kept["below"]) == (0.25, 5)
    listed = run("queues", "list", "--format", "json", url=url).json()
    assert [(q["queue"], q["aging_per_minute"], q["aging_cap"], q["reserve_share"],
             q["reserve_below"]) for q in listed] == [("reports", 1.0, 7, 0.25, 5)]
    app.store.enqueue([new_job(namespace=app.namespace, queue="reports", priority=p)
                       for p in [9] * 8 + [0] * 4])
    taken = app.store.claim_jobs(app.namespace, "w1", ["reports"], 4, 30).jobs
    assert sorted(job.priority for job in taken) == [0, 9, 9, 9]
    assert run("queues", "reserve", "reports", "--off", url=url).exit_code == 0
    assert run("queues", "reserve", "reports", "--off", url=url).refused() == (
        "queue 'reports' has no reserve")


def test_a_bad_reserve_or_cap_is_refused_in_one_line_and_writes_nothing(url: str) -> None:
    for args, field in ((("--share", "0", "--below", "5"), "--share"),
                        (("--share", "150%", "--below", "5"), "--share"),
                        (("--share", "ten", "--below", "5"), "--share"),
                        (("--share", "10%"), "--below"),
                        (("--off", "--below", "5"), "--below"),
                        ((), "--share")):
        refused = run("queues", "reserve", "q", *args, url=url).refused()
        assert refused.startswith(f"{field}: "), (args, refused)
    assert "--cap" in run("queues", "age", "q", "--rate", "1/min", "--cap", "x",
                          url=url).refused()
    assert run("queues", "age", "q", "--rate", "1/min", "--cap", "99999999",
               url=url).refused().startswith("--cap: ")
    assert run("queues", "list", "--format", "json", url=url).json() == []


def test_a_queue_ages_until_turned_off(url: str) -> None:
    aged = run("queues", "age", "reports", "--rate", "2/min", "--format", "json", url=url)
    assert aged.json()["levels_per_minute"] == pytest.approx(2.0)
    assert run("queues", "age", "reports", "--off", url=url).exit_code == 0
    assert run("queues", "age", "reports", "--off", url=url).refused() == (
        "queue 'reports' has no aging")


def test_bad_weights_and_rates_are_refused_in_one_line_and_write_nothing(url: str) -> None:
    for bad in ("0", "-2", "nan"):
        refused = run("fairness", "weight", "a", "--weight", bad, url=url).refused()
        assert "weight" in refused, bad
    for bad in ("fast", "0/min", "1/fortnight"):
        assert run("queues", "age", "q", "--rate", bad, url=url).refused().startswith(
            "--rate: "), bad
    assert "--rate" in run("queues", "age", "q", url=url).refused()
    assert run("fairness", "list", "--format", "json", url=url).json() == []


def test_a_namespace_s_weight_from_the_command_line_shares_a_worker_s_claims(
    app: taskwheel.App, url: str
) -> None:
    send = app.task(lambda: None, name="send")
    ns = ("--namespace", app.namespace)
    set_ = run("fairness", "namespace", "--weight", "3", "--format", "json", *ns, url=url)
    assert set_.json() == {"namespace": app.namespace, "weight": 3.0}
    for _ in range(20):
        send.enqueue()
    app.store.enqueue([new_job("send", namespace="other") for _ in range(20)])
    taken = app.store.claim(ClaimRequest("w1", (app.namespace, "other"), ("default",), 8,
                                         30.0)).jobs
    assert sorted(job.namespace for job in taken) == sorted([app.namespace] * 6 + ["other"] * 2)
    listed = run("fairness", "namespaces", "--format", "json", url=url).json()
    assert listed == [{"namespace": app.namespace, "weight": 3.0}]
    assert run("fairness", "namespace", "--off", *ns, url=url).exit_code == 0
    assert run("fairness", "namespace", "--off", *ns, url=url).refused() == (
        f"namespace {app.namespace!r} has no weight")


def test_a_bad_namespace_weight_is_refused_in_one_line_and_writes_nothing(url: str) -> None:
    for bad in ("0", "-2", "nan", "inf"):
        refused = run("fairness", "namespace", "--weight", bad, url=url).refused()
        assert refused.startswith("--weight: must be a number > 0"), (bad, refused)
    assert "--weight" in run("fairness", "namespace", url=url).refused()
    assert run("fairness", "namespaces", "--format", "json", url=url).json() == []
