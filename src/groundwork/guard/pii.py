"""PII detection and masking: emails, phone numbers, payment cards, IBANs, US SSNs, IP addresses.

Validation is done by well-kept libraries wherever one exists offline: phone numbers by Google's
libphonenumber port (``phonenumbers``, leniency VALID: the number must be a valid number of its region),
card numbers by the Luhn checksum and IBANs by their ISO 13616 mod-97 checksum and country format
(``python-stdnum``), US SSNs by the SSA's area/group/serial rules (``stdnum.us.ssn``), IP addresses by
the standard library's ``ipaddress``. Candidates come from deliberately loose patterns; a candidate that
fails its checksum is left alone (``4111 1111 1111 1112`` is not a card number).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.us import ssn as std_ssn

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")

KINDS = ("EMAIL", "CARD", "IBAN", "SSN", "IP", "PHONE")  # overlap priority, highest first


@dataclass(frozen=True)
class PIIMatch:
    kind: str  # one of KINDS
    start: int
    end: int
    text: str


def _cards(text: str) -> list[PIIMatch]:
    out = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits) and len(set(digits)) > 1:
            out.append(PIIMatch("CARD", m.start(), m.end(), m.group()))
    return out


def _ibans(text: str) -> list[PIIMatch]:
    return [
        PIIMatch("IBAN", m.start(), m.end(), m.group()) for m in _IBAN.finditer(text) if std_iban.is_valid(m.group())
    ]


def _ssns(text: str) -> list[PIIMatch]:
    return [PIIMatch("SSN", m.start(), m.end(), m.group()) for m in _SSN.finditer(text) if std_ssn.is_valid(m.group())]


def _ips(text: str) -> list[PIIMatch]:
    out = []
    for pattern in (_IPV4, _IPV6):
        for m in pattern.finditer(text):
            try:
                ip = ipaddress.ip_address(m.group())
            except ValueError:
                continue
            if ip.is_loopback or ip.is_unspecified:  # 127.0.0.1, ::1, 0.0.0.0 identify no one
                continue
            out.append(PIIMatch("IP", m.start(), m.end(), m.group()))
    return out


def _phones(text: str, region: str) -> list[PIIMatch]:
    matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
    return [PIIMatch("PHONE", m.start, m.end, m.raw_string) for m in matcher]


def find_pii(text: str, region: str = "US") -> list[PIIMatch]:
    """Every PII span in ``text``, non-overlapping, in order. ``region`` is the default country
    (ISO 3166 alpha-2) for phone numbers written without a ``+`` country code."""
    found = [PIIMatch("EMAIL", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text)]
    found += _cards(text) + _ibans(text) + _ssns(text) + _ips(text) + _phones(text, region)
    found.sort(key=lambda m: (KINDS.index(m.kind), m.start))
    kept: list[PIIMatch] = []
    for m in found:  # higher-priority kinds claim their span first
        if all(m.end <= k.start or m.start >= k.end for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda m: m.start)


def mask_pii(text: str, matches: list[PIIMatch] | None = None, region: str = "US") -> str:
    """``text`` with each PII span replaced by ``[KIND]``, e.g. ``[EMAIL]``, ``[CARD]``."""
    matches = find_pii(text, region) if matches is None else matches
    for m in sorted(matches, key=lambda m: m.start, reverse=True):
        text = text[: m.start] + f"[{m.kind}]" + text[m.end :]
    return text


def score_cases(cases: list[dict]) -> dict[str, dict[str, float]]:
    """Precision and recall of ``find_pii`` on labelled cases (``{"text", "pii": [{"kind", "value"}]}``),
    per kind and over ``"all"``: ``{kind: {tp, fp, fn, precision, recall}}``."""
    per: dict[str, list[int]] = {}
    for case in cases:
        gold = {(p["kind"], p["value"]) for p in case["pii"]}
        got = {(m.kind, m.text) for m in find_pii(case["text"])}
        for kind in {k for k, _ in gold | got}:
            g, f = {x for x in gold if x[0] == kind}, {x for x in got if x[0] == kind}
            row = per.setdefault(kind, [0, 0, 0])
            row[0], row[1], row[2] = row[0] + len(g & f), row[1] + len(f - g), row[2] + len(g - f)
    per["all"] = [sum(r[i] for r in per.values()) for i in range(3)]
    return {
        k: {"tp": tp, "fp": fp, "fn": fn, "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1)}
        for k, (tp, fp, fn) in per.items()
    }
