"""Webhooks: defined by an admin under ``/api/v1/namespaces/{namespace}/webhooks``;
delivered to ``POST /hooks/{namespace}/{webhook}``, where a request signed with the
webhook's secret (``X-Signature-256: sha256=<hex>``, HMAC-SHA256 of the raw body)
becomes a job of its task with the JSON body as the one argument (see
`taskwheel.webhooks`).

The delivery route takes no API key: the signature is its authentication (a sender such
as GitHub signs, it does not hold keys). Its namespace is in its path, so webhooks of
two namespaces may share a name and no namespace learns of another's.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from taskwheel.client import Client
from taskwheel.errors import InvalidInput, WebhookNotFound
from taskwheel.keys import Role
from taskwheel.server.auth import Access, namespace_access, state_of
from taskwheel.server.models import Answer, JobOut
from taskwheel.server.models import Request as Body
from taskwheel.server.problems import Problem, invalid_input, not_found
from taskwheel.validators import validate_name
from taskwheel.webhooks import (
    SIGNATURE_HEADER,
    Webhook,
    idempotency_key,
    new_webhook,
    verify_signature,
)

router = APIRouter(prefix="/api/v1/namespaces/{namespace}/webhooks", tags=["webhooks"])
receiver = APIRouter(tags=["webhooks"])

Reader = Annotated[Access, Depends(namespace_access(Role.READ))]
Admin = Annotated[Access, Depends(namespace_access(Role.ADMIN))]


class WebhookIn(Body):
    task: str = Field(description="The task each delivery becomes a job of.")
    queue: str | None = Field(None, description="Its queue; the task's when null.")
    secret: str | None = Field(None, description="16 to 256 characters; a random one when "
                                                 "null (answered once, here).")
    idempotency_header: str | None = Field(
        None, description="A header carrying each delivery's id (X-GitHub-Delivery).")
    idempotency_pointer: str | None = Field(
        None, description="Or a JSON pointer to the id in the body (/id).")


class WebhookOut(Answer):
    namespace: str
    name: str
    task: str
    queue: str | None
    idempotency_header: str | None
    idempotency_pointer: str | None
    url_path: str = Field(description="Where deliveries go.")

    @classmethod
    def of(cls, hook: Webhook) -> WebhookOut:
        return cls(namespace=hook.namespace, name=hook.name, task=hook.task,
                   queue=hook.queue, idempotency_header=hook.idempotency_header,
                   idempotency_pointer=hook.idempotency_pointer,
                   url_path=f"/hooks/{hook.namespace}/{hook.name}")


class DefinedWebhook(WebhookOut):
    secret: str = Field(description="Shown here only: sign deliveries with it.")


class WebhookList(Answer):
    webhooks: list[WebhookOut]


@router.get("", response_model=WebhookList, summary="The namespace's webhooks")
def list_webhooks(access: Reader) -> WebhookList:
    """Never their secrets."""
    return WebhookList(webhooks=[WebhookOut.of(h) for h in access.client.webhooks()])


@router.put("/{webhook}", response_model=DefinedWebhook, summary="Define a webhook")
def define_webhook(access: Admin, webhook: str, body: WebhookIn) -> DefinedWebhook:
    """Create the webhook, or replace its definition (and secret)."""
    access.state.app.get_task(body.task)  # a task the server's app defines
    hook = access.client.define_webhook(new_webhook(
        access.namespace, webhook, body.task, secret=body.secret, queue=body.queue,
        idempotency_header=body.idempotency_header,
        idempotency_pointer=body.idempotency_pointer))
    return DefinedWebhook(**WebhookOut.of(hook).model_dump(), secret=hook.secret)


@router.delete("/{webhook}", status_code=204, response_class=Response,
               summary="Remove a webhook")
def remove_webhook(access: Admin, webhook: str) -> Response:
    """Its deliveries are refused from now on; the jobs it made stay."""
    try:
        access.client.remove_webhook(webhook)
    except WebhookNotFound as exc:
        raise not_found(str(exc)) from None
    return Response(status_code=204)


@receiver.post("/hooks/{namespace}/{webhook}", status_code=202, response_model=JobOut,
               summary="Deliver a webhook: a job of its task",
               responses={202: {"description": "The job (for a redelivery, the first "
                                                "delivery's job), committed."}})
async def deliver(namespace: str, webhook: str, request: Request) -> JobOut:
    """Signed with ``X-Signature-256: sha256=<hex>`` (HMAC-SHA256 of the raw body under
    the webhook's secret; 401 otherwise). The JSON body is the job's one argument."""
    state = state_of(request)
    try:
        client = Client(state.store, validate_name(namespace, "namespace"))
        validate_name(webhook, "webhook")
    except InvalidInput:
        raise _no_webhook(webhook) from None
    try:
        hook = await run_in_threadpool(client.webhook, webhook)
    except WebhookNotFound:
        raise _no_webhook(webhook) from None
    body = await request.body()
    if not verify_signature(hook.secret, body, request.headers.get(SIGNATURE_HEADER)):
        raise Problem(401, "bad-signature", "Unauthorized",
                      f"{SIGNATURE_HEADER} is missing or does not sign this body with the "
                      "webhook's secret", field=SIGNATURE_HEADER)
    payload = _payload(body)
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        key = idempotency_key(hook, headers, payload)
        options: dict[str, Any] = {"idempotency_key": key}
        if hook.queue is not None:
            options["queue"] = hook.queue
        job = state.app.request(hook.task, [payload], namespace=namespace, **options)
    except InvalidInput as exc:
        raise invalid_input(exc.field, exc.reason) from None
    [handle] = await run_in_threadpool(client.enqueue_many, [job])
    return JobOut.of(handle.record)


def _no_webhook(name: str) -> Problem:
    return not_found(f"webhook {name!r} not found")


def _payload(body: bytes) -> Any:
    if not body:
        return None
    if b"\\u0000" in body:  # PostgreSQL keeps no NUL in text (nor does any name or id)
        raise invalid_input("body", "NUL characters are not accepted")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise Problem(400, "malformed-json", "Malformed JSON",
                      f"the body is not valid JSON: {exc}", field="body") from None
