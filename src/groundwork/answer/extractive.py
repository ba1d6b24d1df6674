"""The extractive generator: answers with verbatim sentences from the context, no LLM needed.

Every context sentence is embedded and scored by cosine similarity to the question. If the best score
is below ``abstain_threshold`` the generator abstains. Otherwise, among the sentences scoring at least
max(``min_sentence_score``, best - ``relative_margin``), up to ``max_sentences`` are chosen by Maximal
Marginal Relevance (Carbonell & Goldstein 1998): argmax lambda * sim(q, s) - (1 - lambda) *
max sim(s, chosen), so the answer covers several facts rather than one fact three times. Chosen
sentences keep their document order and each is followed by the ``[n]`` of its chunk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from groundwork.answer.generator import UNLIMITED_TOKENS, Generation, TokenCallback
from groundwork.config import AnswerSettings
from groundwork.index.embedder import Embedder
from groundwork.text import split_sentences
from groundwork.types import ContextChunk

ABSTAIN_MESSAGE = "I could not find this in the indexed documents."
_FENCED = re.compile(r"(```|~~~).*?(?:\1|\Z)", re.S)
_HEADING = re.compile(r"^\s*#{1,6}\s")
_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s*)")


def _clean(sentence: str) -> str:
    lines = [_MARKUP.sub("", ln).strip() for ln in sentence.splitlines()]
    return " ".join(ln for ln in lines if ln)


def candidate_sentences(context: Sequence[ContextChunk]) -> list[tuple[int, int, str]]:
    """(chunk n, sentence index, sentence) for every quotable sentence: 4+ words, outside code blocks,
    tables and headings (those are context, not answers)."""
    out = []
    for ctx in context:
        text = _FENCED.sub("\n\n", ctx.text)
        for para in re.split(r"\n\s*\n", text):
            lines = [ln for ln in para.splitlines() if not ln.lstrip().startswith("|") and not _HEADING.match(ln)]
            for sent in split_sentences("\n".join(lines)):
                clean = _clean(sent)
                if len(clean.split()) >= 4:
                    out.append((ctx.n, len(out), clean))
    return out


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
        sents = candidate_sentences(context)
        if not sents:
            return Generation(ABSTAIN_MESSAGE, abstained=True, evidence_score=None)
        vecs = self.embedder.embed([question] + [s for _, _, s in sents])
        q, s = vecs[0], vecs[1:]
        rel = s @ q
        best = float(rel.max())
        st = self.settings
        if best < st.abstain_threshold:
            return Generation(ABSTAIN_MESSAGE, abstained=True, evidence_score=best)
        chosen: list[int] = []
        floor = max(st.min_sentence_score, best - st.relative_margin)
        pool = [i for i in range(len(sents)) if rel[i] >= floor]
        while pool and len(chosen) < st.max_sentences:
            if chosen:
                redundancy = np.max(s[pool] @ s[chosen].T, axis=1)
            else:
                redundancy = np.zeros(len(pool))
            mmr = st.mmr_lambda * rel[pool] - (1 - st.mmr_lambda) * redundancy
            pick = pool[int(np.argmax(mmr))]
            if chosen and float(np.max(s[chosen] @ s[pick])) > 0.9:  # a near-repeat adds nothing
                pool.remove(pick)
                continue
            chosen.append(pick)
            pool.remove(pick)
        chosen.sort(key=lambda i: (sents[i][0], sents[i][1]))
        text = " ".join(f"{sents[i][2]} [{sents[i][0]}]" for i in chosen)
        cited = list(dict.fromkeys(sents[i][0] for i in chosen))
        return Generation(text, abstained=False, cited=cited, evidence_score=best)
