"""Shared fixtures. Tests use the real bundled embedding model on small inputs and real LanceDB files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from groundwork.config import EmbedderSettings, load_settings
from groundwork.index.embedder import SentenceTransformerEmbedder
from groundwork.kb import KnowledgeBase

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# Read before any test runs: the autouse fixture below removes GROUNDWORK_* variables from each test.
_TEST_PG_DSN = os.environ.get("GROUNDWORK_TEST_PG_DSN")


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's groundwork.toml or GROUNDWORK_* variables."""
    for key in list(os.environ):
        if key.startswith("GROUNDWORK_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory):
    """A real PostgreSQL 16 + pgvector: GROUNDWORK_TEST_PG_DSN when set, else a server started from the
    pgserver package's binaries on a free loopback port (stopped at the end of the session)."""
    if _TEST_PG_DSN:
        yield _TEST_PG_DSN
        return
    from groundwork.index.pg_local import LocalPostgres

    server = LocalPostgres(tmp_path_factory.mktemp("postgres")).start()
    yield server.dsn
    server.stop()


@pytest.fixture
def pg_schema(pg_dsn: str):
    """A fresh PostgreSQL schema name for one test, dropped afterwards."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The real bundled MiniLM, no cache."""
    return SentenceTransformerEmbedder(EmbedderSettings(cache=False))


@pytest.fixture
def make_kb(tmp_path: Path):
    """Factory: a KnowledgeBase in a fresh folder, with optional dotted setting overrides."""

    def make(name: str = "kb", **overrides) -> KnowledgeBase:
        return KnowledgeBase(settings=load_settings(kb=tmp_path / name, **overrides))

    return make


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A real text PDF (reportlab), one string per page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path.parent.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(path), pagesize=A4)
    for text in pages:
        y = 800
        for line in text.split("\n"):
            c.drawString(50, y, line)
            y -= 16
        c.showPage()
    c.save()
    return path
