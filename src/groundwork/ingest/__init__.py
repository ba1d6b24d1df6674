"""Ingest stage: load files into documents, chunk them, and sync them into the index."""

from groundwork.ingest.loaders import LOADERS, load_file
from groundwork.ingest.records import RecordOptions

__all__ = ["LOADERS", "RecordOptions", "load_file"]
