"""Follow-up questions: rewrite the last user turn into a stand-alone question before retrieval.

- With a chat model: the ``rewrite`` prompt template over the conversation.
- Without one (heuristic): a turn that looks like a follow-up - it has a pronoun or demonstrative
  (it, they, this, that, those, he, she, its, their, there), starts with "and"/"what about"/"how about",
  or has fewer than five words - gets the previous user question appended, so both retrievers see the
  entities it refers to. A self-contained turn is left unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from groundwork.errors import GeneratorError
from groundwork.llm.chat import ChatModel, Message
from groundwork.llm.prompts import load_prompt

_FOLLOW_UP = re.compile(
    r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her|there|the same)\b|^\s*(and|also|what about|how about)\b",
    re.I,
)


def is_follow_up(question: str) -> bool:
    return bool(_FOLLOW_UP.search(question)) or len(question.split()) < 5


def rewrite_question(question: str, history: Sequence[Message], chat: ChatModel | None = None) -> str:
    """A stand-alone version of ``question`` given earlier ``history`` turns (oldest first)."""
    earlier = [m for m in history if m.get("role") in ("user", "assistant") and m.get("content")]
    previous_user = [m["content"] for m in earlier if m["role"] == "user"]
    if not previous_user:
        return question
    if chat is not None:
        transcript = "\n".join(f"{m['role']}: {m['content'][:1000]}" for m in earlier[-6:])
        try:
            out = chat.complete(
                load_prompt("rewrite").render(history=transcript, question=question), max_tokens=120
            ).strip()
            if out:
                return out.splitlines()[0].strip()
        except GeneratorError:
            pass
    if not is_follow_up(question):
        return question
    return f"{question} ({previous_user[-1]})"
