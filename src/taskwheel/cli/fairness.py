"""``taskwheel fairness``: the weights of a namespace's fairness keys; and
``taskwheel queues age`` and ``queues reserve``: a queue's priority aging and the share
of its claims kept for its lower bands (see `taskwheel.fairness`)."""

from __future__ import annotations

import click

from taskwheel.cli.options import Target, common_options, listing_options
from taskwheel.cli.output import new_table
from taskwheel.errors import InvalidInput


@click.group()
def fairness() -> None:
    """Fair shares: the weight of each fairness key of the namespace."""


@fairness.command("weight")
@click.argument("key")
@click.option("--weight", type=float, required=True,
              help="The key's share of a saturated queue's claims against the other keys' "
              "weights (a number > 0; keys without one weigh 1).")
@common_options
def set_weight(target: Target, *, key: str, weight: float) -> None:
    """Set KEY's weight ('' for the jobs without a key). Jobs written from now on take
    their shares by it."""
    with target.client() as client:
        flow = client.set_fair_weight(key, weight)
    if target.output.json:
        target.output.emit_json(flow.to_dict())
    else:
        target.output.note(f"fairness key {key!r}: weight {flow.weight:g}")


@fairness.command("list")
@listing_options
def list_weights(target: Target) -> None:
    """The namespace's fairness keys, their weights and last passes."""
    with target.client() as client:
        flows = client.fair_weights()
    rows = [flow.to_dict() for flow in flows]
    if target.output.data:
        target.output.records(rows, columns=("namespace", "key", "weight", "last_pass"))
        return
    table = new_table(title="fairness keys", title_justify="left")
    for column in ("key", "weight", "last pass"):
        table.add_column(column)
    for flow in flows:
        table.add_row(repr(flow.key), f"{flow.weight:g}", f"{flow.last_pass or 0:g}")
    target.output.console.print(table)


@fairness.command("namespace")
@click.option("--weight", type=float, default=None,
              help="The namespace's share of the claims of a worker that serves it with "
              "other namespaces, against their weights (a number > 0; namespaces without "
              "one weigh 1).")
@click.option("--off", is_flag=True, help="Weigh the namespace 1 again.")
@common_options
def namespace_weight(target: Target, *, weight: float | None, off: bool) -> None:
    """Set the namespace's weight between namespaces (from the next claim on)."""
    if off == (weight is not None):
        raise InvalidInput("weight", "give --weight W or --off")
    with target.client() as client:
        namespace = client.namespace
        if off:
            client.remove_namespace_weight()
        else:
            assert weight is not None
            found = client.set_namespace_weight(weight)
    if off:
        target.output.answer({"namespace": namespace, "weight": None},
                             f"namespace {namespace}: no weight (weighs 1)")
        return
    target.output.answer(found.to_dict(), f"namespace {found.namespace}: weight "
                         f"{found.weight:g}")


@fairness.command("namespaces")
@listing_options
def list_namespace_weights(target: Target) -> None:
    """The namespaces that have a weight."""
    with target.client() as client:
        found = client.store.list_namespace_weights()
    rows = [weight.to_dict() for weight in found]
    if target.output.data:
        target.output.records(rows, columns=("namespace", "weight"))
        return
    table = new_table(title="namespace weights", title_justify="left")
    for column in ("namespace", "weight"):
        table.add_column(column)
    for weight in found:
        table.add_row(weight.namespace, f"{weight.weight:g}")
    target.output.console.print(table)


@click.command("age")
@click.argument("queue")
@click.option("--rate", default=None, metavar="LEVELS/PERIOD",
              help="Priority levels a waiting job gains, e.g. 1/min, 2/30s, 0.5/h.")
@click.option("--cap", type=int, default=None, metavar="PRIORITY",
              help="The priority aging lifts a job to at most: jobs above it do not age "
              "and are claimed first.")
@click.option("--off", is_flag=True, help="Stop aging the queue's jobs written from now on.")
@common_options
def age_queue(target: Target, *, queue: str, rate: str | None, cap: int | None,
              off: bool) -> None:
    """Make QUEUE's waiting jobs gain priority as they wait, so no band starves: a job
    of priority p comes before every job of priority q >= p that falls due
    more than (q - p + 1) / rate after it (up to --cap)."""
    if off == (rate is not None):
        raise InvalidInput("rate", "give --rate LEVELS/PERIOD or --off")
    if off and cap is not None:
        raise InvalidInput("cap", "goes with --rate, not --off")
    with target.client() as client:
        if off:
            client.remove_queue_aging(queue)
        else:
            assert rate is not None
            aging = client.set_queue_aging(queue, rate, cap=cap)
    if off:
        target.output.answer({"queue": queue, "rate": None}, f"queue {queue}: no aging")
        return
    ceiling = "" if aging.cap is None else f", up to priority {aging.cap}"
    target.output.answer(aging.to_dict(), f"queue {queue}: waiting jobs gain "
                         f"{aging.rate * 60:g} priority levels a minute{ceiling}")


@click.command("reserve")
@click.argument("queue")
@click.option("--share", default=None, metavar="PERCENT",
              help="The share of the queue's claims kept, e.g. 10% or 0.1.")
@click.option("--below", type=int, default=None, metavar="PRIORITY",
              help="The reserved bands: jobs ranked below this priority (aged priority, "
              "in a queue that ages).")
@click.option("--off", is_flag=True, help="Keep no share of the queue's claims.")
@common_options
def reserve_queue(target: Target, *, queue: str, share: str | None, below: int | None,
                  off: bool) -> None:
    """Keep a share of QUEUE's claims for its lower bands: whenever jobs ranked below
    --below are ready, at least --share of each worker's claims of the queue take them."""
    if off == (share is not None):
        raise InvalidInput("share", "give --share PERCENT --below PRIORITY, or --off")
    if off and below is not None:
        raise InvalidInput("below", "goes with --share, not --off")
    if not off and below is None:
        raise InvalidInput("below", "give the priority the reserved bands are below")
    with target.client() as client:
        if off:
            client.remove_queue_reserve(queue)
        else:
            assert share is not None
            assert below is not None
            reserve = client.set_queue_reserve(queue, share, below=below)
    if off:
        target.output.answer({"queue": queue, "share": None}, f"queue {queue}: no reserve")
        return
    target.output.answer(reserve.to_dict(), f"queue {queue}: {reserve.share:.0%} of claims "
                         f"kept for jobs below priority {reserve.below}")
