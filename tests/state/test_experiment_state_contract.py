"""The profile and experiment stores, and the audit log's experiment rows, run against both
implementations: ``experiments.sqlite`` / ``audit.sqlite`` and a real PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from groundwork.config import Settings
from groundwork.state import ExperimentStore, ProfileStore
from groundwork.state.arm_stats import arm_figures, canary_verdict, significance
from groundwork.state.experiment_control import ExperimentRouter, experiment_status, finish, start_experiment
from groundwork.state.experiments import (
    CanaryThresholds,
    ExperimentConflict,
    ExperimentError,
    ExperimentNotFound,
    bucket,
)
from groundwork.state.profiles import ProfileError, ProfileNotFound, apply_profile


@pytest.fixture(params=["sqlite", "postgres"])
def state(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        from groundwork.state.audit import SqliteAuditLog
        from groundwork.state.experiments import SqliteExperimentStore
        from groundwork.state.profiles import SqliteProfileStore

        path = tmp_path / "experiments.sqlite"
        yield SimpleNamespace(
            profiles=SqliteProfileStore(path),
            experiments=SqliteExperimentStore(path),
            audit=SqliteAuditLog(tmp_path / "audit.sqlite"),
            other=lambda: (SqliteProfileStore(path), SqliteExperimentStore(path)),  # a second process's view
        )
        return
    from groundwork.index.pg_schema import make_pool, migrate
    from groundwork.state.audit import PgAuditLog
    from groundwork.state.experiments import PgExperimentStore
    from groundwork.state.profiles import PgProfileStore

    dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")
    migrate(dsn, schema, 8)
    pool, pool2 = make_pool(dsn, schema, 1, 4), make_pool(dsn, schema, 1, 2)
    yield SimpleNamespace(
        profiles=PgProfileStore(pool),
        experiments=PgExperimentStore(pool),
        audit=PgAuditLog(pool),
        other=lambda: (PgProfileStore(pool2), PgExperimentStore(pool2)),
    )
    pool.close(), pool2.close()


@pytest.fixture
def embedded(tmp_path: Path):
    """The embedded stores alone: validation happens before either store is touched, so the refusal
    tests run once (the contract tests above check both stores store the same)."""
    from groundwork.state.audit import SqliteAuditLog
    from groundwork.state.experiments import SqliteExperimentStore
    from groundwork.state.profiles import SqliteProfileStore

    path = tmp_path / "experiments.sqlite"
    return SimpleNamespace(
        profiles=SqliteProfileStore(path),
        experiments=SqliteExperimentStore(path),
        audit=SqliteAuditLog(tmp_path / "audit.sqlite"),
    )


# -- profiles ----------------------------------------------------------------------------------------
def test_profile_versions_are_immutable_and_numbered_per_name(state) -> None:
    assert isinstance(state.profiles, ProfileStore) and isinstance(state.experiments, ExperimentStore)
    p1 = state.profiles.create("strict", {"answer": {"abstain_threshold": 0.9}}, "ops")
    p2 = state.profiles.create("strict", {"answer": {"abstain_threshold": 0.8}, "retrieval": {"top_k": 5}}, "ops")
    other = state.profiles.create("wide", {"retrieval": {"mode": "bm25"}}, "ops")
    assert (p1.ref, p2.ref, other.ref) == ("strict@1", "strict@2", "wide@1")
    assert state.profiles.get("strict@1").override == {"answer": {"abstain_threshold": 0.9}}
    assert state.profiles.get("strict").ref == "strict@2"  # the newest
    assert [p.ref for p in state.profiles.list()] == ["strict@1", "strict@2", "wide@1"]
    with pytest.raises(ProfileNotFound):
        state.profiles.get("strict@3")
    # Another process sees the same versions and continues the numbering.
    profiles2, _ = state.other()
    assert profiles2.create("strict", {}, "ops").ref == "strict@3"


def test_concurrent_creates_get_distinct_versions(state) -> None:
    profiles2, _ = state.other()
    refs: list[str] = []

    def create(store) -> None:
        for _ in range(5):
            refs.append(store.create("race", {"retrieval": {"top_k": 3}}, "ops").ref)

    threads = [threading.Thread(target=create, args=(s,)) for s in (state.profiles, profiles2)]
    [t.start() for t in threads], [t.join() for t in threads]
    assert sorted(refs, key=lambda r: int(r.split("@")[1])) == [f"race@{n}" for n in range(1, 11)]


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"retrieval": {"top_kk": 3}}, "retrieval.top_kk"),
        ({"answer": {"abstain_threshold": 7}}, "answer.abstain_threshold"),
        ({"generator": {"model": "gpt-x"}}, "generator.model"),
        ({"guard": {"pii": "off"}}, "guard"),  # a profile cannot switch a guardrail off
        ({"retrieval": 3}, "retrieval"),
        ([1, 2], "sections"),
    ],
)
def test_invalid_profiles_are_refused_naming_the_field(embedded, override, named) -> None:
    with pytest.raises(ProfileError, match=named.replace(".", r"\.")):
        embedded.profiles.create("bad", override, "ops")
    assert embedded.profiles.list() == []


@pytest.mark.parametrize("name", ["", "Up", "../x", "a" * 64, "x;drop", "a@b"])
def test_hostile_profile_names_are_refused(embedded, name) -> None:
    with pytest.raises(ProfileError):
        embedded.profiles.create(name, {}, "ops")


def test_apply_profile_changes_only_its_keys() -> None:
    base = Settings()
    s = apply_profile(base, {"retrieval": {"top_k": 3}, "generator": {"prompt": "x"}})
    assert (s.retrieval.top_k, s.retrieval.mode, s.generator.prompt) == (3, base.retrieval.mode, "x")
    assert s.answer == base.answer and base.retrieval.top_k == 10


# -- experiments -------------------------------------------------------------------------------------
def _two_profiles(state) -> None:
    state.profiles.create("a", {"retrieval": {"top_k": 4}}, "ops")
    state.profiles.create("b", {"answer": {"abstain_threshold": 1.0}}, "ops")


def test_one_experiment_at_a_time_and_ending_once(state) -> None:
    _two_profiles(state)
    assert state.profiles.default() is None
    assert state.profiles.set_default("b").ref == "b@1" and state.profiles.default().ref == "b@1"
    with pytest.raises(ProfileNotFound):
        state.profiles.set_default("nope")
    state.profiles.set_default(None)
    assert state.profiles.default() is None
    exp = start_experiment(state.profiles, state.experiments, "a", "b", 50, None, "ops")
    assert (exp.control, exp.treatment, exp.status) == ("a@1", "b@1", "running")
    _, experiments2 = state.other()
    assert experiments2.running().experiment_id == exp.experiment_id
    with pytest.raises(ExperimentConflict):
        start_experiment(state.profiles, experiments2, "b", "a", 10, None, "ops")
    ended = finish(state.profiles, state.experiments, state.audit, exp.experiment_id, "stopped", "ops", "done")
    assert ended.status == "stopped" and ended.ended_by == "ops" and state.experiments.running() is None
    assert state.profiles.default().ref == "a@1"  # traffic returns to the control
    assert experiments2.end(exp.experiment_id, "rolled_back", "canary", "late", {}) is None  # only once
    assert [e.action for e in state.experiments.events(exp.experiment_id)] == ["start", "stopped"]
    for hostile in ("exp-nope", "exp-000000000000", "x\x00y", "'; DROP TABLE experiments; --", "e" * 10_000):
        with pytest.raises(ExperimentNotFound):
            state.experiments.get(hostile)


@pytest.mark.parametrize(("share", "control", "treatment"), [(0, "a", "b"), (101, "a", "b"), (50, "a", "a@1")])
def test_invalid_experiments_are_refused(embedded, share, control, treatment) -> None:
    _two_profiles(embedded)
    with pytest.raises(ExperimentError):
        start_experiment(embedded.profiles, embedded.experiments, control, treatment, share, None, "ops")
    with pytest.raises(ProfileNotFound):
        start_experiment(embedded.profiles, embedded.experiments, "a", "missing", 10, None, "ops")
    assert embedded.experiments.list() == []


def test_routing_is_a_stable_hash_of_the_key(state) -> None:
    _two_profiles(state)
    exp = start_experiment(state.profiles, state.experiments, "a", "b", 50, None, "ops")
    keys = [f"key{i:02d}" for i in range(200)]
    arms = {k: exp.arm(k) for k in keys}
    assert arms == {k: state.other()[1].running().arm(k) for k in keys}  # the same from another process
    assert 70 < sum(a == "treatment" for a in arms.values()) < 130
    assert all(0 <= bucket(exp.experiment_id, k) < 10_000 for k in keys)
    router = ExperimentRouter(state.profiles, state.experiments, state.audit)
    a = router.assign("key01")
    assert a.arm == arms["key01"] and a.profile.ref == exp.profile_ref(a.arm)
    assert router.assign("key01", "treatment").profile.ref == "b@1"
    with pytest.raises(ExperimentError):
        router.assign("key01", "everything")


def _record(i: int, exp_id: str, arm: str, abstained: bool, ms: float) -> dict:
    return {
        "answer_id": f"{arm}-{i}",
        "created_at": f"2026-01-01T00:00:{i:02d}",
        "caller": "bot",
        "tenant": None,
        "question": "q",
        "abstained": abstained,
        "blocked": False,
        "flags": [],
        "guardrails": [],
        "latency_ms": {"total": ms},
        "profile": "b@1" if arm == "treatment" else "a@1",
        "experiment_id": exp_id,
        "arm": arm,
    }


def test_status_figures_and_the_canary_from_audit_rows(state) -> None:
    _two_profiles(state)
    canary = CanaryThresholds(max_abstention_rate=0.5, min_answers=10)
    exp = start_experiment(state.profiles, state.experiments, "a", "b", 50, canary, "ops")
    for i in range(12):
        state.audit.write(_record(i, exp.experiment_id, "control", i == 0, 100 + i))
        usage = {"prompt_tokens": 100, "completion_tokens": 20, "cost_usd": 0.0005}  # as token accounting writes it
        state.audit.write(_record(i, exp.experiment_id, "treatment", True, 300 + i) | usage)
    state.audit.write(_record(99, "exp-other", "treatment", False, 1))  # another experiment's answer
    state.audit.add_feedback("control-1", "up", None, "bob")
    state.audit.add_feedback("control-2", "down", None, "bob")
    status = experiment_status(state.experiments, state.audit, exp.experiment_id)
    c, t = status["arms"]["control"], status["arms"]["treatment"]
    assert (c["answers"], t["answers"], c["keys"]) == (12, 12, 1)
    assert c["abstention"]["rate"] == round(1 / 12, 4) and t["abstention"]["rate"] == 1.0
    assert c["helpful"] == {"count": 1, "of": 2, "rate": 0.5} and t["helpful"]["rate"] is None
    assert c["latency_ms"]["p50"] == 105.5 and t["latency_ms"]["p95"] > 310
    assert c["tokens"] == "not recorded"  # these records carry no token counts
    assert t["tokens"] == {"answers": 12, "prompt_tokens": 1200, "completion_tokens": 240, "cost": 0.006}
    assert status["p_values"]["abstention"] < 0.001 and status["p_values"]["latency_ms"] < 0.001
    assert canary_verdict(canary, arm_figures(state.audit.arm_rows(exp.experiment_id))["treatment"]) == [
        "abstention rate 1.00 > 0.50"
    ]
    router = ExperimentRouter(state.profiles, state.experiments, state.audit)
    ended = router.after_answer(router.assign("k", "treatment"))
    assert ended is not None and ended.status == "rolled_back" and "abstention rate" in ended.end_reason
    event = state.experiments.events(exp.experiment_id)[-1]
    assert event.action == "rolled_back" and event.actor.startswith("canary")
    assert event.figures["treatment"]["abstention"]["rate"] == 1.0
    assert router.assign("k").profile.ref == "a@1" and router.assign("k").arm is None


def test_significance_is_none_without_variation() -> None:
    rows = [{"arm": a, "abstained": False, "latency_ms": 5.0} for a in ("control", "treatment") for _ in range(3)]
    p = significance(arm_figures(rows))
    assert p["abstention"] is None and p["helpful"] is None


def test_an_older_audit_sqlite_gets_the_arm_columns(tmp_path: Path) -> None:
    from groundwork.state.audit import SqliteAuditLog

    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.executescript(
        "CREATE TABLE audit (answer_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, caller TEXT NOT NULL, "
        "tenant TEXT, record TEXT NOT NULL);"
        "INSERT INTO audit VALUES ('old', '2025-01-01', 'cli', NULL, '{\"answer_id\": \"old\"}');"
    )
    db.commit(), db.close()
    log = SqliteAuditLog(tmp_path / "audit.sqlite")
    log.write(_record(1, "exp-1", "control", False, 10))
    assert log.get("old")["answer_id"] == "old" and [r["arm"] for r in log.arm_rows("exp-1")] == ["control"]
