"""The dashboard's server side, on both stores: the login keeps the key in a cookie that
the API accepts under the same rules (and never for a write without the dashboard's
header), pages keep the API's namespace and role checks, and the live stream is keyed
like the API and sends each watched topic at once."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from taskwheel.keys import Role
from taskwheel.server.dashboard.pages import safe_next
from waiting import wait_for

from .conftest import MINE, THEIRS, Running, kill_jobs, snapshot

Browser = Callable[..., httpx.Client]


@pytest.fixture
def browser(server: Running) -> Iterator[Browser]:
    """Clients signed in through the login with a key of a role, as the dashboard's
    page does it."""
    opened: list[httpx.Client] = []

    def sign_in(role: Role = Role.ADMIN, namespace: str = MINE) -> httpx.Client:
        client = httpx.Client(base_url=server.url, timeout=10)
        opened.append(client)
        answer = client.post("/login", json={"key": server.key(namespace, role)})
        assert answer.status_code == 200, answer.text
        assert answer.json()["next"] == f"/namespaces/{namespace}"
        return client

    yield sign_in
    for client in opened:
        client.close()


def test_the_login_keeps_a_valid_key_in_an_http_only_strict_cookie(server: Running) -> None:
    answer = server.http.post(f"{server.url}/login", json={"key": server.key()})
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("taskwheel_key=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie

    refused = server.http.post(f"{server.url}/login", json={"key": "tw_nothere_x"})
    assert refused.status_code == 401
    assert "set-cookie" not in refused.headers


def test_a_page_without_a_key_sends_the_browser_to_the_login(server: Running) -> None:
    answer = server.http.get(f"{server.url}/namespaces/{MINE}/jobs")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/login?next=%2Fnamespaces%2F{MINE}%2Fjobs"


def test_the_cookie_reads_the_api_but_writes_only_with_the_dashboards_header(
    server: Running, browser: Browser
) -> None:
    job_id = server.call("POST", "/jobs", json={"task": "ping"}).json()["id"]
    client = browser()
    api = f"/api/v1/namespaces/{MINE}/jobs/{job_id}"
    assert client.get(api).json()["status"] == "queued"
    before = snapshot(server.store)

    # A form or script of another site could send the cookie, never this header.
    forged = client.post(f"{api}/cancel")
    assert forged.status_code == 401
    assert snapshot(server.store) == before

    done = client.post(f"{api}/cancel", headers={"X-Taskwheel-Dashboard": "1"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "cancelled"


def test_the_cookie_gets_the_same_namespace_and_role_checks_as_a_bearer_key(
    server: Running, browser: Browser
) -> None:
    job_id = server.call("POST", "/jobs", json={"task": "ping"}).json()["id"]
    reader = browser(Role.READ)
    write = {"X-Taskwheel-Dashboard": "1"}
    assert reader.post(f"/api/v1/namespaces/{MINE}/jobs/{job_id}/cancel",
                       headers=write).status_code == 403
    assert reader.get(f"/api/v1/namespaces/{THEIRS}/jobs").status_code == 404
    assert reader.get(f"/namespaces/{THEIRS}/jobs").status_code == 404
    assert reader.get(f"/namespaces/{MINE}/jobs/{job_id}").status_code == 200


def test_pages_show_actions_only_to_a_key_whose_role_allows_them(
    server: Running, browser: Browser
) -> None:
    job_id = server.call("POST", "/jobs", json={"task": "ping"}).json()["id"]
    pages = ["", "/jobs", f"/jobs/{job_id}", "/dead-jobs", "/schedules", "/queues"]
    reader, operator = browser(Role.READ), browser(Role.OPERATE)
    for page in pages:
        html = reader.get(f"/namespaces/{MINE}{page}").text
        assert "data-action" not in html, page
        assert "data-bulk" not in html, page
    assert "data-action" in operator.get(f"/namespaces/{MINE}/jobs/{job_id}").text
    assert "data-bulk" in operator.get(f"/namespaces/{MINE}/jobs").text
    assert "/queues/default/pause" in operator.get(f"/namespaces/{MINE}/queues").text


def test_every_page_renders_for_a_key_of_the_namespace(
    server: Running, browser: Browser
) -> None:
    job_id = server.call("POST", "/jobs", json={"task": "add", "args": [1, 2]}).json()["id"]
    run = server.call("POST", "/workflow-runs", json={
        "workflow": {"name": "wf", "steps": [{"name": "a", "task": "ping"},
                                             {"name": "b", "task": "ping", "after": ["a"]}]}})
    server.call("PUT", "/schedules/nightly", json={"task": "ping", "cron": "0 3 * * *"})
    client = browser(Role.READ)
    expected = {"": "Finished in the last hour", "/jobs": "add",
                f"/jobs/{job_id}": "Attempts", "/dead-jobs": "No dead job",
                "/queues": "math", "/schedules": "nightly", "/workflow-runs": "wf",
                f"/workflow-runs/{run.json()['id']}": 'data-step="b"',
                "/workers": "Workers"}
    for page, text in expected.items():
        answer = client.get(f"/namespaces/{MINE}{page}")
        assert answer.status_code == 200, (page, answer.text[:300])
        assert text in answer.text, page


def test_a_bad_filter_on_the_jobs_page_is_named_and_nothing_breaks(
    server: Running, browser: Browser
) -> None:
    client = browser(Role.READ)
    answer = client.get(f"/namespaces/{MINE}/jobs", params={"status": "sideways"})
    assert answer.status_code == 422
    assert "status" in answer.text
    answer = client.get(f"/namespaces/{MINE}/jobs", params={"since": "yesterday"})
    assert answer.status_code == 422
    assert "since" in answer.text


def test_purging_a_dead_letter_group_deletes_only_the_dead_jobs_named(
    server: Running,
) -> None:
    first, second, kept = (server.call("POST", "/jobs", json={"task": "ping"}).json()["id"]
                           for _ in range(3))
    kill_jobs(server.store, MINE, [first, second, kept])
    alive = server.call("POST", "/jobs", json={"task": "ping"}).json()["id"]

    answer = server.call("POST", "/dead-jobs/purge", json={"ids": [first, second, alive]})

    assert answer.json() == {"purged": 2}
    assert [job.id for job in server.store.get_jobs(MINE, [first, second, kept, alive])] == [
        kept, alive]
    refused = server.call("POST", "/dead-jobs/purge", json={"ids": [kept]}, role=Role.OPERATE)
    assert refused.status_code == 403


def test_the_login_sends_the_browser_only_to_pages_of_this_site() -> None:
    assert safe_next("/namespaces/team-a/jobs") == "/namespaces/team-a/jobs"
    for elsewhere in ("//evil.example", "/\\evil.example", "https://evil.example",
                      "/namespaces/a\\b", "javascript:alert(1)"):
        assert safe_next(elsewhere) == "/"


def test_the_stream_is_keyed_like_the_api(server: Running) -> None:
    url = f"{server.url}/api/v1/namespaces/{MINE}/stream"
    assert server.http.get(url, params={"topics": "overview"}).status_code == 401
    foreign = {"Authorization": f"Bearer {server.key(THEIRS)}"}
    assert server.http.get(url, params={"topics": "overview"},
                           headers=foreign).status_code == 404
    mine = {"Authorization": f"Bearer {server.key(MINE, Role.READ)}"}
    bad = server.http.get(url, params={"topics": "job:x"}, headers=mine)
    assert bad.status_code == 422
    assert bad.json()["field"] == "topics"


def test_the_queues_page_shows_depth_by_priority_waits_and_each_queues_pause(
    server: Running, browser: Browser
) -> None:
    server.call("POST", "/jobs/batch", json={"jobs": [
        {"task": "add", "args": [1, 2], "priority": 7}, {"task": "ping", "priority": 2}]})
    server.store.claim_jobs(MINE, "w", ["math"], 1, 30)
    server.call("POST", "/queues/default/pause", role=Role.OPERATE)
    server.call("POST", "/queues/idle/pause", role=Role.OPERATE)
    operator = browser(Role.OPERATE)

    html = operator.get(f"/namespaces/{MINE}/queues").text

    assert 'data-topic="queues:operate"' in html
    # By name: default, idle, math.
    default = html[html.index('data-queue="default"'):html.index('data-queue="idle"')]
    assert "p2" in default
    assert "holds 1" in default
    assert "/queues/default/resume" in default
    # A paused queue with no job is listed, so that it can be resumed.
    idle = html[html.index('data-queue="idle"'):html.index('data-queue="math"')]
    assert "/queues/idle/resume" in idle
    math = html[html.index('data-queue="math"'):]
    assert "p7" in math
    assert 'data-status="alive">active' in math
    assert "/queues/math/pause" in math
    started = server.store.start_waits(MINE, 0)
    assert [(w.queue, w.priority, w.count) for w in started] == [("math", 7, 1)]


def test_a_read_key_may_not_watch_the_topic_with_buttons(server: Running) -> None:
    url = f"{server.url}/api/v1/namespaces/{MINE}/stream"
    reader = {"Authorization": f"Bearer {server.key(MINE, Role.READ)}"}

    refused = server.http.get(url, params={"topics": "queues:operate"}, headers=reader)

    assert refused.status_code == 403
    assert "queues:operate" in refused.json()["detail"]


def test_the_overview_lists_the_alerts_firing(server: Running, browser: Browser) -> None:
    server.call("POST", "/jobs", json={"task": "ping"})
    for name, threshold in (("starving", 60), ("calm", 3600)):
        server.call("PUT", f"/alerts/{name}", json={
            "kind": "oldest_ready", "queue": "default", "threshold": threshold,
            "url": "http://127.0.0.1:9/hook"})
    reader = browser(Role.READ)
    assert "None of the 2 alert rule(s) is firing" in reader.get(f"/namespaces/{MINE}").text
    server.clock.advance(120)
    for name in ("starving", "calm"):
        server.store.evaluate_alert(server.store.get_alert(MINE, name))

    html = reader.get(f"/namespaces/{MINE}").text

    firing = html[html.index('id="alerts-firing"'):]
    assert 'data-alert="starving"' in firing
    assert "a ready job of queue default has waited more than 60 s" in firing
    assert 'data-alert="calm"' not in firing
    assert 'data-k="alerts">1<' in html


def test_the_stream_sends_each_watched_topic_at_once_and_lets_go_when_closed(
    server: Running, browser: Browser
) -> None:
    job_id = server.call("POST", "/jobs", json={"task": "ping"}).json()["id"]
    client = browser(Role.READ)
    seen: dict[str, dict[str, object]] = {}
    with client.stream("GET", f"/api/v1/namespaces/{MINE}/stream",
                        params={"topics": f"overview,job:{job_id},jobs:{job_id}"}) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in answer.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                seen[event] = json.loads(line.removeprefix("data: "))
            if len(seen) == 3:
                break
    assert seen[f"job:{job_id}"]["status"] == "queued"
    assert seen[f"jobs:{job_id}"] == {"statuses": {str(job_id): "queued"}}
    assert "Ready" in str(seen["overview"]["html"])
    feed = server.api.state.live_feed
    wait_for(lambda: feed.watchers == 0, what="the feed to let the closed stream go")
