"""Prompt templates: versioned files under ``groundwork/llm/templates/``, one TOML file per template.

A template has ``id``, ``version``, ``system`` and ``user`` texts with ``$name`` placeholders
(:class:`string.Template`, so literal braces and JSON need no escaping). ``sha256`` is the hash of the
file's bytes; the id, version and hash of the template that produced an answer go into its audit record.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template

from groundwork.errors import ConfigError

PROMPT_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    version: int
    system: str
    user: str
    sha256: str

    def render(self, **values: object) -> list[dict[str, str]]:
        """Chat messages ``[{"role": "system", ...}, {"role": "user", ...}]``.

        Raises ConfigError when the template uses a placeholder that is not given.
        """
        try:
            text = {k: str(v) for k, v in values.items()}
            return [
                {"role": "system", "content": Template(self.system).substitute(text)},
                {"role": "user", "content": Template(self.user).substitute(text)},
            ]
        except KeyError as exc:
            raise ConfigError(f"prompt template '{self.id}' needs a value for ${exc.args[0]}") from None

    @property
    def ref(self) -> str:
        """``id@version#hash12``: how audit records and reports name the template."""
        return f"{self.id}@{self.version}#{self.sha256[:12]}"


@lru_cache(maxsize=32)
def load_prompt(name: str | Path) -> PromptTemplate:
    """Load a template by id (a file in PROMPT_DIR) or by path to a TOML file.

    Raises ConfigError when the file is missing or lacks id/version/system/user.
    """
    path = Path(name)
    if not path.suffix:
        path = PROMPT_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROMPT_DIR.glob("*.toml")))
        raise ConfigError(f"prompt template {name} not found; known templates: {known}, or give a .toml path")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
        return PromptTemplate(
            str(data["id"]), int(data["version"]), data["system"], data["user"], hashlib.sha256(raw).hexdigest()
        )
    except (KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"prompt template {path}: needs id, version, system and user ({exc})") from None
