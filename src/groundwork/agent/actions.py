"""Actions: business operations the agent may call, declared in ``actions.toml`` (docs/agents.md).

Each ``[[action]]`` has ``name``, ``description``, ``parameters`` (the JSON Schema of the arguments,
checked with ``jsonschema`` when the file is loaded and every call validated against it before anything
runs), ``kind`` (``http`` or ``python``), ``side_effect``, ``scope`` (the key scope needed to call it)
and ``confirm`` (a side-effect action with ``confirm = true`` waits for a person).

``http``: ``url_env`` / ``method`` / ``headers_env`` name environment variables (a URL or a header value
is never written in the file, never logged, never put in an error); the arguments are sent as the JSON
body. One attempt times out after ``agent.action_timeout_s``; connection errors, timeouts and 5xx are
retried ``agent.action_retries`` times with exponential backoff (0.2 s, 0.4 s, ...), 4xx never.
``python``: ``entry_point = "package.module:function"``, called with the arguments as keyword arguments.
A failure is returned as an ``ActionResult`` (``ok = False``), never raised.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema

from groundwork.config import AgentSettings
from groundwork.errors import ConfigError
from groundwork.state.keys import SCOPES

NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")  # OpenAI's function-name rule (letters, digits, _ -)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
RESERVED = ("search_knowledge_base", "escalate_to_human")


@dataclass(frozen=True)
class Action:
    """One declared action (see the module docstring)."""

    name: str
    description: str
    parameters: dict[str, Any]
    kind: str
    side_effect: bool
    scope: str
    confirm: bool
    url_env: str = ""
    method: str = "POST"
    headers_env: dict[str, str] = field(default_factory=dict)
    entry_point: str = ""

    @property
    def needs_confirmation(self) -> bool:
        return self.side_effect and self.confirm

    def tool(self) -> dict[str, Any]:
        """The action as an OpenAI Chat Completions tool (``{"type": "function", "function": ...}``)."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass
class ActionResult:
    """What running an action gave: ``ok``, the HTTP ``status`` (http actions), ``output`` (cut to
    ``agent.max_result_chars``) or ``error``, ``attempts`` and ``ms`` (wall time, milliseconds)."""

    ok: bool
    output: str = ""
    error: str = ""
    status: int | None = None
    attempts: int = 1
    ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "attempts": self.attempts,
            "ms": round(self.ms, 1),
        }


def load_actions(path: Path | None) -> dict[str, Action]:
    """The actions of ``path`` by name ({} for None). Raises ConfigError naming the file, the action
    and the field for a missing or invalid field, an invalid JSON Schema or a duplicate name."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the actions file ({exc}); check agent.actions_file") from None
    actions: dict[str, Action] = {}
    for i, raw in enumerate(data.get("action", [])):
        action = _parse(raw, f"{path}: action #{i + 1}")
        if action.name in actions or action.name in RESERVED:
            raise ConfigError(f"{path}: action name {action.name!r} is used twice or reserved; rename it")
        actions[action.name] = action
    return actions


def _parse(raw: Any, where: str) -> Action:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: write it as an [[action]] table")
    name = str(raw.get("name", ""))
    if not NAME.match(name):
        raise ConfigError(f"{where}: name {name!r} must be 1-64 letters, digits, _ or -, a letter first")
    where = f"{where} ({name})"
    params = raw.get("parameters", {"type": "object", "properties": {}})
    try:
        jsonschema.Draft202012Validator.check_schema(params)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"{where}: parameters is not a valid JSON Schema: {exc.message}") from None
    kind = raw.get("kind")
    scope = raw.get("scope", "query")
    checks = {
        "kind": kind in ("http", "python"),
        "scope": scope in SCOPES,
        "method": str(raw.get("method", "POST")).upper() in METHODS,
        "url_env": kind != "http" or bool(raw.get("url_env")),
        "entry_point": kind != "python" or bool(ENTRY_POINT.match(str(raw.get("entry_point", "")))),
        "description": bool(str(raw.get("description", "")).strip()),
    }
    for key, ok in checks.items():
        if not ok:
            raise ConfigError(f"{where}: invalid or missing {key} (see docs/agents.md for the fields)")
    return Action(
        name=name,
        description=str(raw["description"]),
        parameters=params,
        kind=str(kind),
        side_effect=bool(raw.get("side_effect", True)),  # unsure means it has one: the safe default
        scope=str(scope),
        confirm=bool(raw.get("confirm", True)),
        url_env=str(raw.get("url_env", "")),
        method=str(raw.get("method", "POST")).upper(),
        headers_env={str(k): str(v) for k, v in dict(raw.get("headers_env", {})).items()},
        entry_point=str(raw.get("entry_point", "")),
    )


def validate_arguments(action: Action, arguments: Any) -> str | None:
    """None when ``arguments`` satisfy the action's JSON Schema, else the first problem in words."""
    if not isinstance(arguments, dict):
        return "arguments must be a JSON object"
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(action.parameters).iter_errors(arguments))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(arguments)"
    return f"{where}: {error.message}"


def run_action(action: Action, arguments: dict[str, Any], settings: AgentSettings) -> ActionResult:
    """Run ``action`` with already validated ``arguments``; never raises (see the module docstring)."""
    t0 = time.perf_counter()
    try:
        if action.kind == "http":
            result = _run_http(action, arguments, settings)
        else:
            result = _run_python(action, arguments)
    except Exception as exc:  # an action's own failure is reported, never raised
        result = ActionResult(False, error=f"{type(exc).__name__}: {str(exc)[:300]}")
    result.ms = (time.perf_counter() - t0) * 1000
    result.output = result.output[: settings.max_result_chars]
    return result


def _run_python(action: Action, arguments: dict[str, Any]) -> ActionResult:
    module, _, func = action.entry_point.partition(":")
    out = getattr(importlib.import_module(module), func)(**arguments)
    return ActionResult(True, output=out if isinstance(out, str) else json.dumps(out, default=str))


def _run_http(action: Action, arguments: dict[str, Any], settings: AgentSettings) -> ActionResult:
    url = os.environ.get(action.url_env, "")
    if not url.startswith(("http://", "https://")):
        return ActionResult(False, error=f"${action.url_env} is not set to an http(s) URL", attempts=0)
    headers = {name: os.environ.get(env, "") for name, env in action.headers_env.items()}
    body = None if action.method == "GET" else arguments
    params = arguments if action.method == "GET" else None
    attempts, last = 0, ""
    with httpx.Client(timeout=settings.action_timeout_s, follow_redirects=False) as client:
        while attempts <= settings.action_retries:
            if attempts:
                time.sleep(0.2 * 2 ** (attempts - 1))
            attempts += 1
            try:
                r = client.request(action.method, url, json=body, params=params, headers=headers)
            except httpx.HTTPError as exc:  # the message names the error class, never the URL or headers
                last = f"{type(exc).__name__} (attempt {attempts})"
                continue
            if r.status_code >= 500:
                last = f"HTTP {r.status_code} (attempt {attempts})"
                continue
            ok = r.status_code < 400
            return ActionResult(
                ok, r.text if ok else "", "" if ok else f"HTTP {r.status_code}", r.status_code, attempts
            )
    return ActionResult(False, error=f"failed after {attempts} attempts: {last}", attempts=attempts)
