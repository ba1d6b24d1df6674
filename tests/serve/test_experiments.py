"""Experiments and canaries through the HTTP API, with two app instances sharing the deployment's state
(the embedded default: one kb folder; PostgreSQL: one schema), the real embedding model, real stores.

- a 50% experiment routes each API key to the same arm on every request and on both instances, both
  arms get traffic, and its status shows per-arm figures with p-values;
- a canary whose treatment abstains on everything (abstain_threshold 1.0) is rolled back by the
  service after min_answers treatment answers; the rollback is an event (who, why, figures) and later
  answers all use the control; promote makes the treatment the default profile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from groundwork.config import Settings, load_settings
from groundwork.serve.app import create_app
from groundwork.state.experiments import bucket
from tests.conftest import write

pytestmark = pytest.mark.slow

DOCS = {
    "valves.md": "# Valves\n\nRelief valves are replaced every two years, or after any overpressure event.\n",
    "pumps.md": "# Pumps\n\nThe coolant pump is inspected every six months by the maintenance team.\n",
}
QUESTION = "When are relief valves replaced?"
CONTROL = {"retrieval": {"top_k": 8}}
ABSTAIN_ALWAYS = {"answer": {"abstain_threshold": 1.0}}  # no sentence is ever similar enough: always abstains


def _apps(settings: Settings, folder: Path) -> Iterator[tuple[TestClient, TestClient, dict[str, str]]]:
    """Two app instances on the same state; documents ingested, an admin key and 20 query keys."""
    for name, text in DOCS.items():
        write(folder / "docs" / name, text)
    with ExitStack() as stack:
        a = stack.enter_context(TestClient(create_app(settings)))
        b = stack.enter_context(TestClient(create_app(settings)))
        svc = a.app.state.service
        svc.kb.ingest([folder / "docs"])
        keys = {"admin": svc.keys.create("ops", ["admin"])[1]}
        keys |= {f"k{i:02d}": svc.keys.create(f"k{i:02d}", ["query"])[1] for i in range(20)}
        yield a, b, keys


def _h(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def _ask(client: TestClient, key: str, **headers: str) -> dict:
    r = client.post("/v1/answer", json={"question": QUESTION}, headers=_h(key, **headers))
    assert r.status_code == 200, r.text
    return r.json()


def _audit(client: TestClient, admin: str, answer_id: str) -> dict:
    r = client.get(f"/v1/audit/{answer_id}", headers=_h(admin))
    assert r.status_code == 200, r.text
    return r.json()


def _profiles(client: TestClient, admin: str) -> None:
    for name, override in (("base", CONTROL), ("strict", ABSTAIN_ALWAYS)):
        r = client.post("/v1/profiles", json={"name": name, "override": override}, headers=_h(admin))
        assert r.status_code == 201, r.text
    bad = client.post("/v1/profiles", json={"name": "x", "override": {"retrieval": {"topk": 1}}}, headers=_h(admin))
    assert bad.status_code == 422 and "retrieval.topk" in bad.json()["error"]["message"]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("experiments")
    # The admin key reads an audit record after each of the test's ~70 requests: more than the default
    # per-key burst (60) on a fast machine, and rate limiting is not what this module tests.
    yield from _apps(load_settings(kb=folder / "kb", **{"serve.rate_burst": 1000}), folder)


def test_a_50_percent_experiment_routes_each_key_to_one_arm_on_every_instance(embedded) -> None:
    a, b, keys = embedded
    admin = keys["admin"]
    _profiles(a, admin)
    r = b.post("/v1/experiments", json={"control": "base", "treatment": "strict", "share": 50}, headers=_h(admin))
    assert r.status_code == 201, r.text
    exp = r.json()
    assert (exp["control"], exp["treatment"]) == ("base@1", "strict@1")
    second = a.post("/v1/experiments", json={"control": "strict", "treatment": "base", "share": 5}, headers=_h(admin))
    assert second.status_code == 409  # one experiment at a time

    arms: dict[str, set[str]] = {}
    for name, key in keys.items():
        if name == "admin":
            continue
        for client in (a, b, a):
            ans = _ask(client, key)
            record = _audit(a, admin, ans["answer_id"])
            assert record["experiment_id"] == exp["experiment_id"]
            assert record["profile"] == ("strict@1" if record["arm"] == "treatment" else "base@1")
            assert ans["abstained"] == (record["arm"] == "treatment")  # the treatment's settings were used
            arms.setdefault(name, set()).add(record["arm"])
    assert all(len(seen) == 1 for seen in arms.values())  # the same arm on every request and instance
    by_arm = [next(iter(s)) for s in arms.values()]
    assert 0 < by_arm.count("treatment") < 20  # both arms get traffic
    key_id = keys["k00"].split("_")[1]
    expected = "treatment" if bucket(exp["experiment_id"], key_id) < 5000 else "control"
    assert arms["k00"] == {expected}

    # Feedback counts towards the helpful rate; status shows per-arm figures and p-values.
    helpful = _ask(a, keys["k00"])
    assert a.post("/v1/feedback", json={"answer_id": helpful["answer_id"], "rating": "up"}, headers=_h(keys["k00"]))
    status = b.get(f"/v1/experiments/{exp['experiment_id']}", headers=_h(admin)).json()
    control, treatment = status["arms"]["control"], status["arms"]["treatment"]
    n_treat = by_arm.count("treatment")
    assert treatment["answers"] == 3 * n_treat + (expected == "treatment")
    assert control["answers"] + treatment["answers"] == 61
    assert (control["keys"], treatment["keys"]) == (20 - n_treat, n_treat)
    assert treatment["abstention"]["rate"] == 1.0 and control["abstention"]["rate"] == 0.0
    assert status["arms"][expected]["helpful"] == {"count": 1, "of": 1, "rate": 1.0}
    assert control["latency_ms"]["p50"] > 0 and treatment["latency_ms"]["p95"] >= treatment["latency_ms"]["p50"]
    assert control["tokens"] in ("not recorded",) or isinstance(control["tokens"], dict)
    assert status["p_values"]["abstention"] < 1e-6 and 0 <= status["p_values"]["latency_ms"] <= 1

    # Each profile version's pipeline is built once, on the one embedding model and store.
    parts = a.app.state.service.kb.components
    strict = parts.for_profile(a.app.state.service.profiles.get("strict@1"))
    assert strict is parts.for_profile(a.app.state.service.profiles.get("strict@1"))
    assert strict.embedder is parts.embedder and strict.store is parts.store
    assert strict.settings.answer.abstain_threshold == 1.0 and parts.settings.answer.abstain_threshold == 0.5

    # The arm header is for admins only; an admin can force either arm.
    forced = _ask(a, admin, **{"X-Groundwork-Arm": "treatment"})
    assert _audit(a, admin, forced["answer_id"])["arm"] == "treatment" and forced["abstained"]
    denied = a.post(
        "/v1/answer", json={"question": QUESTION}, headers=_h(keys["k01"], **{"X-Groundwork-Arm": "control"})
    )
    assert denied.status_code == 403
    chat = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}
    streamed = a.post("/v1/chat/completions", json=chat, headers=_h(keys["k01"], **{"X-Groundwork-Arm": "treatment"}))
    assert streamed.status_code == 403  # refused before the stream starts
    bogus = a.post("/v1/answer", json={"question": QUESTION}, headers=_h(admin, **{"X-Groundwork-Arm": "both"}))
    assert bogus.status_code == 422

    # Promote: the experiment ends and the treatment answers everyone, on both instances.
    r = a.post(f"/v1/experiments/{exp['experiment_id']}/promote", headers=_h(admin))
    assert r.status_code == 200 and r.json()["status"] == "promoted"
    for client in (a, b):
        record = _audit(a, admin, _ask(client, keys["k05"])["answer_id"])
        assert (record["profile"], record["experiment_id"], record["arm"]) == ("strict@1", None, None)
    assert a.post(f"/v1/experiments/{exp['experiment_id']}/stop", headers=_h(admin)).status_code == 409


@pytest.fixture
def on_postgres(tmp_path: Path, pg_dsn: str, pg_schema: str):
    overrides = {"postgres.schema_name": pg_schema, "serve.rate_burst": 1000}  # see ``embedded``
    settings = load_settings(kb=tmp_path / "kb", store="postgres", pg_dsn=pg_dsn, **overrides)
    yield from _apps(settings, tmp_path)


def test_a_canary_that_abstains_on_everything_is_rolled_back_on_postgres(on_postgres) -> None:
    a, b, keys = on_postgres
    admin = keys["admin"]
    _profiles(b, admin)
    canary = {"max_abstention_rate": 0.5, "min_answers": 4}
    body = {"control": "base", "treatment": "strict", "share": 50, "canary": canary}
    exp = a.post("/v1/experiments", json=body, headers=_h(admin)).json()

    # Keys ask in turn through both instances until the service ends the canary by itself.
    treated = 0
    for name in [k for k in keys if k != "admin"] * 2:
        status = a.get(f"/v1/experiments/{exp['experiment_id']}", headers=_h(admin)).json()
        if status["experiment"]["status"] != "running":
            break
        client = a if treated % 2 else b
        record = _audit(a, admin, _ask(client, keys[name])["answer_id"])
        assert record["arm"] == (
            "treatment" if bucket(exp["experiment_id"], keys[name].split("_")[1]) < 5000 else "control"
        )
        treated += record["arm"] == "treatment"
    assert status["experiment"]["status"] == "rolled_back"
    assert treated == 4  # judged from min_answers treatment answers on, at the first crossing
    event = status["events"][-1]
    assert event["action"] == "rolled_back" and event["actor"].startswith("canary (")
    assert "abstention rate 1.00 > 0.50" in event["reason"]
    assert event["figures"]["treatment"]["answers"] == 4 and event["figures"]["treatment"]["abstention"]["rate"] == 1.0

    # Every later answer, any key, either instance: the control, outside any experiment.
    for i, name in enumerate(k for k in keys if k != "admin"):
        ans = _ask(a if i % 2 else b, keys[name])
        record = _audit(a, admin, ans["answer_id"])
        assert (record["profile"], record["experiment_id"], record["arm"]) == ("base@1", None, None)
        assert not ans["abstained"]
    listed = b.get("/v1/experiments", headers=_h(admin)).json()
    assert [e["status"] for e in listed] == ["rolled_back"]
