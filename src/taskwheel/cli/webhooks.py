"""``taskwheel webhooks``: define, list and remove the webhooks the HTTP server turns
into jobs (``POST /hooks/{namespace}/{name}``; see `taskwheel.webhooks`)."""

from __future__ import annotations

import click

from taskwheel.cli.options import Target, app_option, common_options, listing_options
from taskwheel.cli.output import _when, new_table
from taskwheel.webhooks import new_webhook


@click.group()
def webhooks() -> None:
    """Webhooks of the HTTP server: signed requests that become jobs."""


@webhooks.command("create")
@click.argument("name")
@click.option("--task", required=True, help="The task each delivery becomes a job of "
              "(its JSON body the one argument).")
@click.option("--queue", default=None, help="The jobs' queue.  [default: the task's]")
@click.option("--secret", default=None, envvar="TASKWHEEL_WEBHOOK_SECRET",
              help="The signing secret (16 to 256 characters).  [default: a random one, "
              "printed once]")
@click.option("--idempotency-header", default=None, metavar="HEADER",
              help="A header carrying each delivery's id (X-GitHub-Delivery): a "
              "redelivery makes no second job.")
@click.option("--idempotency-pointer", default=None, metavar="POINTER",
              help="Or a JSON pointer to the id in the body (/id).")
@app_option
@common_options
def create_webhook(
    target: Target, *, name: str, task: str, queue: str | None, secret: str | None,
    idempotency_header: str | None, idempotency_pointer: str | None, app_spec: str,
) -> None:
    """Create the webhook NAME in --namespace, or replace its definition; print its
    secret (sign deliveries with it: X-Signature-256: sha256=HMAC-SHA256(body))."""
    app = target.load(app_spec)
    try:
        app.get_task(task)  # refused here, not at the first delivery
        hook = app.client.define_webhook(new_webhook(
            app.namespace, name, task, secret=secret, queue=queue,
            idempotency_header=idempotency_header, idempotency_pointer=idempotency_pointer))
    finally:
        app.close()
    if target.output.json:
        target.output.emit_json({**hook.to_dict(), "secret": hook.secret,
                                 "url_path": f"/hooks/{hook.namespace}/{hook.name}"})
        return
    click.echo(hook.secret)
    click.echo(f"webhook {hook.name}: POST /hooks/{hook.namespace}/{hook.name} makes a job "
               f"of {hook.task}; sign with the secret above", err=True)


@webhooks.command("list")
@listing_options
def list_webhooks(target: Target) -> None:
    """--namespace's webhooks (never their secrets)."""
    with target.client() as client:
        found = client.webhooks()
    if target.output.data:
        target.output.records([hook.to_dict() for hook in found], columns=("name", "task"))
        return
    table = new_table(title="Webhooks", title_justify="left")
    for column in ("name", "task", "queue", "delivery id", "created"):
        table.add_column(column)
    for hook in found:
        source = hook.idempotency_header or hook.idempotency_pointer or "-"
        table.add_row(hook.name, hook.task, hook.queue or "-", source, _when(hook.created_at))
    target.output.console.print(table)


@webhooks.command("remove")
@click.argument("name")
@common_options
def remove_webhook(target: Target, *, name: str) -> None:
    """Remove the webhook NAME: its deliveries are refused from now on."""
    with target.client() as client:
        client.remove_webhook(name)
    target.output.note(f"removed webhook {name}")
