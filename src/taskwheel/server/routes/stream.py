"""Live updates as server-sent events: ``GET /api/v1/namespaces/{ns}/stream?topics=...``.

Each event is named for its topic and carries what the topic shows now (see
`taskwheel.server.dashboard.topics`); the first of each topic comes at once, then one
per change. Every tab's stream is fed by the server's one `LiveFeed`, never by reads of
its own. A comment line every ``_KEEPALIVE`` seconds keeps proxies from closing a quiet
stream; a stream ends by itself after ``_MAX_AGE`` seconds (the browser reconnects at
once), so a server that is stopping never waits long for its streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from taskwheel.keys import Role
from taskwheel.server.auth import Access, namespace_access
from taskwheel.server.dashboard.feed import LiveFeed
from taskwheel.server.dashboard.topics import MAX_TOPICS, OPERATE_TOPICS, parse_topics
from taskwheel.server.problems import Problem, invalid_input

# Not in the OpenAPI document: a stream never ends, which its generic clients (and the
# fuzzing and isolation tests that walk every documented operation) cannot read. Its
# key checks are the API's (tests/dashboard/test_stream.py).
router = APIRouter(prefix="/api/v1/namespaces/{namespace}", tags=["live updates"],
                   include_in_schema=False)

_KEEPALIVE = 15.0
_MAX_AGE = 300.0


@router.get("/stream", summary="Live updates of topics (server-sent events)",
            response_class=StreamingResponse)
async def stream(
    access: Annotated[Access, Depends(namespace_access(Role.READ))],
    request: Request,
    topics: Annotated[str, Query(max_length=4000, description=(
        "comma-separated: overview, queues, queues:operate (with its buttons, for a key "
        "that operates), workers, job:ID, run:ID, jobs:ID.ID..."))],
) -> StreamingResponse:
    """An ``text/event-stream`` of the topics' versions: ``event: <topic>`` and ``data:``
    one JSON document (``{"html": ...}`` for a fragment of the dashboard's page)."""
    try:
        wanted = parse_topics(topics)
    except ValueError as exc:
        raise invalid_input("topics", str(exc)) from None
    if len(wanted) > MAX_TOPICS:
        raise invalid_input("topics", f"at most {MAX_TOPICS} topics per stream")
    role = access.principal.key.role
    for topic in wanted:
        if topic in OPERATE_TOPICS and not role.allows(Role.OPERATE):
            raise Problem(403, "forbidden", "Forbidden",
                          f"topic {topic!r} needs a key with role operate or higher; this "
                          f"key's role is {role.value}")
    feed = request.app.state.live_feed
    assert isinstance(feed, LiveFeed)
    return StreamingResponse(_events(feed, access.namespace, wanted),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _events(feed: LiveFeed, namespace: str, topics: list[str]) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    ends = loop.time() + _MAX_AGE
    yield "retry: 1000\n\n"
    async with feed.watching(namespace, topics) as updates:
        while (left := ends - loop.time()) > 0:
            try:
                update = await asyncio.wait_for(updates.get(), min(_KEEPALIVE, left))
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if update is None:
                return
            topic, body = update
            yield f"event: {topic}\ndata: {body}\n\n"
