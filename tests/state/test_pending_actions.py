"""Pending actions, SQLite and PostgreSQL alike: a decision is taken once, visibility follows the
audit log's rule, and an outcome is recorded only for a running action."""

from __future__ import annotations

from pathlib import Path

import pytest

from groundwork.state.pending import PendingAction, PgPendingActions, SqlitePendingActions
from groundwork.state.protocols import PendingActions
from groundwork.types import Access


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield SqlitePendingActions(tmp_path / "actions.sqlite")
        return
    from groundwork.index.pg_schema import make_pool, migrate

    dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")
    migrate(dsn, schema, 8)
    pool = make_pool(dsn, schema, 1, 4)
    yield PgPendingActions(pool)
    pool.close()


def test_a_pending_action_is_decided_once(store) -> None:
    assert isinstance(store, PendingActions)
    item = store.create(PendingAction.new("create_ticket", {"title": "x"}, "acme-user", Access("acme")))
    assert store.claim(item.id, "running", "alice")
    assert not store.claim(item.id, "running", "bob") and not store.claim(item.id, "rejected", "bob")
    store.finish(item.id, True, {"ok": True, "output": "{}"})
    got = store.get(item.id)
    assert (got.status, got.decided_by, got.result["ok"]) == ("done", "alice", True)
    store.finish(item.id, False, {"ok": False})  # only a running action gets an outcome
    assert store.get(item.id).status == "done"


def test_pending_actions_are_seen_only_by_callers_who_could_see_the_proposal(store) -> None:
    acme = store.create(PendingAction.new("a", {}, "k1", Access("acme", ("hr",))))
    store.create(PendingAction.new("b", {}, "k2", Access("globex")))
    assert store.get(acme.id, Access("globex")) is None
    assert store.get(acme.id, Access("acme")) is None  # lacks the hr group the proposer had
    assert store.get(acme.id, Access("acme", ("hr", "eng"))) is not None
    assert [p.action for p in store.list(Access("globex"))] == ["b"]
    assert {p.action for p in store.list(Access.all(), "pending")} == {"a", "b"}
    assert store.claim(acme.id, "rejected", "x") and store.list(Access.all(), "rejected")[0].id == acme.id
