"""A FastAPI application whose signups send a welcome email through taskwheel.

The welcome job is enqueued in the request's own transaction, with the signup row:
a signup that fails (the address is taken) leaves no job behind, and a job exists only
for a signup that was committed.

    taskwheel migrate                                    # the jobs' tables
    uvicorn signups:api                                  # the web application
    taskwheel worker --app signups:jobs                  # runs the welcome jobs

The database is ``$TASKWHEEL_DATABASE_URL`` (a SQLite file here; the signups table
lives in the same file as taskwheel's tables).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, HTTPException

import taskwheel
from taskwheel.integrations.fastapi import TaskwheelClient, in_transaction, lifespan
from taskwheel.stores import sqlite_path

jobs = taskwheel.App(name="signups")


@jobs.task(retry=5)
def send_welcome(email: str) -> str:
    return f"welcome sent to {email}"


def connect() -> sqlite3.Connection:
    # IMMEDIATE: the transaction takes the write lock at its start, as taskwheel's do.
    # FastAPI opens it in one thread and runs the route in another.
    return sqlite3.connect(sqlite_path(jobs.database_url), isolation_level="IMMEDIATE",
                           check_same_thread=False)


@asynccontextmanager
async def create_tables(api: FastAPI) -> AsyncIterator[None]:
    with connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS signups (email TEXT PRIMARY KEY)")
    yield


api = FastAPI(lifespan=lifespan(jobs, then=create_tables))
# A route parameter of this type is a connection in the request's transaction.
Transaction = Annotated[sqlite3.Connection, in_transaction(connect)]


@api.post("/signups", status_code=201)
def sign_up(email: str, conn: Transaction) -> dict[str, object]:
    welcome = send_welcome.enqueue(email, using=conn)
    try:
        conn.execute("INSERT INTO signups (email) VALUES (?)", [email])
    except sqlite3.IntegrityError:
        raise HTTPException(409, f"{email} has signed up already") from None
    return {"email": email, "welcome_job": welcome.id}


@api.get("/jobs/{job_id}")
def job_status(job_id: int, client: TaskwheelClient) -> dict[str, object]:
    job = client.job(job_id)
    return {"id": job.id, "status": job.status.value}
