"""Webhooks on every store: defined per namespace (two namespaces may use one name),
redefined in place keeping their creation time, listed by name, removed for good."""

from __future__ import annotations

import pytest

from taskwheel.clock import ManualClock
from taskwheel.errors import WebhookNotFound
from taskwheel.stores.base import Store
from taskwheel.webhooks import new_webhook

from .conftest import NS, OTHER_NS, T0

SECRET = "0123456789abcdef"


def test_a_webhook_is_kept_whole_and_redefined_in_place(
    store: Store, clock: ManualClock
) -> None:
    first = store.define_webhook(new_webhook(NS, "gh", "build", secret=SECRET,
                                             idempotency_header="X-GitHub-Delivery"))
    assert store.get_webhook(NS, "gh") == first
    assert (first.task, first.queue, first.secret, first.idempotency_header,
            first.idempotency_pointer) == ("build", None, SECRET, "X-GitHub-Delivery", None)
    assert first.created_at.timestamp() == T0
    clock.advance(10)
    again = store.define_webhook(new_webhook(NS, "gh", "deploy", secret=SECRET * 2,
                                             queue="ops", idempotency_pointer="/id"))
    assert (again.task, again.queue, again.secret, again.idempotency_header,
            again.idempotency_pointer) == ("deploy", "ops", SECRET * 2, None, "/id")
    assert again.created_at == first.created_at
    assert store.list_webhooks(NS) == [again]


def test_webhooks_belong_to_their_namespace(store: Store) -> None:
    mine = store.define_webhook(new_webhook(NS, "gh", "build", secret=SECRET))
    theirs = store.define_webhook(new_webhook(OTHER_NS, "gh", "other", secret=SECRET))
    store.define_webhook(new_webhook(NS, "alpha", "build", secret=SECRET))
    assert [hook.name for hook in store.list_webhooks(NS)] == ["alpha", "gh"]
    assert store.get_webhook(OTHER_NS, "gh") == theirs
    store.remove_webhook(OTHER_NS, "gh")
    assert store.get_webhook(NS, "gh") == mine
    with pytest.raises(WebhookNotFound):
        store.get_webhook(OTHER_NS, "gh")
    with pytest.raises(WebhookNotFound):
        store.remove_webhook(OTHER_NS, "gh")
