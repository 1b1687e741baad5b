"""``taskwheel keys``: create, list and revoke the HTTP server's API keys, and
``taskwheel quotas``: set and show a namespace's limits."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from taskwheel.app import open_checked_store
from taskwheel.cli.options import Target, common_options, listing_options
from taskwheel.cli.output import _when, new_table
from taskwheel.errors import InvalidInput
from taskwheel.keys import Role, generate_key
from taskwheel.stores.base import Store
from taskwheel.validators import ALL_NAMESPACES


@contextlib.contextmanager
def _store(target: Target) -> Iterator[Store]:
    store = open_checked_store(target.database_url)
    try:
        yield store
    finally:
        store.close()


_KEY_COLUMNS = ("prefix", "name", "namespace", "role", "created_at", "revoked_at")


@click.group()
def keys() -> None:
    """API keys of the HTTP server (``taskwheel server``)."""


@keys.command("create")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True,
              help="read; operate (also enqueue, cancel, retry, pause); admin (also "
              "schedules, purge, and for an operator's key, quotas).")
@click.option("--all-namespaces", is_flag=True,
              help="A key of every namespace (an operator's); not with --namespace.")
@click.option("--name", default=None, help="What the key is for.  [default: NAMESPACE-ROLE]")
@common_options
def create_key(target: Target, *, role: str, all_namespaces: bool, name: str | None) -> None:
    """Create a key and print it, once: only a digest of it is stored."""
    if all_namespaces and target.namespace is not None:
        raise InvalidInput("all_namespaces", "a key of every namespace or of the one "
                           "--namespace names, not both")
    namespace = ALL_NAMESPACES if all_namespaces else (target.namespace or "default")
    new = generate_key(namespace, role, name)
    with _store(target) as store:
        stored = store.create_api_key(new)
    if target.output.json:
        target.output.emit_json({**stored.to_dict(), "key": new.key})
        return
    click.echo(new.key)
    click.echo(f"key {stored.prefix} ({stored.name}): role {stored.role.value} in "
               f"{'every namespace' if namespace == ALL_NAMESPACES else namespace}; "
               "shown once, keep it now", err=True)


@keys.command("list")
@click.option("--all-namespaces", is_flag=True, help="Every key.")
@listing_options
def list_keys(target: Target, *, all_namespaces: bool) -> None:
    """Keys (prefix, name, namespace, role, created, revoked); never their secrets.
    Those of --namespace, or every key with --all-namespaces."""
    with _store(target) as store:
        found = store.list_api_keys(None if all_namespaces else target.namespace or "default")
    if target.output.data:
        target.output.records([key.to_dict() for key in found], columns=_KEY_COLUMNS)
        return
    table = new_table(title="API keys", title_justify="left")
    for column in ("prefix", "name", "namespace", "role", "created", "revoked"):
        table.add_column(column)
    for key in found:
        table.add_row(key.prefix, key.name, key.namespace, key.role.value,
                      _when(key.created_at), _when(key.revoked_at))
    target.output.console.print(table)


@keys.command("revoke")
@click.argument("prefix")
@common_options
def revoke_key(target: Target, *, prefix: str) -> None:
    """Revoke the key PREFIX: refused from the next request on, by every server."""
    with _store(target) as store:
        key = store.revoke_api_key(prefix)
    if target.output.json:
        target.output.emit_json(key.to_dict())
    else:
        target.output.note(f"revoked key {key.prefix} ({key.name})")


@click.group()
def quotas() -> None:
    """A namespace's limits: jobs waiting to run, enqueue rate, active schedules."""


@quotas.command("set")
@click.option("--max-queued", type=click.IntRange(min=0), default=None,
              help="Most jobs waiting to run (queued, scheduled, waiting).")
@click.option("--max-enqueue-rate", type=click.FloatRange(min=0, min_open=True),
              default=None, help="Most jobs enqueued per second (bursts of one second's).")
@click.option("--max-active-schedules", type=click.IntRange(min=0), default=None,
              help="Most schedules neither paused nor finished.")
@common_options
def set_quota(
    target: Target, *, max_queued: int | None, max_enqueue_rate: float | None,
    max_active_schedules: int | None,
) -> None:
    """Set --namespace's limits (a limit left out is none; none at all removes them)."""
    with target.client() as client:
        quota = client.set_quota(max_queued=max_queued, max_enqueue_rate=max_enqueue_rate,
                                 max_active_schedules=max_active_schedules)
    _show(target, quota.to_dict())


@quotas.command("show")
@listing_options
def show_quota(target: Target) -> None:
    """--namespace's limits."""
    with target.client() as client:
        _show(target, client.quota().to_dict())


def _show(target: Target, quota: dict[str, object]) -> None:
    if target.output.json:
        target.output.emit_json(quota)
        return
    if target.output.data:
        target.output.records([quota])
        return
    for field, value in quota.items():
        target.output.note(f"{field}: {'none' if value is None else value}")
