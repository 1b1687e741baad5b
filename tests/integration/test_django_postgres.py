"""The Django integration on PostgreSQL: a job enqueued with ``using=django.db.connection``
inside ``transaction.atomic()`` commits and rolls back with the block, through Django's
own psycopg 3 connection. Run in a process of its own: Django's settings are global, and
the example's tests (examples/django_signups) configure them for SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from contract.backends import DATABASE_URLS
from pg_server import postgres_url

SCRIPT = """
import json, sys
import django
from django.conf import settings

database, store_url = json.loads(sys.argv[1]), sys.argv[2]
settings.configure(DATABASES={"default": database}, USE_TZ=True,
                   INSTALLED_APPS=["taskwheel.integrations.django"],
                   TASKWHEEL={"APP": "__main__:jobs", "DATABASE_URL": store_url})

import taskwheel
jobs = taskwheel.App(name="django-postgres")

@jobs.task
def welcome(email: str) -> str:
    return email

django.setup()
from django.db import connection, transaction
jobs.migrate()

with transaction.atomic():
    kept = welcome.enqueue("kept@b.c", using=connection)
try:
    with transaction.atomic():
        welcome.enqueue("dropped@b.c", using=connection)
        raise RuntimeError("the view failed")
except RuntimeError:
    pass
outside = welcome.enqueue("autocommit@b.c", using=connection)  # Django's autocommit
print(json.dumps(sorted(job.args[0] for job in jobs.list_jobs())))
"""


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_a_django_atomic_block_commits_or_drops_its_job(
    backend: str, tmp_path: Path
) -> None:
    server = conninfo_to_dict(postgres_url())
    database = {"ENGINE": "django.db.backends.postgresql",
                "NAME": server.get("dbname", "postgres"), "USER": server.get("user", ""),
                "PASSWORD": server.get("password", ""), "HOST": server.get("host", ""),
                "PORT": server.get("port", "")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(database), DATABASE_URLS[backend](tmp_path)],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["autocommit@b.c", "kept@b.c"]
