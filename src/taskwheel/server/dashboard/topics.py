"""What a live topic shows: each is rendered once per refresh by the `LiveFeed` and sent
to every tab watching it, as one line of JSON.

- ``overview``, ``queues``, ``workers``: ``{"html": ...}``, the page's live fragment;
- ``queues:operate``: the queues fragment with its pause and resume buttons (for a key
  that may use them, which the stream checks);
- ``job:ID``: ``{"html": ..., "status": ...}``, the job's state, result, error and
  attempts;
- ``run:ID``: ``{"html": ..., "status": ...}``, the run's graph and steps;
- ``jobs:ID.ID...``: ``{"statuses": {"ID": status}}``, the rows of a jobs page.
"""

from __future__ import annotations

import json
import logging
import re
import time

from taskwheel.client import Client
from taskwheel.jobs import StartWaits, Stats
from taskwheel.server.dashboard import views
from taskwheel.server.dashboard.rendering import fragment
from taskwheel.stores.base import Store

log = logging.getLogger("taskwheel.server")

MAX_TOPICS = 20
MAX_IDS = 500
_PAGES = ("overview", "queues", "queues:operate", "workers")
# Topics whose fragment carries action buttons: only for keys that may operate.
OPERATE_TOPICS = frozenset({"queues:operate"})
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
    """Renders the watched topics from the store (the `LiveFeed`'s ``render``): once per
    refresh, one statistics read per namespace serves its overview, queues and workers
    topics; the throughput chart (a scan of the last hour's attempts, per minute) and
    the queues' waits to start (a scan of the recent starts) are read again at most
    every ``chart_every`` seconds."""

    def __init__(self, store: Store, *, chart_every: float = 10.0) -> None:
        self.store = store
        self.chart_every = chart_every
        self._charts: dict[str, tuple[float, list[tuple[float, str, int]]]] = {}
        self._waits: dict[str, tuple[float, list[StartWaits]]] = {}

    def __call__(self, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        stats: dict[str, Stats] = {}
        bodies: dict[tuple[str, str], str] = {}
        for namespace, topic in wanted:
            client = Client(self.store, namespace)
            try:
                if topic in _PAGES and namespace not in stats:
                    stats[namespace] = client.stats()
                bodies[(namespace, topic)] = self._render(client, topic, stats.get(namespace))
            except Exception:  # one topic gone wrong (a job purged) spoils no other
                log.debug("topic %s of %s could not be rendered", topic, namespace,
                          exc_info=True)
        return bodies

    def _finished(self, client: Client) -> list[tuple[float, str, int]]:
        moment = time.monotonic()
        kept = self._charts.get(client.namespace)
        if kept is None or moment - kept[0] >= self.chart_every:
            since = self.store.now() - views.CHART_MINUTES * 60
            kept = (moment, self.store.finished_per_minute(client.namespace, since))
            self._charts[client.namespace] = kept
        return kept[1]

    def _start_waits(self, client: Client) -> list[StartWaits]:
        moment = time.monotonic()
        kept = self._waits.get(client.namespace)
        if kept is None or moment - kept[0] >= self.chart_every:
            since = self.store.now() - views.WAIT_MINUTES * 60
            kept = (moment, self.store.start_waits(client.namespace, since))
            self._waits[client.namespace] = kept
        return kept[1]

    def _render(self, client: Client, topic: str, stats: Stats | None) -> str:
        namespace = client.namespace
        if topic == "overview":
            found = views.overview(client, stats=stats, finished=self._finished(client))
            return _html(fragment("_overview.html", o=found, ns=namespace))
        if topic in ("queues", "queues:operate"):
            rows = views.queues(client, stats=stats, waits=self._start_waits(client))
            return _html(fragment("_queues.html", rows=rows, ns=namespace,
                                  wait_minutes=views.WAIT_MINUTES,
                                  can_operate=topic in OPERATE_TOPICS))
        if topic == "workers":
            return _html(fragment("_workers.html", stats=stats, ns=namespace,
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
