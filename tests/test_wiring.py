"""The composition root: parts are built from settings on first use, or supplied and checked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from groundwork.answer import Generation
from groundwork.errors import ConfigError
from groundwork.kb import KnowledgeBase
from groundwork.types import ContextChunk
from tests.conftest import write


class QuotingGenerator:
    """A third-party generator: answers with the first context chunk, cited."""

    name = "quoting"
    model_id = "test:quoting"
    prompt = None

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def context_budget(self, question: str) -> int:
        return 50

    def generate(self, question: str, context: Sequence[ContextChunk], on_token=None) -> Generation:
        text = f"{context[0].text.splitlines()[-1]} [{context[0].n}]"
        if on_token:
            on_token(text)
        return Generation(text, abstained=False, cited=[context[0].n], model_id=self.model_id)


def test_a_supplied_generator_answers_and_the_rest_is_built_around_it(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.md", "# Parking\n\nVisitors park in the north car park.\n")
    kb = KnowledgeBase(tmp_path / "kb", generator=QuotingGenerator())
    kb.ingest([tmp_path / "d"])
    ans = kb.ask("where do visitors park?")
    assert ans.model_id == "test:quoting" and ans.answer == "Visitors park in the north car park. [1]"
    assert ans.citations[0].source.endswith("a.md") and ans.prompt is None


def test_a_part_that_misses_its_protocol_is_refused_at_once(tmp_path: Path) -> None:
    class HalfGenerator:
        name, model_id = "half", "half"

        def generate(self, question, context, on_token=None):  # no count_tokens, context_budget, prompt
            raise AssertionError("never called")

    with pytest.raises(ConfigError, match="generator: HalfGenerator does not implement the Generator protocol"):
        KnowledgeBase(tmp_path / "kb", generator=HalfGenerator())
    with pytest.raises(ConfigError, match="unknown component 'retreiver'"):
        KnowledgeBase(tmp_path / "kb", retreiver=object())


def test_parts_are_built_on_first_use_only(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb")
    assert kb.versions() == [] and kb.documents() == []
    assert not kb.components.built("embedder")  # listing versions never loads the model
    _ = kb.embedder.dimension
    assert kb.components.built("embedder")
