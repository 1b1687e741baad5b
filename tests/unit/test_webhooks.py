"""The pure parts of webhooks: signatures, JSON pointers, delivery ids."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskwheel.errors import InvalidInput
from taskwheel.webhooks import (
    idempotency_key,
    new_webhook,
    parse_pointer,
    resolve_pointer,
    sign,
    verify_signature,
)

SECRET = "0123456789abcdef"


def test_a_signature_is_githubs_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"zen": "Design for failure."}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body) == f"sha256={expected}"
    assert verify_signature(SECRET, body, f"sha256={expected}")


@given(st.binary(max_size=200), st.binary(min_size=1, max_size=200))
def test_a_signature_fits_only_its_body_and_secret(body: bytes, other: bytes) -> None:
    signature = sign(SECRET, body)
    assert verify_signature(SECRET, body, signature)
    assert not verify_signature(SECRET, body + other, signature)
    assert not verify_signature(SECRET + "x", body, signature)
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature(SECRET, body, signature.removeprefix("sha256="))


def test_json_pointers_follow_rfc_6901() -> None:
    document = {"a/b": {"m~n": [10, {"id": "x"}]}, "": 1}
    assert parse_pointer("/a~1b/m~0n/1/id") == ["a/b", "m~n", "1", "id"]
    assert resolve_pointer(document, "/a~1b/m~0n/1/id") == "x"
    assert resolve_pointer(document, "/") == 1
    for missing in ("/a~1b/m~0n/2", "/a~1b/m~0n/01", "/nope", "/a~1b/m~0n/-"):
        with pytest.raises(KeyError):
            resolve_pointer(document, missing)
    for bad in ("", "id", "/a~2"):
        with pytest.raises(InvalidInput):
            parse_pointer(bad)


def test_a_delivery_id_becomes_an_idempotency_key_scoped_to_its_webhook() -> None:
    by_header = new_webhook("default", "gh", "t", secret=SECRET,
                            idempotency_header="X-GitHub-Delivery")
    assert idempotency_key(by_header, {"x-github-delivery": "abc"}, None) == "webhook:gh:abc"
    with pytest.raises(InvalidInput) as missing:
        idempotency_key(by_header, {}, None)
    assert missing.value.field == "X-GitHub-Delivery"
    by_body = new_webhook("default", "gh", "t", secret=SECRET, idempotency_pointer="/id")
    assert idempotency_key(by_body, {}, {"id": 5}) == "webhook:gh:5"
    for payload in ({"id": True}, {"id": None}, {"id": ""}, {"id": "x" * 201}, []):
        with pytest.raises(InvalidInput):
            idempotency_key(by_body, {}, payload)
    plain = new_webhook("default", "gh", "t", secret=SECRET)
    assert idempotency_key(plain, {"x-github-delivery": "abc"}, {"id": 1}) is None
