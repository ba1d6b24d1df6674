"""The service-state contract, run against both implementations of each protocol: SQLite files (or
process memory) and a real PostgreSQL. Keys, jobs, the audit log, rate limits and the review queue
must behave the same."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from groundwork.errors import RequestError
from groundwork.state import (
    ApiKeyError,
    AuditLog,
    AuditNotFound,
    JobQueue,
    KeyStore,
    MonitorStore,
    RateLimiter,
    ReviewConflict,
    ReviewNotFound,
    ReviewQueue,
)
from groundwork.state.jobs import staged_path
from groundwork.types import Access


@pytest.fixture(params=["sqlite", "postgres"])
def state(request: pytest.FixtureRequest, tmp_path: Path):
    """keys, jobs, audit and a rate-limiter factory of the parametrised kind."""
    if request.param == "sqlite":
        from groundwork.state.audit import SqliteAuditLog
        from groundwork.state.jobs import SqliteJobQueue
        from groundwork.state.keys import SqliteKeyStore
        from groundwork.state.monitor import SqliteMonitorStore
        from groundwork.state.ratelimit import MemoryRateLimiter
        from groundwork.state.reviews import SqliteReviewQueue

        yield SimpleNamespace(
            monitor=SqliteMonitorStore(tmp_path / "monitor.sqlite"),
            reviews=SqliteReviewQueue(tmp_path / "reviews.sqlite"),
            keys=SqliteKeyStore(tmp_path / "keys.sqlite"),
            jobs=SqliteJobQueue(tmp_path),
            audit=SqliteAuditLog(tmp_path / "audit.sqlite"),
            limiter=lambda rate, burst: MemoryRateLimiter(rate, burst),
        )
        return
    from groundwork.index.pg_schema import make_pool, migrate
    from groundwork.state.audit import PgAuditLog
    from groundwork.state.jobs import PgJobQueue
    from groundwork.state.keys import PgKeyStore
    from groundwork.state.monitor import PgMonitorStore
    from groundwork.state.ratelimit import PgRateLimiter
    from groundwork.state.reviews import PgReviewQueue

    dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")
    migrate(dsn, schema, 8)
    pool = make_pool(dsn, schema, 1, 4)
    yield SimpleNamespace(
        reviews=PgReviewQueue(pool),
        monitor=PgMonitorStore(pool),
        keys=PgKeyStore(pool),
        jobs=PgJobQueue(pool, tmp_path, lease_s=3),
        audit=PgAuditLog(pool),
        limiter=lambda rate, burst: PgRateLimiter(pool, rate, burst),
    )
    pool.close()


def test_each_implements_its_protocol(state) -> None:
    assert isinstance(state.keys, KeyStore)
    assert isinstance(state.jobs, JobQueue)
    assert isinstance(state.audit, AuditLog)
    assert isinstance(state.limiter(1.0, 1), RateLimiter)
    assert isinstance(state.reviews, ReviewQueue)
    assert isinstance(state.monitor, MonitorStore)


# -- keys --------------------------------------------------------------------------------------------
def test_key_is_verified_by_its_secret_only_and_revocation_is_immediate(state) -> None:
    record, secret = state.keys.create("bot", ["query"], ["hr"], "acme")
    assert secret.startswith(f"gw_{record.key_id}_")
    found = state.keys.verify(secret)
    assert found is not None and found.access == Access("acme", ("hr",)) and found.scopes == ("query",)
    for wrong in (secret + "x", f"gw_{record.key_id}_guess", "gw_nope", "", "Bearer " + secret):
        assert state.keys.verify(wrong) is None
    assert [k.name for k in state.keys.list()] == ["bot"]
    revoked = state.keys.revoke(record.key_id)
    assert revoked.revoked_at and state.keys.verify(secret) is None


@pytest.mark.parametrize(
    ("scopes", "groups", "tenant"),
    [([], [], None), (["root"], [], None), (["query"], ["a'b"], None), (["query"], [], "x|y")],
)
def test_invalid_key_definitions_are_refused(state, scopes, groups, tenant) -> None:
    with pytest.raises(ApiKeyError):
        state.keys.create("bad", scopes, groups, tenant)
    assert state.keys.list() == []


def test_revoking_an_unknown_key_is_an_error(state) -> None:
    with pytest.raises(ApiKeyError, match="no key with id"):
        state.keys.revoke("000000000000")


# -- jobs --------------------------------------------------------------------------------------------
def _run_one(jobs, process) -> None:
    """Run the worker loop until the first job is finished."""
    stop = threading.Event()
    worker = threading.Thread(target=jobs.run_forever, args=(process, stop), daemon=True)
    worker.start()
    deadline = time.time() + 30
    while time.time() < deadline and not stop.is_set():
        time.sleep(0.1)
        if getattr(process, "finished", False):
            stop.set()
    worker.join(timeout=10)


def test_job_runs_with_its_files_and_is_visible_to_its_tenant_only(state) -> None:
    job = state.jobs.submit({"a.md": b"# A", "b.md": b"# B"}, "bot", Access("acme", ("hr",)), ["hr"], {"k": 1})
    assert job.status == "queued" and job.files == ["a.md", "b.md"]
    assert state.jobs.get(job.job_id, Access("acme", ("hr",))).job_id == job.job_id
    assert state.jobs.get(job.job_id, Access("globex", ("hr",))) is None
    assert state.jobs.get(job.job_id, Access.all()) is not None
    assert state.jobs.get("no-such-job", Access.all()) is None
    seen: dict[str, bytes] = {}

    def process(j) -> None:
        for name in j.files:
            seen[name] = staged_path(state.jobs.uploads, j, name).read_bytes()
            j.results.append({"file": name, "status": "added"})
            j.done += 1
            state.jobs.save_progress(j)
        process.finished = True

    _run_one(state.jobs, process)
    assert seen == {"a.md": b"# A", "b.md": b"# B"}
    done = _wait_status(state.jobs, job.job_id)
    assert done.status == "done" and done.done == 2 and done.options["k"] == 1
    assert not (state.jobs.uploads / job.job_id).exists()  # staged files removed once finished


def test_a_job_that_raises_fails_with_its_error_and_the_worker_goes_on(state) -> None:
    job = state.jobs.submit({"x.md": b"x"}, "bot", Access(), [], {})

    def process(j) -> None:
        process.finished = True
        raise RuntimeError("parser exploded")

    _run_one(state.jobs, process)
    failed = _wait_status(state.jobs, job.job_id)
    assert failed.status == "failed" and "parser exploded" in (failed.error or "")


def _wait_status(jobs, job_id: str):
    deadline = time.time() + 10
    while time.time() < deadline:
        j = jobs.get(job_id, Access.all())
        if j.status in ("done", "failed"):
            return j
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


# -- audit -------------------------------------------------------------------------------------------
def _record(answer_id: str, tenant: str | None, groups: list[str] | None, created: str) -> dict:
    return {
        "answer_id": answer_id,
        "created_at": created,
        "caller": "bot",
        "tenant": tenant,
        "access_groups": groups,
        "question": f"q {answer_id}",
        "abstained": False,
        "answer": "a",
    }


def test_audit_records_are_shown_only_to_callers_who_could_see_their_sources(state) -> None:
    state.audit.write(_record("a1", "acme", ["hr"], "2026-01-01T00:00:01"))
    state.audit.write(_record("a2", "acme", ["hr", "eng"], "2026-01-01T00:00:02"))
    state.audit.write(_record("a3", None, None, "2026-01-01T00:00:03"))
    assert [r["answer_id"] for r in state.audit.list()] == ["a3", "a2", "a1"]  # newest first
    hr = Access("acme", ("hr",))
    assert [r["answer_id"] for r in state.audit.list(access=hr)] == ["a1"]
    assert [r["answer_id"] for r in state.audit.list(access=Access("acme", ("hr", "eng")))] == ["a2", "a1"]
    assert state.audit.list(access=Access("globex", ("hr",))) == []
    with pytest.raises(AuditNotFound):
        state.audit.get("a2", hr)
    with pytest.raises(AuditNotFound):
        state.audit.get("a3", Access(None, ()))  # asked with unrestricted access
    assert state.audit.get("a1", hr)["question"] == "q a1"


def test_feedback_is_kept_with_its_record(state) -> None:
    state.audit.write(_record("a1", None, [], "2026-01-01T00:00:01"))
    state.audit.add_feedback("a1", "down", "wrong year", "alice")
    [fb] = state.audit.get("a1")["feedback"]
    assert (fb["rating"], fb["comment"], fb["caller"]) == ("down", "wrong year", "alice")
    with pytest.raises(AuditNotFound):
        state.audit.add_feedback("nope", "up", None, "alice")
    with pytest.raises(RequestError):
        state.audit.add_feedback("a1", "meh", None, "alice")


# -- rate limits ---------------------------------------------------------------------------------------
def test_token_bucket_allows_a_burst_then_asks_to_wait(state) -> None:
    limiter = state.limiter(0.5, 3)  # 3 at once, then one every 2 s
    assert [limiter.take("k1") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("k1")
    assert 0 < wait <= 2.0
    assert limiter.take("k2") == 0.0  # buckets are per key


def test_a_job_is_shown_to_its_creator_and_to_keys_that_see_all_its_documents(state) -> None:
    job = state.jobs.submit({"plan.md": b"x"}, "eng-bot", Access("acme", ("eng",)), ["eng"], {}, creator="k-eng")
    assert state.jobs.get(job.job_id, Access("acme", ("eng",)), "someone-else") is not None
    assert state.jobs.get(job.job_id, Access("acme", ("hr",)), "k-hr") is None  # the jobs of another group
    assert state.jobs.get(job.job_id, Access("acme", ()), "k-none") is None
    assert state.jobs.get(job.job_id, Access("acme", ("hr",)), "k-eng") is not None  # its creator
    assert state.jobs.get(job.job_id, Access("globex", ("eng",)), "k-g") is None


def test_staged_files_are_named_by_position_never_by_the_callers_name(state) -> None:
    job = state.jobs.submit({"../../evil.md": b"a", "b.md": b"b"}, "bot", Access(), [], {})
    paths = [staged_path(state.jobs.uploads, job, n) for n in job.files]
    assert [p.name for p in paths] == ["0", "1"] and all(p.parent.parent == state.jobs.uploads for p in paths)


def test_scheduled_jobs_are_one_per_slot_and_never_overlap(state) -> None:
    """Replicas schedule the same slot: one job. While a sync job is queued or running, no other is
    queued; once it finished, the next slot's is."""
    first = state.jobs.submit_scheduled("sync", 1000)
    assert first is not None and first.job_id == "sync-1000" and first.kind == "sync"
    assert state.jobs.submit_scheduled("sync", 1000) is None  # another replica, same slot
    assert state.jobs.submit_scheduled("sync", 1001) is None  # the first one is still queued
    stop = threading.Event()
    seen: list[str] = []

    def process(job) -> None:
        seen.append(job.job_id)
        job.summary = {"added": 1, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 0}
        stop.set()

    state.jobs.run_forever(process, stop)
    deadline = time.monotonic() + 10
    while state.jobs.recent("sync")[0].status != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    [done] = state.jobs.recent("sync")
    assert seen == ["sync-1000"] and done.status == "done" and done.summary["added"] == 1
    assert state.jobs.submit_scheduled("sync", 1000) is None  # a slot runs once
    assert state.jobs.submit_scheduled("sync", 1002) is not None
    assert [j.job_id for j in state.jobs.recent("sync")] == ["sync-1002", "sync-1000"]


# -- review queue --------------------------------------------------------------------------------------
_EVIDENCE = [{"chunk_id": "c1", "doc_id": "d1", "source": "d1.md", "score": 0.4, "n": 1, "secret": "dropped"}]


def test_a_review_keeps_what_the_reviewer_needs_and_is_opened_once_per_answer(state) -> None:
    item = state.reviews.open("not_helpful", "q?", "a.", _EVIDENCE, "ans1", "acme", ["hr"], "wrong year", "bot")
    assert (item.status, item.kind, item.tenant, item.groups, item.reasons) == (
        "open", "not_helpful", "acme", ["hr"], ["wrong year"]
    )  # fmt: skip
    assert item.evidence == [{"chunk_id": "c1", "doc_id": "d1", "source": "d1.md", "score": 0.4, "n": 1}]
    again = state.reviews.open("low_grounding", "q?", "a.", [], "ans1", "acme", ["hr"], "grounding 0.3 < 0.7")
    assert again.review_id == item.review_id and again.reasons == ["wrong year", "grounding 0.3 < 0.7"]
    other = state.reviews.open("escalation", "q2?", "", None, None, "acme", [], "the user asked for a person")
    assert other.review_id != item.review_id
    assert [i.review_id for i in state.reviews.list()] == [other.review_id, item.review_id]  # newest first
    got = state.reviews.get(item.review_id)
    assert got.reasons == ["wrong year", "grounding 0.3 < 0.7"] and got.asker == "bot"


def test_reviews_are_shown_only_to_admins_who_could_see_what_the_asker_saw(state) -> None:
    hr = state.reviews.open("not_helpful", "q", "a", [], "a1", "acme", ["hr"], None)
    both = state.reviews.open("not_helpful", "q", "a", [], "a2", "acme", ["hr", "eng"], None)
    unrestricted = state.reviews.open("not_helpful", "q", "a", [], "a3", None, None, None)
    ids = lambda items: {i.review_id for i in items}  # noqa: E731
    assert ids(state.reviews.list(access=Access("acme", ("hr",)))) == {hr.review_id}
    assert ids(state.reviews.list(access=Access("acme", ("hr", "eng")))) == {hr.review_id, both.review_id}
    assert state.reviews.list(access=Access("globex", ("hr", "eng"))) == []
    assert ids(state.reviews.list(access=Access.all())) == {hr.review_id, both.review_id, unrestricted.review_id}
    for rid, access in ((both.review_id, Access("acme", ("hr",))), (unrestricted.review_id, Access(None, ()))):
        with pytest.raises(ReviewNotFound):
            state.reviews.get(rid, access)
        with pytest.raises(ReviewNotFound):
            state.reviews.finish(rid, "dismissed", {}, access)


def test_a_review_is_finished_once(state) -> None:
    item = state.reviews.open("not_helpful", "q", "a", [], "a1", None, [], None)
    done = state.reviews.finish(item.review_id, "resolved", {"reviewer": "alice", "answer": "42"})
    assert done.status == "resolved" and done.resolved_at and done.resolution["answer"] == "42"
    with pytest.raises(ReviewConflict):
        state.reviews.finish(item.review_id, "dismissed", {})
    assert state.reviews.list() == []
    assert [i.review_id for i in state.reviews.list(status="resolved")] == [item.review_id]
    assert state.reviews.get(item.review_id).resolution == {"reviewer": "alice", "answer": "42"}
    # a new complaint about a resolved answer opens a new item
    assert state.reviews.open("not_helpful", "q", "a", [], "a1", None, [], None).review_id != item.review_id
    with pytest.raises(ReviewNotFound):
        state.reviews.get("nope")


@pytest.mark.parametrize(
    ("kind", "tenant", "groups", "status"),
    [("rant", None, [], None), ("manual", "x|y", [], None), ("manual", None, ["a'b"], None), ("manual", None, [], "x")],
)
def test_invalid_reviews_are_refused(state, kind, tenant, groups, status) -> None:
    with pytest.raises(RequestError):
        if status:
            state.reviews.list(status=status)
        else:
            state.reviews.open(kind, "q", "a", [], None, tenant, groups, None)
    assert state.reviews.list(status=None) == []


# -- monitor runs --------------------------------------------------------------------------------------
def test_monitor_runs_are_kept_newest_first_with_the_latest_baseline(state) -> None:
    assert state.monitor.list() == [] and state.monitor.baseline() is None
    first = state.monitor.add({"eval": {"recall@10": 0.9}}, baseline=True)
    second = state.monitor.add({"eval": {"recall@10": 0.8}})
    assert first["run_id"] != second["run_id"] and first["created_at"] <= second["created_at"]
    assert [r["run_id"] for r in state.monitor.list()] == [second["run_id"], first["run_id"]]
    assert state.monitor.list(1)[0]["eval"] == {"recall@10": 0.8}
    assert state.monitor.baseline()["run_id"] == first["run_id"]
    third = state.monitor.add({"eval": {}}, baseline=True)
    assert state.monitor.baseline()["run_id"] == third["run_id"]
    # Runs added in a burst (several in one millisecond) still come back newest first.
    burst = [state.monitor.add({"eval": {"n": i}}, baseline=True)["run_id"] for i in range(20)]
    assert [r["run_id"] for r in state.monitor.list(20)] == burst[::-1]
    assert state.monitor.baseline()["run_id"] == burst[-1]
