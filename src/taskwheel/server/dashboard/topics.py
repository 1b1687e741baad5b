"""What a live topic shows: each is rendered once per refresh by the `LiveFeed` and sent
to every tab watching it, as one line of JSON.

- ``overview``, ``queues``, ``workers``: ``{"html": ...}``, the page's live fragment;
- ``job:ID``: ``{"html": ..., "status": ...}``, the job's state, result, error and
  attempts;
- ``run:ID``: ``{"html": ..., "status": ...}``, the run's graph and steps;
- ``jobs:ID.ID...``: ``{"statuses": {"ID": status}}``, the rows of a jobs page.
"""

from __future__ import annotations

import json
import re

from taskwheel.client import Client
from taskwheel.server.dashboard import views
from taskwheel.server.dashboard.rendering import fragment
from taskwheel.stores.base import Store

MAX_TOPICS = 20
MAX_IDS = 500
_PAGES = ("overview", "queues", "workers")
_ONE = re.compile(r"(job|run):([1-9][0-9]{0,17})")
_MANY = re.compile(r"jobs:([1-9][0-9]{0,17}(\.[1-9][0-9]{0,17})*)")


def parse_topics(text: str) -> list[str]:
    """The topics of a comma-separated list, each checked (ValueError naming the bad
    one)."""
    topics = [topic.strip() for topic in text.split(",") if topic.strip()]
    if not topics:
        raise ValueError("name at least one topic")
    for topic in topics:
        if topic in _PAGES or _ONE.fullmatch(topic):
            continue
        many = _MANY.fullmatch(topic)
        if many and len(many.group(1).split(".")) <= MAX_IDS:
            continue
        raise ValueError(f"unknown topic {topic[:80]!r}")
    return list(dict.fromkeys(topics))


class TopicRenderer:
    """Renders a topic of a namespace from the store (the `LiveFeed`'s ``render``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, namespace: str, topic: str) -> str:
        client = Client(self.store, namespace)
        if topic == "overview":
            return _html(fragment("_overview.html", o=views.overview(client), ns=namespace))
        if topic == "queues":
            return _html(fragment("_queues.html", stats=client.stats(), ns=namespace))
        if topic == "workers":
            return _html(fragment("_workers.html", stats=client.stats(), ns=namespace,
                                  now=self.store.now(),
                                  running=views.running_by_worker(client)))
        kind, _, ident = topic.partition(":")
        if kind == "job":
            job = client.job(int(ident)).record
            html = fragment("_job.html", job=job, attempts=client.attempts(job.id),
                            ns=namespace)
            return json.dumps({"html": html, "status": job.status.value})
        if kind == "run":
            run = client.workflow_run(int(ident)).record
            html = fragment("_run.html", run=run, graph=views.run_graph(run),
                            ns=namespace)
            return json.dumps({"html": html, "status": run.status.value})
        jobs = client.get_jobs([int(i) for i in ident.split(".")])
        return json.dumps({"statuses": {str(job.id): job.status.value for job in jobs}})


def _html(text: str) -> str:
    return json.dumps({"html": text})
