"""Sources: one file to ingest, wherever it lives (a local path, an object in a bucket, uploaded bytes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from groundwork.ingest.loaders import SourceName, check_size, read_file

RECORD_SUFFIXES = {".json", ".jsonl"}


@dataclass(frozen=True)
class SourceItem:
    """One file to ingest, wherever it lives: a local path, an object in a bucket, uploaded bytes.

    ``read(max_bytes)`` returns the raw bytes (raises LoaderError / UnsupportedFileError / OSError);
    ``fingerprint`` is a change token known without reading (an S3 ETag): when it equals what the
    index recorded, the file is unchanged and is not even downloaded. None: the sha256 of the bytes.
    """

    name: Path | SourceName
    read: Callable[[int], bytes]
    fingerprint: str | None = None

    @property
    def source(self) -> str:
        return str(self.name)

    @property
    def is_records(self) -> bool:
        return self.name.suffix.lower() in RECORD_SUFFIXES


def local_item(path: Path) -> SourceItem:
    return SourceItem(path, partial(read_file, path))


def bytes_item(uri: str, data: bytes) -> SourceItem:
    """A source held in memory (an upload), named by ``uri`` (its document id)."""
    name = SourceName(uri)

    def read(max_bytes: int) -> bytes:
        check_size(uri, name.suffix, len(data), max_bytes)
        return data

    return SourceItem(name, read)
