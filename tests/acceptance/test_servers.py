"""Servers hold nothing that matters: two on one PostgreSQL act as one, and a server
killed under load loses nothing it acknowledged."""

from __future__ import annotations

import signal
import socket
import threading

import httpx

from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import Project


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_two_servers_on_one_database_act_as_one_and_a_killed_one_loses_nothing(
    pg_project: Project,
) -> None:
    project = pg_project
    assert project.run("migrate").returncode == 0
    key = project.run_json("keys", "create", "--role", "operate")["key"]
    ports = [free_port(), free_port()]
    servers = [project.start("server", "--port", str(port)) for port in ports]
    for port in ports:
        wait_for(lambda port=port: listening(port), timeout=30, what="a server to listen")
    first, second = (httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1/namespaces/default",
                                  headers={"Authorization": f"Bearer {key}"}, timeout=10)
                     for port in ports)

    # What one writes, the other reads and changes; a key revoked through one is
    # refused by the other at once.
    made = first.post("/jobs", json={"task": "add", "args": [1, 2]})
    assert made.status_code == 201, made.text
    job_id = made.json()["id"]
    assert second.get(f"/jobs/{job_id}").json()["args"] == [1, 2]
    assert second.post(f"/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    assert first.get(f"/jobs/{job_id}").json()["status"] == "cancelled"

    # Enqueues through the first server while it is killed: every one it answered 201
    # is in the database; none it did not answer is counted on.
    acknowledged: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                answer = first.post("/jobs", json={"task": "add", "args": [2, 3]})
            except httpx.HTTPError:
                return  # the server is gone: its answer never came
            if answer.status_code == 201:
                acknowledged.append(answer.json()["id"])

    loader = threading.Thread(target=load)
    loader.start()
    wait_for(lambda: len(acknowledged) >= 20, timeout=30, what="enqueues to be answered")
    servers[0].signal_group(signal.SIGKILL)
    assert servers[0].wait() == -signal.SIGKILL
    loader.join(30)
    stop.set()
    assert not loader.is_alive()

    stored = project.store.get_jobs("default", acknowledged)
    assert sorted(job.id for job in stored) == sorted(acknowledged)
    assert {job.status for job in stored} == {JobStatus.QUEUED}
    # The survivor serves on as before.
    assert second.get(f"/jobs/{acknowledged[-1]}").status_code == 200
    for client in (first, second):
        client.close()
    servers[1].signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then ends by the signal it caught, as services do.
    assert servers[1].wait(30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in servers[1].log_text()


def test_a_server_of_several_processes_serves_as_one(any_project: Project) -> None:
    """``--workers 2``: two processes share the port; whatever process answers, an
    enqueue is committed and a waiting claim wakes at the commit; SIGTERM stops all."""
    project = any_project
    assert project.run("migrate").returncode == 0
    key = project.run_json("keys", "create", "--role", "operate")["key"]
    port = free_port()
    server = project.start("server", "--port", str(port), "--workers", "2")
    wait_for(lambda: listening(port), timeout=30, what="the server to listen")
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1/namespaces/default",
                       headers={"Authorization": f"Bearer {key}"}, timeout=30)
    worker = api.post("/workers", json={"queues": ["default"]}).json()["worker_id"]
    ids = []
    for n in range(20):  # connections of their own: spread over both processes
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as one:
            made = one.post(f"http://127.0.0.1:{port}/api/v1/namespaces/default/jobs",
                            json={"task": "add", "args": [n, 1]})
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    assert sorted(job.id for job in project.store.get_jobs("default", ids)) == sorted(ids)
    claimed = api.post("/claims", json={"worker_id": worker, "queues": ["default"],
                                        "limit": 100}).json()["jobs"]
    assert sorted(job["id"] for job in claimed) == sorted(ids)

    waiting: list[list[dict[str, object]]] = []
    claim = threading.Thread(target=lambda: waiting.append(api.post("/claims", json={
        "worker_id": worker, "queues": ["default"], "wait": 20}).json()["jobs"]))
    claim.start()
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as other:
        late = other.post(f"http://127.0.0.1:{port}/api/v1/namespaces/default/jobs",
                          json={"task": "add", "args": [9, 9]}).json()["id"]
    claim.join(20)
    assert [job["id"] for job in waiting[0]] == [late]
    api.close()
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
