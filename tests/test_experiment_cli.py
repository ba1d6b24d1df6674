"""`groundwork profiles` and `groundwork experiment` on the embedded state (no model is loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from click.testing import CliRunner

from groundwork.cli import app

runner = CliRunner()
COMMAND = typer.main.get_command(app)  # built once: typer's runner rebuilds the command tree per call


def gw(kb: Path, *args: str):
    return runner.invoke(COMMAND, ["--kb", str(kb), *args])


def test_profiles_and_an_experiment_from_the_command_line(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    (tmp_path / "strict.toml").write_text("[answer]\nabstain_threshold = 0.9\n")
    (tmp_path / "typo.toml").write_text("[retrieval]\ntop_kk = 3\n")
    (tmp_path / "huge.toml").write_text("# x\n" * 40_000)

    assert (
        "created profile strict@1"
        in gw(kb, "profiles", "create", "strict", "--from-file", str(tmp_path / "strict.toml")).output
    )
    assert "strict@2" in gw(kb, "profiles", "create", "strict", "--from-file", str(tmp_path / "strict.toml")).output
    for bad, says in (("typo", "retrieval.top_kk"), ("huge", "over 64 KB")):
        r = gw(kb, "profiles", "create", "x", "--from-file", str(tmp_path / f"{bad}.toml"))
        assert r.exit_code == 2 and says in r.output, r.output
    listed = json.loads(gw(kb, "profiles", "list", "--json").output)
    assert [p["ref"] for p in listed["profiles"]] == ["strict@1", "strict@2"] and listed["default"] is None
    assert json.loads(gw(kb, "profiles", "show", "strict@1").output)["override"] == {
        "answer": {"abstain_threshold": 0.9}
    }

    start = ["experiment", "start", "--control", "strict@1", "--treatment", "strict", "--share", "20", "--json"]
    r = gw(kb, *start, "--canary")
    assert r.exit_code == 2 and "at least one threshold" in r.output
    exp = json.loads(gw(kb, *start, "--canary", "--max-abstention-rate", "0.4", "--min-answers", "3").output)
    assert exp["treatment"] == "strict@2" and exp["canary"]["min_answers"] == 3
    r = gw(kb, *start)
    assert r.exit_code == 2 and "another experiment is running" in r.output
    status = json.loads(gw(kb, "experiment", "status", "--json").output)
    assert status["arms"]["treatment"]["answers"] == 0 and status["arms"]["control"]["tokens"] == "not recorded"

    assert "the default profile is now strict@1" in gw(kb, "experiment", "stop", exp["experiment_id"]).output
    second = json.loads(gw(kb, *start).output)
    assert "now strict@2" in gw(kb, "experiment", "promote", second["experiment_id"], "--reason", "better").output
    assert json.loads(gw(kb, "profiles", "list", "--json").output)["default"] == "strict@2"
    history = json.loads(gw(kb, "experiment", "list", "--json").output)
    assert [e["status"] for e in history] == ["promoted", "stopped"]
    events = json.loads(gw(kb, "experiment", "status", second["experiment_id"], "--json").output)["events"]
    assert [(e["action"], e["reason"]) for e in events] == [("start", "started"), ("promoted", "better")]
