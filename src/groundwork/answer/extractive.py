"""The extractive generator: answers with verbatim sentences and table rows from the context, no LLM.

Every answer unit (answer.units: a sentence, or a table row as "Header: cell; ...") is embedded and
scored by cosine similarity to the question; with ``answer.sentence_context`` a unit is also embedded
behind its chunk's title and heading path, and scores the better of the two (a sentence under
"Remote access" answers a question about remote access without repeating the words). The question is
split into parts (retrieve.decompose's heuristic: "how many remote days, and how do I connect?"): each
part whose best unit reaches ``abstain_threshold`` gets that unit, so a two-part question gets one
supporting unit per part. A part that asks for a value (how many, a rate, a price: answer.units)
is only supported by a unit with a number of its own, not by one that repeats the question's words.
With no supported part the generator abstains. Otherwise, among the units scoring at least
max(``min_sentence_score``, best - ``relative_margin``), more are added, up to ``max_sentences``, by
Maximal Marginal Relevance (Carbonell & Goldstein 1998): argmax lambda * sim(q, s) - (1 - lambda) *
max sim(s, chosen), so the answer covers several facts rather than one fact three times. Chosen units
keep their context order and each is followed by the ``[n]`` of its chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from groundwork.answer.generator import UNLIMITED_TOKENS, Generation, TokenCallback
from groundwork.answer.units import Unit, asks_for_value, candidate_units, new_values
from groundwork.config import AnswerSettings
from groundwork.index.embedder import Embedder
from groundwork.retrieve.decompose import HeuristicDecomposer
from groundwork.types import ContextChunk

ABSTAIN_MESSAGE = "I could not find this in the indexed documents."


class ExtractiveGenerator:
    """Extractive answers with citations and abstention. See the module docstring for the method."""

    name = "extractive"

    def __init__(self, embedder: Embedder, settings: AnswerSettings | None = None) -> None:
        self.embedder = embedder
        self.settings = settings or AnswerSettings()
        self.model_id = f"extractive:{embedder.model_id}"

    @property
    def prompt(self) -> None:
        """The extractive generator renders no prompt."""
        return None

    def count_tokens(self, text: str) -> int:
        return self.embedder.count_tokens(text)

    def context_budget(self, question: str) -> int:
        """No window of its own: the budget is ``answer.context_tokens``."""
        return UNLIMITED_TOKENS

    def generate(
        self, question: str, context: Sequence[ContextChunk], on_token: TokenCallback | None = None
    ) -> Generation:
        gen = self._generate(question, context)
        gen.model_id = self.model_id
        if on_token:  # nothing is produced incrementally: the whole answer is one piece
            on_token(gen.text)
        return gen

    def _generate(self, question: str, context: Sequence[ContextChunk]) -> Generation:
        units = candidate_units(context)
        if not units:
            return Generation(ABSTAIN_MESSAGE, abstained=True, evidence_score=None)
        st = self.settings
        parts = [question, *HeuristicDecomposer().decompose(question)]
        vecs = self.embedder.embed(parts + [u.text for u in units])
        qs, s = vecs[: len(parts)], vecs[len(parts) :]
        rel = s @ qs.T  # (units, parts)
        if st.sentence_context:
            with_head = [i for i, u in enumerate(units) if u.head]
            if with_head:
                ctx = self.embedder.embed([f"{units[i].head}: {units[i].text}" for i in with_head])
                rel[with_head] = np.maximum(rel[with_head], ctx @ qs.T)
        support = [_best_support(units, rel[:, j], p) for j, p in enumerate(parts)]
        best = max(score for _, score in support)
        if not any(i is not None and score >= st.abstain_threshold for i, score in support):
            return Generation(ABSTAIN_MESSAGE, abstained=True, evidence_score=best)
        # answerable: the question's best unit, then each part's (a short part scores lower than a
        # whole question, so a part needs only min_sentence_score): one supporting unit per part
        first = list(dict.fromkeys(i for i, score in support if i is not None and score >= st.min_sentence_score))
        value = asks_for_value(question)
        rows_of = {units[i].n for i in first if units[i].table_row}  # one row answers a question about a row
        allowed = [
            i
            for i, u in enumerate(units)
            if (not value or new_values(u.text, question)) and not (u.table_row and u.n in rows_of)
        ]
        chosen = self._fill(first, rel[:, 0], s, allowed, max(st.max_sentences, len(first)), best)
        chosen.sort(key=lambda i: units[i].order)
        text = " ".join(f"{units[i].text} [{units[i].n}]" for i in chosen)
        cited = list(dict.fromkeys(units[i].n for i in chosen))
        return Generation(text, abstained=False, cited=cited, evidence_score=best)

    def _fill(
        self, chosen: list[int], rel: np.ndarray, s: np.ndarray, allowed: list[int], limit: int, best: float
    ) -> list[int]:
        """Add ``allowed`` units to ``chosen`` by MMR among those within ``relative_margin`` of ``best``."""
        st = self.settings
        chosen = list(chosen)
        floor = max(st.min_sentence_score, best - st.relative_margin)
        pool = [i for i in allowed if rel[i] >= floor and i not in chosen]
        while pool and len(chosen) < limit:
            redundancy = np.max(s[pool] @ s[chosen].T, axis=1)
            mmr = st.mmr_lambda * rel[pool] - (1 - st.mmr_lambda) * redundancy
            pick = pool.pop(int(np.argmax(mmr)))
            if float(np.max(s[chosen] @ s[pick])) <= 0.9:  # a near-repeat adds nothing
                chosen.append(pick)
        return chosen


def _best_support(units: Sequence[Unit], rel: np.ndarray, question: str) -> tuple[int | None, float]:
    """(index, score) of the unit that best answers ``question`` (for a value question: the best unit
    with a number of its own), or (None, best score) when no unit qualifies."""
    value = asks_for_value(question)
    ok = [i for i, u in enumerate(units) if not value or new_values(u.text, question)]
    if not ok:
        return None, float(rel.max())
    i = max(ok, key=lambda k: rel[k])
    return i, float(rel[i])
