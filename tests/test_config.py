from __future__ import annotations

from pathlib import Path

import pytest

from groundwork.config import load_settings
from groundwork.errors import ConfigError


def test_precedence_defaults_toml_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().retrieval.top_k == 10
    (tmp_path / "groundwork.toml").write_text("[retrieval]\ntop_k = 3\nmode = 'bm25'\n")
    s = load_settings()
    assert (s.retrieval.top_k, s.retrieval.mode) == (3, "bm25")
    monkeypatch.setenv("GROUNDWORK_RETRIEVAL__TOP_K", "7")
    assert load_settings().retrieval.top_k == 7
    assert load_settings().retrieval.mode == "bm25"
    assert load_settings(**{"retrieval.top_k": 12}).retrieval.top_k == 12
    monkeypatch.setenv("GROUNDWORK_KB", "/tmp/elsewhere")
    assert load_settings().kb == Path("/tmp/elsewhere")


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[retrieval]\ntop_k = 0\n", "retrieval.top_k"),
        ("[chunking]\nstrategy = 'magic'\n", "chunking.strategy"),
        ("[chunking]\nchunk_tokens = 100\noverlap_tokens = 100\n", "overlap_tokens"),
        ("[answer]\nbogus = 1\n", "answer.bogus"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, toml: str, key: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(f)


def test_missing_config_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    (tmp_path / "broken.toml").write_text("[retrieval\n")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_settings(tmp_path / "broken.toml")
