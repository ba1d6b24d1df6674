"""Profiles: named, versioned configurations of the answer path, stored in the deployment's state.

A profile is an *override* of the retrieval, answer and generator-prompt settings (``[retrieval]``,
``[answer]``, ``[generator]`` keys ``prompt`` and ``max_tokens``), validated by the same pydantic
models as ``groundwork.toml``. Versions are immutable: creating a profile whose name exists adds the
next version (1, 2, ...). ``name@version`` (a *ref*) names one version; ``name`` alone the newest.
One profile may be the *default*: what answers use when no experiment is running.

Embedded: ``experiments.sqlite`` in the knowledge-base folder (WAL mode). PostgreSQL: the ``profiles``
and ``state_values`` tables, shared by every replica (see ``pg_tables``).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from groundwork.config import AnswerSettings, GeneratorSettings, RetrievalSettings, Settings
from groundwork.errors import GroundworkError
from groundwork.state import clock
from groundwork.state.sqlite import immediate, open_db

# The sections a profile may override, and for the generator the keys that change no backend: a
# profile swaps the prompt, never the model, so one LLM client serves every profile.
SECTIONS: dict[str, type[BaseModel]] = {
    "retrieval": RetrievalSettings,
    "answer": AnswerSettings,
    "generator": GeneratorSettings,
}
GENERATOR_KEYS = ("prompt", "max_tokens")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
NAME_RULE = "1-63 characters: lower-case letters, digits, '-' and '_', starting with a letter or digit"
MAX_OVERRIDE_BYTES = 64 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    name TEXT NOT NULL, version INTEGER NOT NULL, override TEXT NOT NULL,
    created_at TEXT NOT NULL, created_by TEXT NOT NULL, PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS state_values (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class ProfileError(GroundworkError):
    """An invalid profile (name, unknown or invalid setting), or an unknown profile or version."""


class ProfileNotFound(ProfileError):
    """No profile of that name, or not that version."""


@dataclass(frozen=True)
class Profile:
    """One immutable version of a named configuration. ``override``: section -> {key: value}."""

    name: str
    version: int
    override: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: str = ""
    created_by: str = ""

    @property
    def ref(self) -> str:
        """``name@version``: what audit records and experiments name."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "override": self.override,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"name@3"`` -> ("name", 3); ``"name"`` -> ("name", None). Raises ProfileError."""
    name, _, version = ref.partition("@")
    if not NAME.match(name):
        raise ProfileError(f"invalid profile name {name[:80]!r}: {NAME_RULE}")
    if not version:
        return name, None
    if not version.isdigit() or not 0 < int(version) < 2**31:
        raise ProfileError(f"invalid profile version {version[:20]!r} in {ref[:100]!r}: write NAME@N with N >= 1")
    return name, int(version)


def validate_override(override: Any) -> dict[str, dict[str, Any]]:
    """The override checked by the settings models, normalised to JSON values.

    Raises ProfileError naming the offending field (``retrieval.top_k: ...``), an unknown section or
    key, or a generator key that would change the backend."""
    if not isinstance(override, dict):
        raise ProfileError("a profile is a table of sections: retrieval, answer, generator")
    if len(json.dumps(override, default=str)) > MAX_OVERRIDE_BYTES:
        raise ProfileError(f"a profile may hold at most {MAX_OVERRIDE_BYTES} bytes of settings")
    out: dict[str, dict[str, Any]] = {}
    for section, values in override.items():
        model = SECTIONS.get(section)
        if model is None:
            raise ProfileError(f"{str(section)[:80]}: unknown section; a profile overrides {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise ProfileError(f"{section}: expected a table of settings")
        if section == "generator" and (bad := sorted(set(values) - set(GENERATOR_KEYS))):
            raise ProfileError(
                f"generator.{str(bad[0])[:80]}: a profile may set only generator.{' and generator.'.join(GENERATOR_KEYS)} "
                "(the backend and model are the deployment's)"
            )
        try:
            checked = model.model_validate(values)
        except ValidationError as exc:
            e = exc.errors()[0]
            key = ".".join(str(p) for p in (section, *e["loc"]))
            raise ProfileError(f"{key[:120]}: {e['msg']}") from None
        out[section] = checked.model_dump(mode="json", include=set(values))
    return out


def apply_profile(settings: Settings, override: dict[str, dict[str, Any]]) -> Settings:
    """``settings`` with the profile's override applied, each section re-validated whole (a profile
    is checked against the deployment's other values of its section). Raises ProfileError."""
    update: dict[str, Any] = {}
    for section, values in override.items():
        current = getattr(settings, section)
        try:
            update[section] = type(current).model_validate({**current.model_dump(), **values})
        except ValidationError as exc:
            e = exc.errors()[0]
            raise ProfileError(f"{section}: {e['msg']}") from None
    return settings.model_copy(update=update)


def _profile(row: tuple) -> Profile:
    override = row[2] if isinstance(row[2], dict) else json.loads(row[2])
    return Profile(row[0], int(row[1]), override, row[3], row[4])


def _not_found(name: str, version: int | None) -> ProfileError:
    what = f"{name}@{version}" if version else name
    return ProfileNotFound(f"no profile {what}; `groundwork profiles list` shows them")


class SqliteProfileStore:
    """Profiles in ``experiments.sqlite`` (WAL mode) in the knowledge-base folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_db(self.path, _SCHEMA)

    def create(self, name: str, override: Any, created_by: str) -> Profile:
        name, _ = parse_ref(name)
        checked = validate_override(override)
        # One write transaction: two processes creating the same name get consecutive versions.
        with self._lock, immediate(self._db):
            row = self._db.execute("SELECT coalesce(max(version), 0) FROM profiles WHERE name = ?", (name,))
            p = Profile(name, row.fetchone()[0] + 1, checked, clock.now(), created_by)
            self._db.execute(
                "INSERT INTO profiles VALUES (?, ?, ?, ?, ?)",
                (p.name, p.version, json.dumps(p.override), p.created_at, p.created_by),
            )
        return p

    def get(self, ref: str) -> Profile:
        name, version = parse_ref(ref)
        with self._lock:
            if version is None:
                row = self._db.execute(
                    "SELECT * FROM profiles WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT * FROM profiles WHERE name = ? AND version = ?", (name, version)
                ).fetchone()
        if row is None:
            raise _not_found(name, version)
        return _profile(row)

    def list(self) -> list[Profile]:
        with self._lock:
            return [_profile(r) for r in self._db.execute("SELECT * FROM profiles ORDER BY name, version")]

    def default(self) -> Profile | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM state_values WHERE key = 'default_profile'").fetchone()
        return self.get(row[0]) if row else None

    def set_default(self, ref: str | None) -> Profile | None:
        p = self.get(ref) if ref else None
        with self._lock:
            if p is None:
                self._db.execute("DELETE FROM state_values WHERE key = 'default_profile'")
            else:
                self._db.execute(
                    "INSERT INTO state_values VALUES ('default_profile', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (p.ref,),
                )
        return p

    def close(self) -> None:
        self._db.close()


class PgProfileStore:
    """Profiles in PostgreSQL (``profiles``, ``state_values``), shared by every replica; same rules."""

    def __init__(self, pool) -> None:
        self.pool = pool

    def create(self, name: str, override: Any, created_by: str) -> Profile:
        from psycopg.types.json import Jsonb

        name, _ = parse_ref(name)
        checked = validate_override(override)
        with self.pool.connection() as conn:
            # Serialise creators of one name across replicas: versions are consecutive, never duplicated.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"profile:{name}",))
            row = conn.execute("SELECT coalesce(max(version), 0) FROM profiles WHERE name = %s", (name,)).fetchone()
            p = Profile(name, row[0] + 1, checked, clock.now(), created_by)
            conn.execute(
                "INSERT INTO profiles VALUES (%s, %s, %s, %s, %s)",
                (p.name, p.version, Jsonb(p.override), p.created_at, p.created_by),
            )
        return p

    def get(self, ref: str) -> Profile:
        name, version = parse_ref(ref)
        with self.pool.connection() as conn:
            if version is None:
                row = conn.execute(
                    "SELECT * FROM profiles WHERE name = %s ORDER BY version DESC LIMIT 1", (name,)
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT * FROM profiles WHERE name = %s AND version = %s", (name, version)
                ).fetchone()
        if row is None:
            raise _not_found(name, version)
        return _profile(row)

    def list(self) -> list[Profile]:
        with self.pool.connection() as conn:
            return [_profile(r) for r in conn.execute("SELECT * FROM profiles ORDER BY name, version")]

    def default(self) -> Profile | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT value FROM state_values WHERE key = 'default_profile'").fetchone()
        return self.get(row[0]) if row else None

    def set_default(self, ref: str | None) -> Profile | None:
        p = self.get(ref) if ref else None
        with self.pool.connection() as conn:
            if p is None:
                conn.execute("DELETE FROM state_values WHERE key = 'default_profile'")
            else:
                conn.execute(
                    "INSERT INTO state_values VALUES ('default_profile', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (p.ref,),
                )
        return p

    def close(self) -> None:
        pass  # the pool belongs to the store
