"""A report of outcomes whose jobs' ends move nothing else leaves in one send (BEGIN, the
statement and COMMIT together): once PostgreSQL has it, it commits whether or not the
worker that sent it still lives. That is what keeps the window in which a worker's
death runs a finished job again as narrow as the send. (A server set to check its
clients while a statement runs, `client_connection_check_interval`, would cancel it
instead: the job then runs again, as for any lost report.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from typing import Any

import psycopg
from psycopg import sql

from taskwheel.jobs import AttemptOutcome
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.postgres import PostgresStore
from waiting import wait_for

from .conftest import NS, QUEUE, new_job

# The worker's side: the report of one job, whose answer it waits for (and never reads).
_REPORT = """
import sys
from taskwheel.jobs import AttemptOutcome, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.postgres import PostgresStore

store = PostgresStore(sys.argv[1])
store.finish_attempts([Outcome(int(sys.argv[2]), int(sys.argv[3]), JobStatus.SUCCEEDED,
                               AttemptOutcome.SUCCEEDED, result_json="1", ends_alone=True)])
"""


def test_a_report_once_sent_commits_though_its_sender_is_killed_before_the_answer(
    store: PostgresStore, url: str, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
) -> None:
    [job] = store.enqueue([new_job()])
    [claimed] = store.claim_jobs(NS, "w", [QUEUE], 1, 30).jobs
    reporter = f"tw-report-{uuid.uuid4().hex[:8]}"
    report_url = url.rsplit("&application_name=", 1)[0] + f"&application_name={reporter}"
    with psycopg.connect(admin.info.dsn) as blocker:
        # The job's row locked by another transaction: the report, once received, waits
        # on the server for that lock, while its sender waits for the answer.
        blocker.execute(sql.SQL("SELECT 1 FROM {}.jobs WHERE id = %s FOR UPDATE").format(
            sql.Identifier(schema)), (job.id,))
        sender = subprocess.Popen([sys.executable, "-c", _REPORT, report_url, str(job.id),
                                   str(claimed.fence)])
        try:
            wait_for(lambda: _waits_for_a_lock(admin, reporter), timeout=20,
                     what="the report to reach the server and wait for the row")
        finally:
            sender.send_signal(signal.SIGKILL)
        assert sender.wait(10) == -signal.SIGKILL
        blocker.rollback()  # the lock goes; the sender is dead

    wait_for(lambda: store.get_job(NS, job.id).status is JobStatus.SUCCEEDED, timeout=20,
             what="the report sent by a process now dead to commit")
    [attempt] = store.list_attempts(NS, job.id)
    assert (attempt.fence, attempt.outcome) == (claimed.fence, AttemptOutcome.SUCCEEDED)
    assert store.get_job(NS, job.id).result == 1


def _waits_for_a_lock(admin: psycopg.Connection[tuple[Any, ...]], application_name: str) -> bool:
    admin.execute("SELECT pg_stat_clear_snapshot()")
    found = admin.execute(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = %s"
        " AND wait_event_type = 'Lock'", (application_name,)).fetchone()
    return found is not None

