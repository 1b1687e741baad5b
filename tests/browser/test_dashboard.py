"""What a person sees in the dashboard, in a real browser, against a real server and
worker: every page shows the store's data (at desktop and phone widths), a job's
state changes on screen without a reload when the worker finishes it, a bulk replay
from the dead-letter page requeues the jobs, a read-only key is shown no action, and
a workflow run's graph shows each step's state as it changes; a queue is paused and
resumed from the queues page, jobs are deleted from the jobs page, and the overview
shows an alert while it fires; jobs are deleted with the keyboard at phone width, and a
workflow run fired by a schedule links to it and back."""

from __future__ import annotations

import re
from typing import Any

import pytest

from taskwheel.gates import GateKind
from waiting import wait_for

from .conftest import Dashboard, screenshot, signed_in

pytestmark = pytest.mark.timeout(120)

NS = "/namespaces/default"


def _gated_job(dashboard: Dashboard, name: str) -> tuple[int, Any]:
    """A job that runs until the test creates its file; the file's path."""
    gate = dashboard.root / f"{name}.open"
    job_id = dashboard.enqueue("wait_for_file", str(gate))
    wait_for(lambda: dashboard.status(job_id) == "running", timeout=30,
             what=f"job {job_id} to start")
    return job_id, gate


def test_every_page_shows_the_stores_data_at_desktop_and_phone_widths(
    dashboard: Dashboard, browser: Any
) -> None:
    done = dashboard.enqueue("add", 20, 22)
    dead = [dashboard.enqueue("charge_card", order) for order in (101, 102)]
    answer = dashboard.api.put("/schedules/nightly-report", json={
        "task": "add", "args": [1, 1], "cron": "30 2 * * *", "timezone": "Europe/Berlin"})
    assert answer.status_code == 200, answer.text
    run = dashboard.api.post("/workflow-runs", json={"workflow": {"name": "etl", "steps": [
        {"name": "extract", "task": "step", "args": ["e"]},
        {"name": "load", "task": "step", "args": ["l"], "after": ["extract"]}]}}).json()
    wait_for(lambda: dashboard.status(done) == "succeeded"
             and all(dashboard.status(job) == "dead" for job in dead), timeout=30,
             what="the jobs to finish")
    wait_for(lambda: dashboard.api.get(f"/workflow-runs/{run['id']}").json()["status"]
             == "succeeded", timeout=30, what="the run to succeed")

    for width in (1280, 390):
        page = signed_in(browser, dashboard, width=width)
        pages = {
            "overview": (NS, ["Workers alive", "Finished in the last hour", "nightly-report",
                              "Alerts firing"]),
            "jobs": (f"{NS}/jobs", ["charge_card", "add", "succeeded", "dead"]),
            "job": (f"{NS}/jobs/{done}", ["42", "succeeded", "Attempts"]),
            "dead-letters": (f"{NS}/dead-jobs", ["charge_card", "card declined for order"]),
            "queues": (f"{NS}/queues", ["default", "Wait to start", "p0", "active"]),
            "schedules": (f"{NS}/schedules", ["nightly-report", "Europe/Berlin",
                                              "+01:00"]),
            "workflows": (f"{NS}/workflow-runs", ["etl", "succeeded"]),
            "workflow-run": (f"{NS}/workflow-runs/{run['id']}", ["extract", "load"]),
            "workers": (f"{NS}/workers", ["alive", "default, gated, lane"]),
        }
        for name, (path, texts) in pages.items():
            page.goto(f"{dashboard.url}{path}")
            body = page.locator("main")
            for text in texts:
                assert text in body.inner_text(), f"{name} at {width}px lacks {text!r}"
            if width < 500:
                # Nothing wider than the screen but the tables, which scroll inside.
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, f"{name} overflows the phone screen by {overflow}px"
            screenshot(page, f"{name}-{width}")
        page.context.close()


def test_a_jobs_state_changes_on_screen_without_a_reload_when_the_worker_finishes_it(
    dashboard: Dashboard, browser: Any
) -> None:
    job_id, gate = _gated_job(dashboard, "live")
    page = signed_in(browser, dashboard)
    page.goto(f"{dashboard.url}{NS}/jobs/{job_id}")
    status = page.locator("#job-status")
    assert status.inner_text() == "running"
    # The explanation panel says why, with the reason's stable code.
    page.wait_for_selector("[data-explain] .explain-body code")
    assert "running" in page.locator("[data-explain] .explain-body code").first.inner_text()
    page.evaluate("window.notReloaded = true")
    page.wait_for_selector("#live-state[data-state='on']")
    screenshot(page, "job-running")

    gate.touch()

    page.wait_for_function(
        "document.getElementById('job-status').textContent === 'succeeded'")
    assert page.evaluate("window.notReloaded") is True
    assert "opened" in page.locator("#job-result").inner_text()
    screenshot(page, "job-finished-live")
    page.context.close()


def test_the_jobs_list_shows_a_finish_without_a_reload(
    dashboard: Dashboard, browser: Any
) -> None:
    job_id, gate = _gated_job(dashboard, "list")
    page = signed_in(browser, dashboard)
    page.goto(f"{dashboard.url}{NS}/jobs?queue=gated")
    cell = page.locator(f"[data-job-status='{job_id}']")
    assert cell.inner_text() == "running"
    page.evaluate("window.notReloaded = true")
    page.wait_for_selector("#live-state[data-state='on']")

    gate.touch()

    page.wait_for_function(
        f"document.querySelector(\"[data-job-status='{job_id}']\").textContent "
        "=== 'succeeded'")
    assert page.evaluate("window.notReloaded") is True
    page.context.close()


def test_a_bulk_replay_from_the_dead_letter_page_requeues_the_group(
    dashboard: Dashboard, browser: Any
) -> None:
    dead = [dashboard.enqueue("charge_card", order) for order in (201, 202, 203)]
    wait_for(lambda: all(dashboard.status(job) == "dead" for job in dead), timeout=30,
             what="the jobs to die")
    page = signed_in(browser, dashboard)
    page.goto(f"{dashboard.url}{NS}/dead-jobs")
    page.on("dialog", lambda dialog: dialog.accept())
    group = page.locator("tr[data-group='charge_card']")
    button = group.get_by_role("button", name=re.compile(r"Replay \d+"))
    screenshot(page, "dead-letters-before-replay")

    button.click()

    page.wait_for_selector("#notice:not([hidden])")
    assert re.search(r"Replayed \d+ job", page.locator("#notice").inner_text())
    # Each job ran again: a second attempt (the task fails again, by design).
    wait_for(lambda: all(len(dashboard.store.list_attempts("default", job)) == 2
                         for job in dead), timeout=30, what="the replayed jobs to run again")
    wait_for(lambda: all(dashboard.status(job) == "dead" for job in dead), timeout=30,
             what="the replayed jobs to die again")
    screenshot(page, "dead-letters-after-replay")

    # The group is purged for good by an admin, from the same row.
    page.reload()
    group.get_by_role("button", name=re.compile(r"Purge \d+")).click()

    page.wait_for_selector("#notice:not([hidden])")
    assert re.search(r"Purged \d+ job", page.locator("#notice").inner_text())
    assert dashboard.store.get_jobs("default", dead) == []
    assert page.locator("tr[data-group='charge_card']").count() == 0
    page.context.close()


def test_a_read_only_key_is_shown_no_action_and_cannot_act(
    dashboard: Dashboard, browser: Any
) -> None:
    job_id = dashboard.enqueue("charge_card", 301)
    wait_for(lambda: dashboard.status(job_id) == "dead", timeout=30, what="the job to die")
    run = dashboard.api.post("/workflow-runs", json={"workflow": {"name": "ro", "steps": [
        {"name": "only", "task": "step", "args": ["o"]}]}}).json()
    answer = dashboard.api.put("/schedules/ro-schedule", json={"task": "add", "args": [1, 2],
                                                              "every": "1h"})
    assert answer.status_code == 200, answer.text
    page = signed_in(browser, dashboard, role="read")
    for path in ("", "/jobs", f"/jobs/{job_id}", "/dead-jobs", "/schedules",
                 f"/workflow-runs/{run['id']}", "/queues", "/workers"):
        page.goto(f"{dashboard.url}{NS}{path}")
        assert page.locator("button[data-action], button[data-bulk], input.pick").count() == 0, (
            f"{path or '/'} shows an action to a read-only key")
        if path.startswith("/jobs/"):
            screenshot(page, "read-only-job")
    # The API refuses it the same through the browser's cookie.
    status = page.evaluate("""async (url) => (await fetch(url, {method: "POST",
        headers: {"X-Taskwheel-Dashboard": "1"}})).status""",
                           f"/api/v1/namespaces/default/jobs/{job_id}/retry")
    assert status == 403
    assert dashboard.status(job_id) == "dead"
    page.context.close()


def test_the_workflow_graph_shows_each_steps_state_live(
    dashboard: Dashboard, browser: Any
) -> None:
    gate = dashboard.root / "graph.open"
    run = dashboard.api.post("/workflow-runs", json={"workflow": {"name": "gated", "steps": [
        {"name": "extract", "task": "step", "args": ["e"]},
        {"name": "wait", "task": "wait_for_file", "args": [str(gate)], "after": ["extract"]},
        {"name": "load", "task": "step", "args": ["l"], "after": ["wait"]},
        {"name": "notify", "task": "step", "args": ["n"], "after": ["extract"]}]}}).json()

    def states() -> dict[str, str]:
        got = dashboard.api.get(f"/workflow-runs/{run['id']}").json()
        return {step["name"]: step["job"]["status"] for step in got["steps"]}

    wait_for(lambda: states()["wait"] == "running", timeout=30, what="the gated step to run")
    page = signed_in(browser, dashboard)
    page.goto(f"{dashboard.url}{NS}/workflow-runs/{run['id']}")

    def on_screen() -> dict[str, str]:
        found: dict[str, str] = page.evaluate("""() => Object.fromEntries(
            [...document.querySelectorAll('svg.graph [data-step]')]
                .map((node) => [node.dataset.step, node.dataset.status]))""")
        return found

    assert on_screen() == states()
    assert on_screen()["wait"] == "running"
    assert on_screen()["load"] == "waiting"
    page.wait_for_selector("#live-state[data-state='on']")
    screenshot(page, "workflow-graph-running")

    gate.touch()

    page.wait_for_function("""() => [...document.querySelectorAll('svg.graph [data-step]')]
        .every((node) => node.dataset.status === 'succeeded')""")
    assert page.locator("#run-status").inner_text() == "succeeded"
    screenshot(page, "workflow-graph-done")
    page.context.close()


def test_the_pages_are_usable_with_the_keyboard(dashboard: Dashboard, browser: Any) -> None:
    page = signed_in(browser, dashboard)
    page.goto(f"{dashboard.url}{NS}/jobs")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    # After the skip link, the focus is on the page's first field, and it shows where.
    focused = page.evaluate("""() => { const e = document.activeElement;
        return [e.name, getComputedStyle(e).outlineStyle]; }""")
    assert focused == ["status", "solid"]
    page.get_by_label("Status").select_option("dead")
    page.keyboard.press("Tab")  # from the status to the next field, then to the button
    page.get_by_role("button", name="Filter").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*status=dead.*"))
    screenshot(page, "keyboard-filter")
    page.context.close()


def _queue_row(page: Any, queue: str) -> Any:
    return page.locator(f"tbody[data-queue='{queue}'] tr.queue-row")


@pytest.mark.parametrize("width", [1280, 390])
def test_a_queue_is_paused_and_resumed_from_the_queues_page_with_the_keyboard(
    dashboard: Dashboard, browser: Any, width: int
) -> None:
    page = signed_in(browser, dashboard, width=width)
    page.on("dialog", lambda dialog: dialog.accept())
    dashboard.enqueue("lane", 0)
    page.goto(f"{dashboard.url}{NS}/queues")
    row = _queue_row(page, "lane")
    assert "active" in row.inner_text()

    row.get_by_role("button", name="Pause queue lane").focus()
    page.keyboard.press("Enter")

    page.wait_for_selector("#notice:not([hidden])")
    assert page.locator("#notice").inner_text() == "Paused queue lane."
    assert [p.name for p in dashboard.store.list_pauses("default")
            if p.kind is GateKind.QUEUE] == ["lane"]
    assert "paused" in _queue_row(page, "lane").inner_text()
    # Live: a job enqueued now shows in the paused queue's depth without a reload.
    page.evaluate("window.notReloaded = true")
    page.wait_for_selector("#live-state[data-state='on']")
    held = dashboard.enqueue("lane", 1)
    page.wait_for_function("""() => { const row = document.querySelector(
        "tbody[data-queue='lane'] tr.queue-row");
        return row && /holds 1/.test(row.textContent); }""")
    assert page.evaluate("window.notReloaded") is True
    assert dashboard.status(held) == "queued"
    screenshot(page, f"queues-paused-{width}")

    resume = _queue_row(page, "lane").get_by_role("button", name="Resume queue lane")
    resume.focus()
    page.keyboard.press("Enter")

    # The page reloads with the action's notice.
    page.wait_for_function("""() => document.getElementById("notice").textContent
        .startsWith("Resumed queue lane")""")
    wait_for(lambda: dashboard.status(held) == "succeeded", timeout=30,
             what="the resumed queue's job to run")
    assert dashboard.store.list_pauses("default") == []
    screenshot(page, f"queues-resumed-{width}")
    page.context.close()


def test_jobs_are_deleted_by_selection_and_by_filter_from_the_jobs_page(
    dashboard: Dashboard, browser: Any
) -> None:
    running, gate = _gated_job(dashboard, "delete")
    picked = [dashboard.enqueue("note", f"picked {n}") for n in range(2)]
    kept = dashboard.enqueue("note", "kept")
    wait_for(lambda: all(dashboard.status(job) == "succeeded" for job in [*picked, kept]),
             timeout=30, what="the notes to run")
    page = signed_in(browser, dashboard)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{dashboard.url}{NS}/jobs")
    for job_id in [*picked, running]:
        page.locator(f"input.pick[value='{job_id}']").check()
    assert page.locator("#selected-count").inner_text() == "3"
    screenshot(page, "jobs-before-delete")

    page.get_by_role("button", name="Delete selected").click()

    page.wait_for_selector("#notice:not([hidden])")
    notice = page.locator("#notice").inner_text()
    assert notice.startswith("Done for 2 job(s); 1 refused"), notice
    assert "running" in notice
    assert dashboard.store.get_jobs("default", picked) == []
    assert dashboard.status(running) == "running"
    assert page.locator(f"input.pick[value='{picked[0]}']").count() == 0
    gate.touch()
    wait_for(lambda: dashboard.status(running) == "succeeded", timeout=30,
             what="the gated job to finish")

    page.goto(f"{dashboard.url}{NS}/jobs?task=note")
    page.get_by_role("button", name="Delete all matching").click()

    page.wait_for_selector("#notice:not([hidden])")
    assert page.locator("#notice").inner_text().startswith("Done for 1 job(s)")
    assert dashboard.store.get_jobs("default", [kept]) == []
    assert "No job matches" in page.locator("main").inner_text()
    screenshot(page, "jobs-after-delete")
    page.context.close()


def test_the_overview_shows_an_alert_while_it_fires_without_a_reload(
    dashboard: Dashboard, browser: Any
) -> None:
    answer = dashboard.api.put("/alerts/lane-starving", json={
        "kind": "oldest_ready", "queue": "lane", "threshold": "1s",
        "url": "http://127.0.0.1:9/hook"})
    assert answer.status_code == 200, answer.text
    assert dashboard.api.post("/queues/lane/pause").status_code == 200
    job_id = dashboard.enqueue("lane", 2)
    page = signed_in(browser, dashboard)
    page.evaluate("window.notReloaded = true")
    page.wait_for_selector("#live-state[data-state='on']")
    assert page.locator("[data-alert='lane-starving']").count() == 0
    store = dashboard.store

    def judged(state: str) -> bool:
        store.evaluate_alert(store.get_alert("default", "lane-starving"))
        return store.get_alert("default", "lane-starving").state.value == state

    try:
        # The job ages in the paused queue until the rule, judged again, fires.
        wait_for(lambda: judged("firing"), timeout=30, what="the alert to fire")
        page.wait_for_selector("[data-alert='lane-starving']")
        firing = page.locator("[data-alert='lane-starving']").inner_text()
        assert "a ready job of queue lane has waited more than 1 s" in firing
        assert page.locator("[data-k='alerts']").inner_text() == "1"
        assert page.evaluate("window.notReloaded") is True
        screenshot(page, "overview-alert-firing")
    finally:
        assert dashboard.api.post("/queues/lane/resume").status_code == 200
    wait_for(lambda: dashboard.status(job_id) == "succeeded", timeout=30,
             what="the job to run")
    wait_for(lambda: judged("ok"), timeout=30, what="the alert to resolve")
    page.wait_for_selector("[data-alert='lane-starving']", state="detached")
    assert dashboard.api.delete("/alerts/lane-starving").status_code == 204
    page.context.close()


def test_jobs_are_deleted_by_selection_with_the_keyboard_at_phone_width(
    dashboard: Dashboard, browser: Any
) -> None:
    picked = [dashboard.enqueue("add", 390, n) for n in range(2)]
    kept = dashboard.enqueue("add", 390, 2)
    wait_for(lambda: all(dashboard.status(job) == "succeeded" for job in [*picked, kept]),
             timeout=30, what="the jobs to run")
    page = signed_in(browser, dashboard, width=390)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{dashboard.url}{NS}/jobs?task=add")
    for job_id in picked:
        box = page.locator(f"input.pick[value='{job_id}']")
        box.focus()
        page.keyboard.press("Space")
        assert box.is_checked()
    assert page.locator("#selected-count").inner_text() == "2"
    delete = page.get_by_role("button", name="Delete selected")
    delete.focus()
    # Reachable on a phone: the focused button lies within the 390 px wide viewport.
    assert page.evaluate("document.activeElement.textContent.trim()") == "Delete selected"
    left, right = page.evaluate("""() => { const r = document.activeElement
        .getBoundingClientRect(); return [r.left, r.right]; }""")
    assert left >= 0, left
    assert right <= 390, right
    screenshot(page, "jobs-delete-keyboard-390")

    page.keyboard.press("Enter")

    page.wait_for_selector("#notice:not([hidden])")
    assert page.locator("#notice").inner_text().startswith("Done for 2 job(s)")
    assert dashboard.store.get_jobs("default", picked) == []
    assert dashboard.status(kept) == "succeeded"
    screenshot(page, "jobs-after-delete-keyboard-390")
    page.context.close()


def test_a_workflow_run_fired_by_a_schedule_links_to_and_from_it(
    dashboard: Dashboard, browser: Any
) -> None:
    answer = dashboard.api.put("/schedules/nightly-etl", json={
        "workflow": {"name": "nightly-etl", "steps": [
            {"name": "extract", "task": "step", "args": ["e"]},
            {"name": "load", "task": "step", "args": ["l"], "after": ["extract"]}]},
        "cron": "0 3 * * *", "timezone": "UTC"})
    assert answer.status_code == 200, answer.text
    fired = dashboard.api.post("/schedules/nightly-etl/trigger")
    assert fired.status_code == 200, fired.text
    run_id = fired.json()["workflow_run_id"]
    assert run_id is not None
    wait_for(lambda: dashboard.api.get(f"/workflow-runs/{run_id}").json()["status"]
             == "succeeded", timeout=30, what="the fired run to succeed")
    page = signed_in(browser, dashboard)
    page.goto(f"{dashboard.url}{NS}/schedules")
    card = page.locator("#schedule-nightly-etl")
    link = card.get_by_role("link", name=f"run {run_id}")
    assert "succeeded" in card.locator(".schedule-runs").inner_text()
    screenshot(page, "schedule-fired-run")

    link.click()

    page.wait_for_url(f"**{NS}/workflow-runs/{run_id}")
    origin = page.locator(".run-origin")
    assert origin.inner_text().startswith("Fired by schedule nightly-etl, fire of ")
    screenshot(page, "run-fired-by-schedule")
    origin.get_by_role("link", name="nightly-etl").click()
    page.wait_for_url(f"**{NS}/schedules#schedule-nightly-etl")
    page.context.close()
