"""Webhooks: a request to ``POST /hooks/{namespace}/{name}`` becomes a job of a chosen
task, its JSON body the job's one argument.

A webhook is defined by an admin (`Client.define_webhook`, ``taskwheel webhooks
create``, ``PUT .../webhooks/{name}``) and stored in the database, so every server knows
it. Each has a secret: a request must carry ``X-Signature-256: sha256=<hex>``, the
HMAC-SHA256 of its raw body under that secret (as GitHub signs its deliveries), compared
in constant time. The secret itself is stored, not a digest of it: checking an HMAC
needs the key. A redelivered request creates no second job when the webhook names where
its deliveries carry an id: a header (GitHub's ``X-GitHub-Delivery``) or a field of the
body by JSON pointer (RFC 6901, ``/id``); that id becomes the job's idempotency key,
``webhook:<name>:<id>``.

Example:
    >>> hook = new_webhook("default", "orders", "handle_order", secret="s3cret",
    ...                    idempotency_pointer="/order/id")
    >>> idempotency_key(hook, {}, {"order": {"id": 42}})
    'webhook:orders:42'
    >>> verify_signature(hook.secret, b"{}", sign("s3cret", b"{}"))
    True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taskwheel.errors import InvalidInput
from taskwheel.validators import validate_name

SIGNATURE_HEADER = "X-Signature-256"
_SCHEME = "sha256="
_MAX_ID = 200  # characters of a delivery id kept in the idempotency key


@dataclass(frozen=True, slots=True)
class NewWebhook:
    """A webhook as it is defined (`new_webhook` checks it)."""

    namespace: str
    name: str
    task: str
    secret: str
    queue: str | None = None
    idempotency_header: str | None = None
    idempotency_pointer: str | None = None


@dataclass(frozen=True, slots=True)
class Webhook:
    """A stored webhook."""

    namespace: str
    name: str
    task: str
    secret: str
    queue: str | None
    idempotency_header: str | None
    idempotency_pointer: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """Everything a listing shows (never the secret)."""
        return {"namespace": self.namespace, "name": self.name, "task": self.task,
                "queue": self.queue, "idempotency_header": self.idempotency_header,
                "idempotency_pointer": self.idempotency_pointer,
                "created_at": self.created_at.isoformat()}


def new_webhook(
    namespace: str, name: str, task: str, *, secret: str | None = None,
    queue: str | None = None, idempotency_header: str | None = None,
    idempotency_pointer: str | None = None,
) -> NewWebhook:
    """A checked definition; without ``secret``, a random one (256 bits, hex)."""
    if idempotency_header is not None and idempotency_pointer is not None:
        raise InvalidInput("idempotency_header", "name a header or a JSON pointer, not both")
    if idempotency_header is not None and not _is_token(idempotency_header):
        raise InvalidInput("idempotency_header", f"not a header name: {idempotency_header!r}")
    if idempotency_pointer is not None:
        parse_pointer(idempotency_pointer, "idempotency_pointer")
    if secret is None:
        secret = secrets.token_hex(32)
    elif not 16 <= len(secret) <= 256 or not secret.isprintable():
        raise InvalidInput("secret", "must be 16 to 256 printable characters")
    return NewWebhook(
        namespace=validate_name(namespace, "namespace"), name=validate_name(name, "name"),
        task=validate_name(task, "task"), secret=secret,
        queue=None if queue is None else validate_name(queue, "queue"),
        idempotency_header=idempotency_header, idempotency_pointer=idempotency_pointer)


def _is_token(name: str) -> bool:
    allowed = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return 0 < len(name) <= 100 and set(name) <= allowed


def sign(secret: str, body: bytes) -> str:
    """The ``X-Signature-256`` value of ``body`` under ``secret``."""
    return _SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` signs ``body`` under ``secret`` (compared in constant time)."""
    if header is None:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def parse_pointer(pointer: str, field: str = "pointer") -> list[str]:
    """The reference tokens of a JSON pointer (RFC 6901): ``/a/b~1c`` is a, b/c."""
    if pointer == "" or not pointer.startswith("/") or len(pointer) > 500:
        raise InvalidInput(field, f"not a JSON pointer (starts with /): {pointer!r}")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if "~" in token.replace("~0", "").replace("~1", ""):
            raise InvalidInput(field, f"~ must be ~0 or ~1 in {pointer!r}")
    return [token.replace("~1", "/").replace("~0", "~") for token in tokens]


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value ``pointer`` names in ``document``; `KeyError` if none."""
    value = document
    for token in parse_pointer(pointer):
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and (token == "0" or token[0] != "0") \
                and int(token) < len(value):
            value = value[int(token)]
        else:
            raise KeyError(pointer)
    return value


def idempotency_key(hook: Webhook | NewWebhook, headers: Mapping[str, str],
                    payload: Any) -> str | None:
    """The job's idempotency key for one delivery, None when the webhook names no id;
    `InvalidInput` naming the header or pointer when the delivery lacks it."""
    if hook.idempotency_header is not None:
        value = headers.get(hook.idempotency_header.lower())
        if not value:
            raise InvalidInput(hook.idempotency_header, "this webhook's deliveries carry "
                               "their id in this header; it is missing")
        found = value
    elif hook.idempotency_pointer is not None:
        try:
            raw = resolve_pointer(payload, hook.idempotency_pointer)
        except KeyError:
            raise InvalidInput(hook.idempotency_pointer, "this webhook's deliveries carry "
                               "their id at this JSON pointer; the body has none") from None
        if isinstance(raw, bool) or not isinstance(raw, str | int) or raw == "":
            raise InvalidInput(hook.idempotency_pointer, "the delivery id must be a string "
                               "or an integer")
        found = str(raw)
    else:
        return None
    if len(found) > _MAX_ID or "\x00" in found:
        raise InvalidInput(hook.idempotency_header or str(hook.idempotency_pointer),
                           f"a delivery id is at most {_MAX_ID} characters, no NUL")
    return f"webhook:{hook.name}:{found}"
