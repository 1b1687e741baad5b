"""The REST API on both stores, through a real server: every operation the command
line has, answered as the store holds it."""

from __future__ import annotations

from pathlib import Path

from contract.backends import BACKENDS
from taskwheel.keys import Role
from taskwheel.lifecycle import JobStatus

from .conftest import MINE, Running, kill_jobs, snapshot


def test_a_2xx_to_an_enqueue_means_the_job_is_committed(
    server: Running, backend: str, tmp_path: Path
) -> None:
    answer = server.call("POST", "/jobs", json={
        "task": "add", "args": [1, 2], "priority": 5, "delay": "10s",
        "idempotency_key": "k1"})
    assert answer.status_code == 201
    job = answer.json()
    # Read back through a connection of its own, not the server's.
    other = BACKENDS[backend](tmp_path, None)
    try:
        stored = other.get_job(MINE, job["id"])
    finally:
        other.close()
    assert (stored.task, stored.args, stored.priority, stored.queue) == ("add", [1, 2], 5,
                                                                         "math")
    assert stored.status is JobStatus.SCHEDULED
    again = server.call("POST", "/jobs", json={"task": "add", "args": [1, 2],
                                               "idempotency_key": "k1"})
    assert again.json()["id"] == job["id"]


def test_a_batch_is_written_whole_or_not_at_all(server: Running) -> None:
    good = {"task": "add", "args": [1, 2]}
    before = snapshot(server.store)
    refused = server.call("POST", "/jobs/batch", json={"jobs": [good, {"task": "add",
                                                                         "args": [1]}]})
    assert refused.status_code == 422
    assert refused.json()["field"] == "jobs[1].args"
    assert snapshot(server.store) == before
    written = server.call("POST", "/jobs/batch", json={"jobs": [good, good]})
    assert written.status_code == 201
    assert len(written.json()["jobs"]) == 2


def test_jobs_are_listed_newest_first_in_cursor_pages(server: Running) -> None:
    server.call("POST", "/jobs/batch", json={"jobs": [{"task": "ping"}] * 5})
    server.call("POST", "/jobs", json={"task": "add", "args": [1, 1]})
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2, "task": "ping", **({"cursor": cursor} if cursor else {})}
        page = server.call("GET", "/jobs", params=params).json()
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5
    assert seen == sorted(seen, reverse=True)


def test_a_job_is_read_cancelled_and_retried(server: Running) -> None:
    job = server.call("POST", "/jobs", json={"task": "ping"}).json()
    assert server.call("GET", f"/jobs/{job['id']}", role=Role.READ).json()["id"] == job["id"]
    cancelled = server.call("POST", f"/jobs/{job['id']}/cancel", role=Role.OPERATE)
    assert cancelled.json()["status"] == "cancelled"
    again = server.call("POST", f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    retried = server.call("POST", f"/jobs/{job['id']}/retry")
    assert retried.json()["status"] == "queued"
    assert server.call("GET", f"/jobs/{job['id']}/attempts").json() == {"attempts": []}


def test_bulk_cancel_takes_ids_or_a_filter_and_reports_each_failure(server: Running) -> None:
    ids = [job["id"] for job in server.call("POST", "/jobs/batch", json={
        "jobs": [{"task": "ping"}] * 3}).json()["jobs"]]
    by_ids = server.call("POST", "/jobs/cancel", json={"ids": [ids[0], 999_999]}).json()
    assert [job["id"] for job in by_ids["done"]] == [ids[0]]
    assert by_ids["failed"] == [{"id": 999_999, "detail": "job 999999 not found"}]
    by_filter = server.call("POST", "/jobs/cancel", json={"filter": {"status": "queued"}})
    assert sorted(job["id"] for job in by_filter.json()["done"]) == ids[1:]
    both = server.call("POST", "/jobs/cancel", json={"ids": [ids[0]], "filter": {}})
    assert both.status_code == 422


def test_bulk_delete_takes_ids_or_a_filter_and_keeps_running_jobs(server: Running) -> None:
    def enqueue(*jobs: dict[str, object]) -> list[int]:
        return [job["id"] for job in server.call("POST", "/jobs/batch", json={
            "jobs": list(jobs)}).json()["jobs"]]

    dead = enqueue({"task": "add", "args": [1, 2]})
    kill_jobs(server.store, MINE, dead)
    ids = [*enqueue({"task": "ping"}, {"task": "ping"}), *dead,
           *enqueue({"task": "add", "args": [1, 2]})]
    [running] = server.store.claim_jobs(MINE, "w", ["default"], 1, 30).jobs
    assert running.id == ids[0]

    by_ids = server.call("POST", "/jobs/delete", role=Role.OPERATE,
                         json={"ids": [ids[0], ids[1], 999_999]}).json()
    assert [job["id"] for job in by_ids["done"]] == [ids[1]]
    assert by_ids["failed"] == [
        {"id": ids[0], "detail": f"job {ids[0]} is running: a running job cannot be deleted "
                                 "(cancel it first)"},
        {"id": 999_999, "detail": "job 999999 not found"}]
    by_filter = server.call("POST", "/jobs/delete", json={"filter": {"task": "add"}}).json()
    assert sorted(job["id"] for job in by_filter["done"]) == sorted(ids[2:])
    assert by_filter["failed"] == []
    assert [job.id for job in server.store.get_jobs(MINE, ids)] == [ids[0]]
    assert server.store.list_attempts(MINE, ids[2]) == []


def test_bulk_delete_is_refused_to_a_read_key_and_for_a_bad_selection_writing_nothing(
    server: Running,
) -> None:
    job = server.call("POST", "/jobs", json={"task": "ping"}).json()
    before = snapshot(server.store)
    for body, role, status in (({"ids": [job["id"]]}, Role.READ, 403),
                               ({"ids": [job["id"]], "filter": {}}, Role.ADMIN, 422),
                               ({}, Role.ADMIN, 422),
                               ({"ids": []}, Role.ADMIN, 422),
                               ({"ids": [0]}, Role.ADMIN, 422),
                               ({"filter": {"status": "lost"}}, Role.ADMIN, 422)):
        refused = server.call("POST", "/jobs/delete", json=body, role=role)
        assert refused.status_code == status, body
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"]
    assert snapshot(server.store) == before


def test_the_dead_letter_queue_is_listed_replayed_and_purged(server: Running) -> None:
    ids = [job["id"] for job in server.call("POST", "/jobs/batch", json={
        "jobs": [{"task": "ping"}, {"task": "add", "args": [1, 2]}, {"task": "ping"}]}
    ).json()["jobs"]]
    kill_jobs(server.store, MINE, ids)
    dead = server.call("GET", "/dead-jobs", role=Role.READ).json()["jobs"]
    assert sorted(job["id"] for job in dead) == ids
    replayed = server.call("POST", "/dead-jobs/replay", json={"filter": {"task": "add"}})
    assert replayed.json() == {"replayed": [ids[1]]}
    assert server.call("POST", "/dead-jobs/replay", json={"ids": [ids[0]]}).json() == {
        "replayed": [ids[0]]}
    assert server.call("POST", "/dead-jobs/purge", role=Role.OPERATE).status_code == 403
    assert server.call("POST", "/dead-jobs/purge").json() == {"purged": 1}


def test_schedules_are_written_listed_paused_fired_previewed_and_removed(
    server: Running,
) -> None:
    body = {"task": "add", "args": [1, 2], "cron": "30 2 * * *", "timezone": "Europe/Berlin"}
    written = server.call("PUT", "/schedules/nightly", json=body)
    assert written.status_code == 200
    assert written.json()["changed"] is True
    assert server.call("PUT", "/schedules/nightly", json=body).json()["changed"] is False
    listed = server.call("GET", "/schedules", role=Role.READ).json()["schedules"]
    assert [s["name"] for s in listed] == ["nightly"]
    assert listed[0]["next_fire_at"] is not None
    assert server.call("POST", "/schedules/nightly/pause",
                       role=Role.OPERATE).json()["state"] == "paused"
    assert server.call("POST", "/schedules/nightly/resume").json()["state"] == "active"
    fired = server.call("POST", "/schedules/nightly/trigger").json()
    assert fired["result"] == "created"
    shown = server.call("GET", "/schedules/nightly").json()
    assert [job["id"] for job in shown["jobs"]] == [fired["job_id"]]
    preview = server.call("GET", "/schedules/nightly/preview",
                          params={"count": 2, "after": "2026-03-28T00:00:00Z"}).json()
    assert [fire["dst"] for fire in preview["fires"]] == ["none", "moved"]
    unknown_task = server.call("PUT", "/schedules/other", json={**body, "task": "nope"})
    assert unknown_task.status_code == 422
    assert unknown_task.json()["field"] == "task"
    assert server.call("DELETE", "/schedules/nightly").status_code == 204
    assert server.call("GET", "/schedules/nightly").status_code == 404


def test_workflow_runs_are_submitted_shown_retried_and_cancelled(server: Running) -> None:
    definition = {"name": "etl", "steps": [
        {"task": "ping", "name": "extract"},
        {"task": "add", "name": "load", "args": [1, 2], "after": ["extract"]}]}
    run = server.call("POST", "/workflow-runs", json={"workflow": definition})
    assert run.status_code == 201
    shown = server.call("GET", f"/workflow-runs/{run.json()['id']}").json()
    assert {step["name"]: step["job"]["status"] for step in shown["steps"]} == {
        "extract": "queued", "load": "waiting"}
    cyclic = {"name": "loop", "steps": [{"task": "ping", "name": "a", "after": ["b"]},
                                        {"task": "ping", "name": "b", "after": ["a"]}]}
    before = snapshot(server.store)
    refused = server.call("POST", "/workflow-runs", json={"workflow": cyclic})
    assert refused.status_code == 422
    assert snapshot(server.store) == before
    cancelled = server.call("POST", f"/workflow-runs/{run.json()['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    listed = server.call("GET", "/workflow-runs", params={"status": "cancelled"}).json()
    assert [r["id"] for r in listed["runs"]] == [run.json()["id"]]
    retried = server.call("POST", f"/workflow-runs/{run.json()['id']}/retry",
                          json={"step": "extract"})
    assert retried.json()["status"] == "running"


def test_queues_workers_and_stats(server: Running) -> None:
    server.call("POST", "/jobs/batch", json={"jobs": [
        {"task": "add", "args": [1, 2], "priority": 3}, {"task": "ping"}]})
    queues = server.call("GET", "/queues", role=Role.READ).json()["queues"]
    by_name = {q["queue"]: q for q in queues}
    assert by_name["math"]["counts"] == {"queued": 1}
    assert by_name["math"]["ready_by_priority"] == {"3": 1}
    assert by_name["math"]["by_priority"] == {"3": {"queued": 1}}
    assert server.call("GET", "/workers").json() == {"workers": []}
    assert {q["queue"] for q in server.call("GET", "/stats").json()["queues"]} == {
        "math", "default"}


def test_an_enqueue_over_quota_gets_429_with_retry_after_and_writes_nothing(
    server: Running,
) -> None:
    quota = {"max_queued": 1, "max_enqueue_rate": None, "max_active_schedules": None}
    assert server.call("PUT", "/quota", json=quota).status_code == 403  # a tenant's admin
    operator = server.key("*", Role.ADMIN)
    assert server.call("PUT", "/quota", json=quota, key=operator).status_code == 200
    assert server.call("POST", "/jobs", json={"task": "ping"}).status_code == 201
    before = snapshot(server.store)
    refused = server.call("POST", "/jobs", json={"task": "ping"})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["field"] == "max_queued"
    assert snapshot(server.store) == before
    server.call("PUT", "/quota", key=operator, json={**quota, "max_queued": None,
                                                     "max_enqueue_rate": 2.0})
    assert server.call("POST", "/jobs/batch", json={"jobs": [{"task": "ping"}] * 2}
                       ).status_code == 201
    by_rate = server.call("POST", "/jobs", json={"task": "ping"})
    assert by_rate.status_code == 429
    assert by_rate.headers["retry-after"] == "1"  # half a second, rounded up
    server.clock.advance(0.5)
    assert server.call("POST", "/jobs", json={"task": "ping"}).status_code == 201


def test_a_revoked_key_is_refused_at_once(server: Running) -> None:
    key = server.key(MINE, Role.READ)
    assert server.call("GET", "/jobs", key=key).status_code == 200
    prefix = key.split("_")[1]
    server.store.revoke_api_key(prefix)
    refused = server.call("GET", "/jobs", key=key)
    assert refused.status_code == 401
    assert refused.json()["title"] == "Unauthorized"


def test_a_request_without_a_valid_key_is_refused(server: Running) -> None:
    assert server.call("GET", "/jobs", key="").status_code == 401
    assert server.call("GET", "/jobs", key="tw_nope").status_code == 401
    forged = server.key(MINE, Role.READ)[:-2] + "xx"
    assert server.call("GET", "/jobs", key=forged).status_code == 401


def test_the_openapi_document_and_the_docs_are_served(server: Running) -> None:
    document = server.http.get(f"{server.url}/openapi.json").json()
    assert "/api/v1/namespaces/{namespace}/jobs" in document["paths"]
    assert server.http.get(f"{server.url}/docs").status_code == 200


def test_a_job_explains_what_holds_it_to_a_read_key_and_is_404_elsewhere(
    server: Running,
) -> None:
    job = server.call("POST", "/jobs", json={"task": "ping", "delay": "90s"}).json()

    answer = server.call("GET", f"/jobs/{job['id']}/explanation", role=Role.READ)

    assert answer.status_code == 200
    document = answer.json()
    assert document["status"] == "scheduled"
    codes = [reason["code"] for reason in document["reasons"]]
    assert codes[0] == "due_later"
    assert document["reasons"][0]["details"]["in_seconds"] == 90
    assert "no_live_worker" in codes  # no worker registered in this test
    assert server.call("GET", "/jobs/999999/explanation").status_code == 404


def test_alert_rules_are_defined_by_an_admin_read_by_anyone_and_refused_when_bad(
    server: Running,
) -> None:
    body = {"kind": "no_worker", "queue": "math", "url": "http://127.0.0.1:9/hook",
            "secret": "0123456789abcdef"}
    assert server.call("PUT", "/alerts/nobody", json=body, role=Role.OPERATE).status_code == 403
    defined = server.call("PUT", "/alerts/nobody", json=body)
    assert defined.status_code == 200
    assert defined.json()["secret"] == "0123456789abcdef"
    assert defined.json()["condition"] == "no live worker serves queue math"

    listed = server.call("GET", "/alerts", role=Role.READ).json()["alerts"]
    assert [(a["name"], a["state"]) for a in listed] == [("nobody", "ok")]
    assert "secret" not in listed[0]
    bad = server.call("PUT", "/alerts/x", json={**body, "kind": "failure_rate"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "task"
    assert server.call("GET", "/alerts/x").status_code == 404
    assert server.call("GET", "/alerts/nobody/deliveries").json() == {"deliveries": []}
    tested = server.call("POST", "/alerts/nobody/test").json()  # nothing listens on :9
    assert (tested["event"], tested["status"], tested["attempts"]) == ("test", "failed", 1)
    assert server.call("DELETE", "/alerts/nobody").status_code == 204
    assert server.call("DELETE", "/alerts/nobody").status_code == 404
