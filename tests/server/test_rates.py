"""Rate limits over HTTP, on both stores: a reader lists and shows a key's rate, an
admin sets it at run time (a malformed rate or burst is a 422 naming the field that
writes nothing; a burst alone for a key without a rate is a 404); the HTTP client says
the same."""

from __future__ import annotations

import pytest

import taskwheel
from taskwheel.keys import Role

from .conftest import MINE, Running

KEY = "api/acme"
PATH = "/limits/api%2Facme/rate"


def _rates(server: Running) -> list[tuple[str, float, int, int]]:
    return [(r.key, r.rate, r.burst, r.waiting) for r in server.store.list_rates(MINE)]


def test_a_key_s_rate_is_listed_shown_and_set(server: Running) -> None:
    for _ in range(3):
        server.call("POST", "/jobs", json={"task": "call_api", "args": ["acme"]}
                    ).raise_for_status()
    listed = server.call("GET", "/rates", role=Role.READ).json()["rates"]
    assert [(r["key"], r["rate_per_minute"], r["burst"], r["waiting"]) for r in listed] == [
        (KEY, 60.0, 2, 3)]
    assert server.call("GET", PATH, role=Role.READ).json()["waiting"] == 3
    assert server.call("PUT", PATH, json={"rate": "10/s"}, role=Role.OPERATE
                       ).status_code == 403
    changed = server.call("PUT", PATH, json={"rate": "600/min", "burst": 5})
    assert changed.status_code == 200
    assert (changed.json()["rate"], changed.json()["burst"], changed.json()["set_by_hand"]
            ) == (10.0, 5, True)
    only_burst = server.call("PUT", PATH, json={"burst": 7}).json()
    assert (only_burst["rate"], only_burst["burst"]) == (10.0, 7)
    # A larger burst is room for tokens to come, not tokens: the bucket had 2.
    assert server.store.admit_rated_jobs(MINE) == 2


def test_bad_rates_and_unknown_keys_are_refused_and_write_nothing(server: Running) -> None:
    server.call("POST", "/jobs", json={"task": "call_api", "args": ["acme"]})
    before = _rates(server)
    for body, field in (({"rate": "100/fortnight"}, "rate"), ({"rate": "0/s"}, "rate"),
                        ({"rate": -5}, "rate"), ({"rate": "1/s", "burst": 0}, "burst"),
                        ({"rate": "1/s", "burst": "many"}, "burst")):
        refused = server.call("PUT", PATH, json=body)
        assert refused.status_code == 422, body
        assert field in refused.text, body
    assert server.call("PUT", "/limits/has%20space/rate", json={"rate": "1/s"}
                       ).status_code == 422
    missing = server.call("PUT", "/limits/nope/rate", json={"burst": 3})
    assert missing.status_code == 404
    assert "key 'nope' has no rate limit" in missing.json()["detail"]
    assert server.call("GET", "/limits/nope/rate", role=Role.READ).status_code == 404
    assert _rates(server) == before


def test_rates_over_the_http_client(server: Running) -> None:
    with taskwheel.HttpClient(server.url, server.key(MINE, Role.ADMIN), MINE) as client:
        client.enqueue("call_api", ["acme"])
        assert client.rate(KEY)["waiting"] == 1
        assert client.set_rate(KEY, "120/min", burst=4)["rate"] == 2.0
        assert [r["key"] for r in client.rates()] == [KEY]
        with pytest.raises(taskwheel.ApiError) as unknown:
            client.rate("nope")
        assert unknown.value.status == 404
