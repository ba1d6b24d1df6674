from __future__ import annotations

import json

from typer.testing import CliRunner

from groundwork.cli import app
from groundwork.state.keys import SqliteKeyStore as KeyStore


def test_keys_create_list_revoke(tmp_path) -> None:
    kb = str(tmp_path / "kb")
    r = CliRunner().invoke(
        app,
        [
            "--kb",
            kb,
            "keys",
            "create",
            "--name",
            "bot",
            "--scopes",
            "query,ingest",
            "--groups",
            "hr",
            "--tenant",
            "acme",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    created = json.loads(r.output)
    store = KeyStore(tmp_path / "kb" / "keys.sqlite")
    assert store.verify(created["key"]).access.groups == ("hr",)
    assert store.verify(created["key"] + "x") is None and store.verify("gw_" + created["key_id"] + "_guess") is None
    listed = json.loads(CliRunner().invoke(app, ["--kb", kb, "keys", "list", "--json"]).output)
    assert listed[0]["name"] == "bot" and "key" not in listed[0] and listed[0]["scopes"] == ["ingest", "query"]
    assert CliRunner().invoke(app, ["--kb", kb, "keys", "revoke", created["key_id"]]).exit_code == 0
    assert store.verify(created["key"]) is None
    bad = CliRunner().invoke(app, ["--kb", kb, "keys", "create", "--name", "x", "--scopes", "root"])
    assert bad.exit_code == 2 and "scopes must be some of" in bad.output


def test_ingest_acl_options_restrict_visibility(tmp_path) -> None:
    from groundwork.config import load_settings
    from groundwork.kb import KnowledgeBase
    from groundwork.types import Access
    from tests.conftest import write

    write(tmp_path / "hr" / "pay.md", "# Pay\n\nSalaries are paid on the 25th of each month.\n")
    kb = str(tmp_path / "kb")
    r = CliRunner().invoke(
        app, ["--kb", kb, "ingest", str(tmp_path / "hr"), "--tenant", "acme", "--allowed-groups", "hr"]
    )
    assert r.exit_code == 0, r.output
    k = KnowledgeBase(settings=load_settings(kb=kb))
    assert k.search("when are salaries paid", access=Access("acme", ("hr",)))
    assert k.search("when are salaries paid", access=Access("acme", ("eng",))) == []
    assert k.search("when are salaries paid", access=Access("globex", ("hr",))) == []
    assert k.search("when are salaries paid", access=Access(None, ())) == []
    assert k.documents()[0].allowed_groups == ["hr"] and k.documents()[0].tenant == "acme"
