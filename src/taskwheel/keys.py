"""API keys of the HTTP server: what a key is, how one is made and how it is checked.

A key reads ``tw_<prefix>_<secret>``: the prefix (8 hex digits, public: listed, and how
a key is found) and a secret of 32 random bytes in base64url. Stores keep the prefix and
a SHA-256 digest of the whole key, never the key itself.

Why a plain, unsalted SHA-256 is enough: salts and slow hashes (bcrypt, scrypt, argon2)
protect *low-entropy* secrets, which an attacker holding the digests can guess by
trying likely passwords. A key's secret is 256 bits from `secrets`: there is nothing
likely to try, and no table of precomputed digests covers that space, so a fast hash
is as strong here as a slow one, and checking a key on every request costs a
microsecond instead of tens of milliseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from taskwheel.errors import InvalidInput
from taskwheel.validators import ALL_NAMESPACES, validate_name, validate_text

KEY_MARK = "tw"
_PREFIX_BYTES = 4  # 8 hex digits: a public id, unique by a primary key
_SECRET_BYTES = 32


class Role(StrEnum):
    """What a key may do, each role including the ones before it: ``read`` reads;
    ``operate`` also enqueues, cancels, retries, replays, pauses, resumes and triggers;
    ``admin`` also defines and removes schedules, purges the dead-letter queue and sets
    quotas."""

    READ = "read"
    OPERATE = "operate"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.READ: 0, Role.OPERATE: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: everything but its secret."""

    prefix: str
    digest: str
    namespace: str  # a namespace, or ALL_NAMESPACES for an operator
    role: Role
    name: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def covers(self, namespace: str) -> bool:
        """Whether this key acts in ``namespace``."""
        return self.namespace in (ALL_NAMESPACES, namespace)

    def matches(self, key: str) -> bool:
        """Whether ``key`` is this key (in constant time)."""
        return hmac.compare_digest(self.digest, digest_of(key))

    def to_dict(self) -> dict[str, Any]:
        """Everything a listing shows (never the digest)."""
        return {
            "prefix": self.prefix, "name": self.name, "namespace": self.namespace,
            "role": self.role.value, "created_at": self.created_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key about to be stored, with its secret (shown once, then gone)."""

    key: str
    prefix: str
    digest: str
    namespace: str
    role: Role
    name: str


def generate_key(namespace: str, role: Role | str, name: str | None = None) -> NewApiKey:
    """A fresh key for ``namespace`` (or `ALL_NAMESPACES`) with ``role``.

    Example:
        >>> new = generate_key("team-a", "operate", "ci")
        >>> new.key.startswith("tw_" + new.prefix + "_")
        True
    """
    if namespace != ALL_NAMESPACES:
        validate_name(namespace, "namespace")
    try:
        checked_role = Role(role)
    except ValueError:
        raise InvalidInput("role", f"must be one of {', '.join(r.value for r in Role)}, "
                           f"got {role!r}") from None
    label = validate_text(name if name is not None else f"{namespace}-{checked_role.value}",
                          "name")
    prefix = secrets.token_hex(_PREFIX_BYTES)
    key = f"{KEY_MARK}_{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return NewApiKey(key, prefix, digest_of(key), namespace, checked_role, label)


def prefix_of(key: str) -> str | None:
    """The prefix of a key as presented, None when it is not shaped like one."""
    mark, sep, rest = key.partition("_")
    if mark != KEY_MARK or not sep:
        return None
    # The secret (base64url) may hold "_" too: the prefix is a fixed length.
    length = 2 * _PREFIX_BYTES
    if len(rest) <= length + 1 or rest[length] != "_":
        return None
    return rest[:length]


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
