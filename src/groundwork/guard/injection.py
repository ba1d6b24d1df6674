"""Prompt-injection detection: instruction-like text in a question or in a retrieved chunk.

A pattern list of known attack phrasings (instruction override, role reassignment, prompt exfiltration,
chat-template tokens), in the spirit of the heuristics in OWASP's LLM01 guidance. It is a screen, not a
proof: a determined attacker can paraphrase past it, which is why the second line of defence is
structural (chunks are quoted as data and the system prompt tells the model to ignore instructions in
them; a chunk can never change the system prompt).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATTERNS: dict[str, str] = {
    "override": r"\b(ignore|disregard|forget|override|bypass)\b[\w\s,'-]{0,40}\b(previous|prior|above|earlier|all|any|your|the|system)\b[\w\s,'-]{0,30}\b(instructions?|prompts?|rules|directions|guidelines|context)\b",
    "new_instructions": r"\b(new|updated|real|actual)\s+(instructions?|system prompt)\s*[:\-]",
    "role_change": r"\b(you are now|from now on,? you (are|will)|act as (an? )?(unrestricted|jailbroken|different)|pretend (to be|you are)|developer mode|DAN mode)\b",
    "exfiltration": r"\b(reveal|print|show|repeat|output|leak)\b[\w\s,'-]{0,30}\b(system prompt|hidden prompt|your (instructions|prompt|rules))\b",
    "template_tokens": r"(<\|im_start\|>|<\|im_end\|>|<\|system\|>|\[/?INST\]|<<SYS>>|^\s*###\s*(system|instruction)\s*:)",
}
_COMPILED = {name: re.compile(p, re.I | re.M) for name, p in _PATTERNS.items()}


@dataclass(frozen=True)
class InjectionMatch:
    pattern: str  # which family of _PATTERNS matched
    start: int
    end: int
    text: str


def find_injection(text: str) -> list[InjectionMatch]:
    """Instruction-like spans in ``text``, in order."""
    out = [
        InjectionMatch(name, m.start(), m.end(), m.group()) for name, rx in _COMPILED.items() for m in rx.finditer(text)
    ]
    return sorted(out, key=lambda m: m.start)


def mask_injection(text: str, matches: list[InjectionMatch]) -> str:
    for m in sorted(matches, key=lambda m: m.start, reverse=True):
        text = text[: m.start] + "[instruction-like text removed]" + text[m.end :]
    return text
