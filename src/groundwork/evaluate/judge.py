"""LLM-as-judge: correctness and relevance of an answer on a 1-5 rubric, with a one-sentence reason.

The configured chat model grades each answer against the reference (prompt template ``judge``, in the
style of Zheng et al. 2023, "Judging LLM-as-a-judge with MT-Bench and Chatbot Arena"). The reply must be
a JSON object with integer scores 1-5; a malformed reply is retried (``retries`` times) and then counted
as a judge failure. Failures are reported as a count and never enter the means (no NaN).
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from groundwork.errors import GeneratorError
from groundwork.llm.chat import ChatModel
from groundwork.llm.prompts import load_prompt

_OBJECT = re.compile(r"\{.*\}", re.S)


class Judgement(BaseModel):
    correctness: int = Field(ge=1, le=5)
    relevance: int = Field(ge=1, le=5)
    reason: str = Field(min_length=1)


@dataclass
class JudgeResult:
    judgement: Judgement | None  # None: the judge failed (malformed replies or backend errors)
    attempts: int


class LLMJudge:
    def __init__(self, chat: ChatModel, retries: int = 2) -> None:
        self.chat, self.retries = chat, retries
        self.prompt = load_prompt("judge")

    def judge(self, question: str, reference: str, answer: str) -> JudgeResult:
        messages = self.prompt.render(question=question, reference=reference or "(none given)", answer=answer)
        for attempt in range(1, self.retries + 2):
            try:
                reply = self.chat.complete(messages, max_tokens=200)
            except GeneratorError:
                continue
            m = _OBJECT.search(reply)
            if not m:
                continue
            try:
                return JudgeResult(Judgement.model_validate(json.loads(m.group())), attempt)
            except (json.JSONDecodeError, ValidationError):
                continue
        return JudgeResult(None, self.retries + 1)


def summarise(results: list[JudgeResult]) -> dict[str, Any]:
    """Means over the judged answers; ``judge_failures`` counts the answers the judge could not grade."""
    ok = [r.judgement for r in results if r.judgement is not None]
    return {
        "judge_correctness": statistics.fmean(j.correctness for j in ok) if ok else None,
        "judge_relevance": statistics.fmean(j.relevance for j in ok) if ok else None,
        "judge_failures": len(results) - len(ok),
        "judge_retries": sum(r.attempts - 1 for r in results),
    }
