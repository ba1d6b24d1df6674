"""Authentication: a Bearer API key becomes the caller (a Principal) of a request."""

from __future__ import annotations

from dataclasses import dataclass

from groundwork.state.keys import SCOPES
from groundwork.state.protocols import KeyStore
from groundwork.types import Access


@dataclass(frozen=True)
class Principal:
    """The caller: key name (for audit and logs; never the key), scopes and document access."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    access: Access


DEV = Principal("dev", "dev (no auth)", SCOPES, Access.all())


def authenticate(header: str | None, keys: KeyStore, no_auth: bool) -> Principal | None:
    if no_auth:
        return DEV
    if not header or not header.lower().startswith("bearer "):
        return None
    key = keys.verify(header[7:].strip())
    if key is None:
        return None
    return Principal(key.key_id, key.name, key.scopes, key.access)
