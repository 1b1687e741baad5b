"""Fair shares and aging over HTTP, on both stores: an admin key sets a fairness key's
weight and a queue's aging rate, an enqueue carries a fairness key, and bad weights or
rates are 422 problems that write nothing; an operator sets a namespace's weight
between namespaces; an admin key caps a queue's aging and keeps a reserve for its lower
bands, bad caps and reserves being 422 problems that write nothing."""

from __future__ import annotations

from collections import Counter

from contract.conftest import QUEUE, new_job
from taskwheel.keys import Role
from taskwheel.stores.claims import ClaimRequest
from taskwheel.validators import ALL_NAMESPACES

from .conftest import MINE, THEIRS, Running


def test_weights_set_over_http_share_the_claims(server: Running) -> None:
    assert server.call("PUT", "/fairness/big", json={"weight": 3}, role=Role.OPERATE
                       ).status_code == 403
    set_ = server.call("PUT", "/fairness/big", json={"weight": 3})
    assert (set_.json()["key"], set_.json()["weight"]) == ("big", 3.0)
    jobs = [{"task": "ping", "fairness_key": key} for key in ("big", "small") for _ in range(20)]
    written = server.call("POST", "/jobs/batch", json={"jobs": jobs}).json()["jobs"]
    assert written[0]["fairness_key"] == "big"
    queue = written[0]["queue"]
    taken = server.store.claim_jobs(MINE, "w1", [queue], 8, 30.0).jobs
    assert Counter(job.fairness_key for job in taken) == {"big": 6, "small": 2}
    listed = server.call("GET", "/fairness", role=Role.READ).json()["weights"]
    assert [(w["key"], w["weight"]) for w in listed] == [("big", 3.0), ("small", 1.0)]


def test_a_queue_s_aging_over_http(server: Running) -> None:
    aged = server.call("PUT", "/queues/reports/aging", json={"rate": "6/min"})
    assert aged.status_code == 200
    assert abs(aged.json()["rate"] - 0.1) < 1e-9
    assert [q["queue"] for q in server.call("GET", "/queue-aging", role=Role.READ).json()[
        "queues"]] == ["reports"]
    assert server.call("DELETE", "/queues/reports/aging").status_code == 204
    assert server.call("DELETE", "/queues/reports/aging").status_code == 404


def test_a_capped_aging_and_a_reserve_over_http(server: Running) -> None:
    aged = server.call("PUT", "/queues/reports/aging", json={"rate": "6/min", "cap": 7})
    assert aged.json()["cap"] == 7
    assert server.call("GET", "/queue-aging", role=Role.READ).json()["queues"][0]["cap"] == 7
    assert server.call("PUT", "/queues/reports/reserve", json={"share": "10%", "below": 5},
                       role=Role.OPERATE).status_code == 403
    kept = server.call("PUT", "/queues/reports/reserve", json={"share": "10%", "below": 5})
    assert kept.status_code == 200
    assert (kept.json()["share"], kept.json()["below"]) == (0.1, 5)
    assert [(q["queue"], q["below"]) for q in server.call(
        "GET", "/queue-reserves", role=Role.READ).json()["queues"]] == [("reports", 5)]
    assert server.call("DELETE", "/queues/reports/reserve").status_code == 204
    assert server.call("DELETE", "/queues/reports/reserve").status_code == 404


def test_a_reserve_set_over_http_keeps_claims_for_the_lower_bands(server: Running) -> None:
    server.call("PUT", f"/queues/{QUEUE}/reserve", json={"share": 0.5, "below": 5})
    server.store.enqueue([new_job(namespace=MINE, priority=p) for p in [9] * 10 + [0] * 10])
    taken = server.store.claim_jobs(MINE, "w1", [QUEUE], 4, 30.0).jobs
    assert Counter(job.priority for job in taken) == {9: 2, 0: 2}
    # Another namespace neither has it nor can reach it.
    assert server.call("GET", "/queue-reserves", namespace=THEIRS).json()["queues"] == []
    assert server.call("DELETE", f"/queues/{QUEUE}/reserve", namespace=THEIRS
                       ).status_code == 404
    theirs = server.key(THEIRS, Role.ADMIN)
    assert server.call("DELETE", f"/queues/{QUEUE}/reserve", key=theirs).status_code == 404
    assert len(server.call("GET", "/queue-reserves").json()["queues"]) == 1


def test_bad_reserves_and_caps_are_422_and_write_nothing(server: Running) -> None:
    for body in ({"share": 0, "below": 5}, {"share": "100%", "below": 5},
                 {"share": "x", "below": 5}, {"share": 0.1}, {"share": 0.1, "below": 2.5},
                 {"below": 5}):
        assert server.call("PUT", "/queues/q/reserve", json=body).status_code == 422, body
    for cap in ("x", 2.5, 10**7):
        assert server.call("PUT", "/queues/q/aging", json={"rate": "1/min", "cap": cap}
                           ).status_code == 422, cap
    assert server.call("GET", "/queue-reserves", role=Role.READ).json()["queues"] == []
    assert server.call("GET", "/queue-aging", role=Role.READ).json()["queues"] == []


def test_bad_weights_and_rates_are_422_and_write_nothing(server: Running) -> None:
    for bad in (0, -1, "x", None):
        assert server.call("PUT", "/fairness/a", json={"weight": bad}).status_code == 422
    for bad in ("fast", "0/min", -1, None):
        assert server.call("PUT", "/queues/q/aging", json={"rate": bad}).status_code == 422
    assert server.call("POST", "/jobs", json={"task": "ping", "fairness_key": ""}
                       ).status_code == 422
    assert server.call("GET", "/fairness", role=Role.READ).json()["weights"] == []
    assert server.call("GET", "/queue-aging", role=Role.READ).json()["queues"] == []


def test_an_operator_sets_a_namespace_s_weight_over_http(server: Running) -> None:
    operator = server.key(ALL_NAMESPACES, Role.ADMIN)
    assert server.call("PUT", "/weight", json={"weight": 3}).status_code == 403  # a tenant's
    assert server.call("GET", "/weight", role=Role.READ).json() == {"namespace": MINE,
                                                                    "weight": None}
    set_ = server.call("PUT", "/weight", json={"weight": 3}, key=operator)
    assert set_.json() == {"namespace": MINE, "weight": 3.0}
    assert server.call("GET", "/weight", role=Role.READ).json()["weight"] == 3.0
    server.store.enqueue([new_job(namespace=namespace) for namespace in (MINE, THEIRS)
                          for _ in range(20)])
    taken = server.store.claim(ClaimRequest("w1", (MINE, THEIRS), (QUEUE,), 8, 30.0)).jobs
    assert Counter(job.namespace for job in taken) == {MINE: 6, THEIRS: 2}
    assert server.call("DELETE", "/weight", key=operator).status_code == 204
    assert server.call("DELETE", "/weight", key=operator).status_code == 404


def test_a_bad_namespace_weight_is_422_and_writes_nothing(server: Running) -> None:
    operator = server.key(ALL_NAMESPACES, Role.ADMIN)
    for bad in (0, -1, "x", None, 2e6):
        assert server.call("PUT", "/weight", json={"weight": bad}, key=operator
                           ).status_code == 422, bad
    assert server.store.list_namespace_weights() == []
