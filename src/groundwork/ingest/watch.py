"""Watching local files and folders (``groundwork ingest --watch``) with watchfiles
(https://watchfiles.helpmanual.io/, OS notifications: inotify, FSEvents, ReadDirectoryChangesW).

Changes are grouped until the folders are quiet for ``ingest.watch_quiet_ms`` (editors write a file
in several steps), then handed to ``apply`` as one ``Changes``. Hidden entries (a path part starting
with '.'), editor swap files and the knowledge-base folder are ignored, as ``discover`` ignores them.
An exception from ``apply`` is logged and the watcher goes on: one bad batch never stops it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

log = logging.getLogger("groundwork.watch")


@dataclass
class Changes:
    """One quiet-period's changes: ``changed`` files or folders that exist (added or modified), and
    ``deleted`` paths that no longer exist (files, or whole folders). Absolute, resolved paths."""

    changed: list[Path] = field(default_factory=list)
    deleted: list[Path] = field(default_factory=list)


def classify(paths: Sequence[str | Path]) -> Changes:
    """Split changed paths by whether they exist now (an added-then-removed file is deleted)."""
    out = Changes()
    for p in sorted({Path(p).resolve() for p in paths}):
        (out.changed if p.exists() else out.deleted).append(p)
    return out


def watch(
    paths: Sequence[Path],
    apply: Callable[[Changes], None],
    stop: threading.Event | None = None,
    exclude: Path | None = None,
    quiet_ms: int = 300,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Call ``apply`` with each batch of changes under ``paths`` until ``stop`` is set or Ctrl-C
    (returns normally then). ``on_ready`` is called once the OS watch is in place (at most a second
    after the start): a change made before then is not notified, so the caller re-syncs there.
    Raises FileNotFoundError when a path does not exist."""
    from watchfiles import DefaultFilter
    from watchfiles import watch as watch_changes

    roots = [Path(p).expanduser().resolve() for p in paths]
    ignored = exclude.resolve() if exclude else None

    class Filter(DefaultFilter):
        def __call__(self, change, path: str) -> bool:
            p = Path(path)
            if not super().__call__(change, path) or (ignored and p.is_relative_to(ignored)):
                return False
            root = next((r for r in roots if p.is_relative_to(r)), None)
            return root is None or not any(part.startswith(".") for part in p.relative_to(root).parts)

    ready = on_ready is None
    for batch in watch_changes(
        *roots,
        watch_filter=Filter(),
        step=quiet_ms,
        stop_event=stop,
        raise_interrupt=False,
        rust_timeout=1000,
        yield_on_timeout=True,  # an empty batch after 1 s: the watch is in place
    ):
        if not ready and on_ready is not None:
            ready = True
            _safely(on_ready, "the catch-up re-sync")
        if not batch:
            continue
        changes = classify([path for _, path in batch])
        _safely(partial(apply, changes), f"the re-sync of {len(batch)} changed path(s)")


def _safely(fn: Callable[[], None], what: str) -> None:
    try:
        fn()
    except Exception:  # a locked index, a full disk: say so, keep watching
        log.exception("%s failed; still watching", what)
