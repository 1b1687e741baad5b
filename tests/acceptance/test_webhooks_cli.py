"""``taskwheel webhooks`` defines what a real ``taskwheel server`` accepts on
``/hooks/{namespace}/{name}``: a signed delivery becomes a job, a redelivery does not,
a removed webhook accepts nothing."""

from __future__ import annotations

import httpx

from taskwheel.webhooks import sign
from waiting import wait_for

from .conftest import Project
from .test_readme import free_port, listening


def test_a_webhook_defined_on_the_command_line_turns_deliveries_into_jobs(
    project: Project,
) -> None:
    created = project.run("webhooks", "create", "deploys", "--task", "slow", "--app",
                          "acceptance_app:app", "--idempotency-header", "X-Delivery")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert len(secret) == 64
    [listed] = project.run_json("webhooks", "list")
    assert (listed["name"], listed["task"], listed["idempotency_header"]) == (
        "deploys", "slow", "X-Delivery")
    assert "secret" not in listed
    refused = project.run("webhooks", "create", "x", "--task", "nope", "--app",
                          "acceptance_app:app")
    assert refused.returncode != 0
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "nope" in refused.stderr

    port = free_port()
    project.start("server", "--port", str(port), "--log-level", "warning")
    wait_for(lambda: listening(port), timeout=30, what="the server to listen")
    url = f"http://127.0.0.1:{port}/hooks/default/deploys"
    body = b"0.01"
    headers = {"Content-Type": "application/json", "X-Delivery": "d-1",
               "X-Signature-256": sign(secret, body)}
    first = httpx.post(url, content=body, headers=headers)
    again = httpx.post(url, content=body, headers=headers)
    assert first.status_code == again.status_code == 202, first.text
    assert first.json()["id"] == again.json()["id"]
    assert [(job.task, job.args) for job in project.jobs()] == [("slow", [0.01])]
    unsigned = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401

    removed = project.run("webhooks", "remove", "deploys")
    assert removed.returncode == 0, removed.stderr
    assert httpx.post(url, content=body, headers=headers).status_code == 404
    assert project.run_json("webhooks", "list") == []
    twice = project.run("webhooks", "remove", "deploys")
    assert twice.returncode != 0
    assert "webhook 'deploys' not found" in twice.stderr
