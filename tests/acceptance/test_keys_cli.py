"""``taskwheel keys`` and ``taskwheel quotas``: a key is printed once and never listed;
a revoked key is refused by the store from then on; quotas are set and shown."""

from __future__ import annotations

from taskwheel.jobs import JobFilter

from .conftest import Project


def test_a_key_is_printed_once_listed_without_its_secret_and_revoked(project: Project) -> None:
    created = project.run("keys", "create", "--namespace", "team-a", "--role", "operate",
                          "--name", "ci")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("tw_")
    assert "shown once" in created.stderr
    listed = project.run_json("keys", "list", "--namespace", "team-a")
    assert [(k["name"], k["role"], k["revoked_at"]) for k in listed] == [("ci", "operate",
                                                                           None)]
    assert key not in project.run("keys", "list", "--all-namespaces").stdout
    prefix = listed[0]["prefix"]
    assert key.startswith(f"tw_{prefix}_")
    revoked = project.run_json("keys", "revoke", prefix)
    assert revoked["revoked_at"] is not None
    stored = project.store.get_api_key(prefix)
    assert stored is not None
    assert stored.revoked
    unknown = project.run("keys", "revoke", "00000000")
    assert unknown.returncode == 1
    assert "not found" in unknown.stderr


def test_an_operator_key_and_a_bad_role(project: Project) -> None:
    operator = project.run_json("keys", "create", "--all-namespaces", "--role", "admin")
    assert operator["namespace"] == "*"
    assert operator["key"].startswith("tw_")
    refused = project.run("keys", "create", "--role", "root")
    assert refused.returncode == 2
    both = project.run("keys", "create", "--all-namespaces", "--namespace", "a", "--role",
                       "read")
    assert both.returncode == 2
    assert "--all-namespaces" in both.stderr


def test_quotas_are_set_shown_and_enforced(project: Project) -> None:
    shown = project.run_json("quotas", "set", "--namespace", "team-a", "--max-queued", "0")
    assert shown == {"namespace": "team-a", "max_queued": 0, "max_enqueue_rate": None,
                     "max_active_schedules": None}
    assert project.run_json("quotas", "show", "--namespace", "team-a") == shown
    enqueue = project.run("enqueue", "boom", "--app", "acceptance_app:app", "--namespace",
                          "team-a")
    assert enqueue.returncode == 1
    assert "max_queued" in enqueue.stderr
    assert project.store.list_jobs("team-a", JobFilter()) == []
    assert project.run_json("quotas", "set", "--namespace", "team-a")["max_queued"] is None
    assert project.run("enqueue", "boom", "--app", "acceptance_app:app", "--namespace",
                       "team-a").returncode == 0
