"""API keys: created once, shown once, stored as a salted hash in ``keys.sqlite`` beside the index.

A key looks like ``gw_<key id>_<secret>``; the id (not secret) finds the row, and the secret is checked
against HMAC-SHA256(salt, key) with a constant-time comparison. A fast hash is right here, unlike for
passwords: the secret is 256 random bits, so there is nothing to brute-force. Revocation sets
``revoked_at`` and is read on every request, so it takes effect on the next one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from groundwork.errors import GroundworkError
from groundwork.types import ACL_NAME, ACL_NAME_RULE, Access

SCOPES = ("query", "ingest", "admin")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    scopes TEXT NOT NULL,
    groups TEXT NOT NULL,
    tenant TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""


class ApiKeyError(GroundworkError):
    """Invalid key definition (unknown scope, bad group or tenant name, unknown key id)."""


@dataclass(frozen=True)
class ApiKey:
    """A key's record (never the key itself)."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    groups: tuple[str, ...] = ()
    tenant: str | None = None
    created_at: str = ""
    revoked_at: str | None = None

    @property
    def access(self) -> Access:
        return Access(tenant=self.tenant, groups=self.groups)

    def to_dict(self) -> dict:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "groups": list(self.groups),
            "tenant": self.tenant,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


@dataclass
class SqliteKeyStore:
    """API keys in ``keys.sqlite`` (WAL mode) in the knowledge-base folder."""

    path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def create(
        self, name: str, scopes: list[str], groups: list[str] | None = None, tenant: str | None = None
    ) -> tuple[ApiKey, str]:
        """(record, the key). The key is returned once and cannot be recovered. Raises ApiKeyError."""
        record, secret, salt = _new_key(name, scopes, groups, tenant)
        with self._lock:
            self._db.execute(
                "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    record.key_id,
                    name,
                    salt,
                    _digest(salt, secret),
                    json.dumps(list(record.scopes)),
                    json.dumps(list(record.groups)),
                    tenant,
                    record.created_at,
                ),
            )
        return record, secret

    def verify(self, secret: str) -> ApiKey | None:
        """The key's record when ``secret`` is a valid, unrevoked key; else None."""
        key_id = _key_id(secret)
        if key_id is None:
            return None
        with self._lock:
            row = self._db.execute("SELECT * FROM keys WHERE key_id = ?", (key_id,)).fetchone()
        return _checked(row, secret)

    def list(self) -> list[ApiKey]:
        with self._lock:
            return [_record(r) for r in self._db.execute("SELECT * FROM keys ORDER BY created_at")]

    def revoke(self, key_id: str) -> ApiKey:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            cur = self._db.execute(
                "UPDATE keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (now, key_id)
            )
            row = self._db.execute("SELECT * FROM keys WHERE key_id = ?", (key_id,)).fetchone()
        if row is None:
            raise ApiKeyError(f"no key with id {key_id}; `groundwork keys list` shows the ids")
        if cur.rowcount == 0 and row[8] is None:
            raise ApiKeyError(f"key {key_id} could not be revoked")
        return _record(row)


def _key_id(secret: str) -> str | None:
    """The id part of ``gw_<key id>_<secret>``, or None for anything else."""
    parts = secret.split("_")
    return parts[1] if len(parts) >= 3 and parts[0] == "gw" else None


def _checked(row: tuple | None, secret: str) -> ApiKey | None:
    """The key's record when ``row`` exists, is not revoked and its salted hash matches (constant time)."""
    if row is None or row[8] is not None or not hmac.compare_digest(_digest(bytes(row[2]), secret), bytes(row[3])):
        return None
    return _record(row)


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode(), hashlib.sha256).digest()


def _record(row: tuple) -> ApiKey:
    return ApiKey(row[0], row[1], tuple(json.loads(row[4])), tuple(json.loads(row[5])), row[6], row[7], row[8])


class PgKeyStore:
    """API keys in PostgreSQL (``api_keys``), shared by every replica; same rules as ``SqliteKeyStore``."""

    def __init__(self, pool) -> None:
        self.pool = pool

    def create(
        self, name: str, scopes: list[str], groups: list[str] | None = None, tenant: str | None = None
    ) -> tuple[ApiKey, str]:
        record, secret, salt = _new_key(name, scopes, groups, tenant)
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO api_keys VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL)",
                (
                    record.key_id,
                    name,
                    salt,
                    _digest(salt, secret),
                    json.dumps(list(record.scopes)),
                    json.dumps(list(record.groups)),
                    tenant,
                    record.created_at,
                ),
            )
        return record, secret

    def verify(self, secret: str) -> ApiKey | None:
        key_id = _key_id(secret)
        if key_id is None:
            return None
        with self.pool.connection() as conn:
            row = conn.execute("SELECT * FROM api_keys WHERE key_id = %s", (key_id,)).fetchone()
        return _checked(row, secret)

    def list(self) -> list[ApiKey]:
        with self.pool.connection() as conn:
            return [_record(r) for r in conn.execute("SELECT * FROM api_keys ORDER BY created_at")]

    def revoke(self, key_id: str) -> ApiKey:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self.pool.connection() as conn:
            conn.execute("UPDATE api_keys SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL", (now, key_id))
            row = conn.execute("SELECT * FROM api_keys WHERE key_id = %s", (key_id,)).fetchone()
        if row is None:
            raise ApiKeyError(f"no key with id {key_id}; `groundwork keys list` shows the ids")
        return _record(row)


def _new_key(name: str, scopes: list[str], groups: list[str] | None, tenant: str | None) -> tuple[ApiKey, str, bytes]:
    """Validate a key definition and make (record, secret, salt). Raises ApiKeyError."""
    bad = [s for s in scopes if s not in SCOPES]
    if not scopes or bad:
        raise ApiKeyError(f"scopes must be some of {', '.join(SCOPES)} (got {', '.join(scopes) or 'none'})")
    groups = sorted(set(groups or []))
    for n in (*groups, *([tenant] if tenant else [])):
        if not ACL_NAME.match(n):
            raise ApiKeyError(f"invalid group or tenant name {n!r}: {ACL_NAME_RULE}")
    if not name.strip():
        raise ApiKeyError("a key needs a --name")
    key_id = secrets.token_hex(6)
    secret = f"gw_{key_id}_{secrets.token_urlsafe(32)}"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return ApiKey(key_id, name, tuple(sorted(set(scopes))), tuple(groups), tenant, now), secret, secrets.token_bytes(16)
