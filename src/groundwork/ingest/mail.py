"""E-mail messages (.eml, RFC 5322 / MIME) read with the standard library's ``email`` package
(``policy.default``).

The message is one document: its text is the Subject, From and Date lines and the body (the
text/plain part, else the text/html part through trafilatura), its title the subject, and its
metadata ``email_subject``, ``email_from`` and ``email_date``. Each attachment whose type has a loader
becomes a document of its own, loaded from the decoded bytes by that loader (never written to disk),
with the id ``<message>#attachment-<n>/<name>`` and the message's path as its source (so it is synced
and deleted with the message). Attachment names are hostile: only letters, digits and ``. _ -`` of
the last path component are kept, and only to name the document and choose its loader.

Limits: at most ``LoadLimits.max_attachments`` attachments (further ones are skipped with a warning);
each attachment's bytes are part of the message, bounded by ingest.max_file_mb, and its loader applies
every limit of its own format. An attached e-mail is not opened (no nesting). A failed attachment
fails alone: the message and the other attachments are indexed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from pathlib import Path
from typing import Any

from groundwork.errors import LoaderError
from groundwork.ingest.loading import LoadLimits, SourceName, TextBudget, describe, make_document
from groundwork.ingest.records import LoadedDocuments, RecordOptions, RecordProblem
from groundwork.types import Document, Section

AttachmentLoader = Callable[[SourceName, bytes, RecordOptions, LoadLimits], list[Document]]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str | None, n: int) -> str:
    """An attachment's name reduced to a document-name component: the last component of any path
    ("/" or "\\"), characters other than letters, digits and ``. _ -`` replaced by "_", no leading dot,
    at most 100 characters; ``attachment-<n>`` when nothing is left."""
    last = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", last).lstrip("._")[-100:]
    return cleaned or f"attachment-{n}"


def _header(msg: Any, key: str) -> str:
    try:
        return " ".join(str(msg[key] or "").split())
    except Exception:  # a malformed header is a defect of that header, not of the message
        return ""


def load_eml(
    path: Path,
    raw: bytes,
    options: RecordOptions,
    limits: LoadLimits,
    *,
    load: AttachmentLoader,
    suffixes: Container[str],
) -> list[Document]:
    """The message and its attachments as documents (see the module docstring); ``load`` reads an
    attachment (``loaders.load_file``), ``suffixes`` are the file types it reads. Raises LoaderError
    naming the file when the message cannot be parsed or has no text."""
    import email
    from email import policy

    try:
        msg = email.message_from_bytes(raw, policy=policy.default)
    except Exception as exc:
        raise LoaderError(str(path), f"not a readable e-mail message ({type(exc).__name__}: {exc})") from None
    subject, sender, date = (_header(msg, k) for k in ("subject", "from", "date"))
    body = _body(path, msg, TextBudget(path, limits.max_text_chars))
    head = "\n".join(f"{k}: {v}" for k, v in (("Subject", subject), ("From", sender), ("Date", date)) if v)
    meta = {"email_subject": subject, "email_from": sender, "email_date": date}
    warnings: list[str] = []
    attachments, problems = _attachments(path, msg, options, limits, meta, warnings, load, suffixes)
    docs = make_document(path, raw, [Section(f"{head}\n\n{body}".strip())], subject)
    for doc in docs:
        doc.metadata.update(meta)
    describe(docs, "eml", len(attachments) + len(problems), "attachments", warnings)
    return LoadedDocuments(docs + attachments, problems)


def _body(path: Path, msg: Any, budget: TextBudget) -> str:
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        text = part.get_content() if part is not None else ""
    except Exception as exc:  # an unknown charset or a broken transfer encoding
        raise LoaderError(str(path), f"the message body cannot be decoded ({type(exc).__name__}: {exc})") from None
    if part is not None and part.get_content_subtype() == "html" and text.strip():
        import trafilatura

        text = trafilatura.extract(text, include_tables=True, favor_recall=True) or ""
    return budget.take(text.strip())


def _attachments(
    path: Path,
    msg: Any,
    options: RecordOptions,
    limits: LoadLimits,
    meta: dict[str, str],
    warnings: list[str],
    load: AttachmentLoader,
    suffixes: Container[str],
) -> tuple[list[Document], list[RecordProblem]]:
    """The attachments' documents, and the attachments that failed (each fails alone)."""
    docs: list[Document] = []
    problems: list[RecordProblem] = []
    for n, part in enumerate(msg.iter_attachments(), 1):
        name = safe_name(part.get_filename(), n)
        if n > limits.max_attachments:
            warnings.append(f"attachments after the first {limits.max_attachments} skipped (ingest.max_attachments)")
            break
        uri = f"{path}#attachment-{n}/{name}"
        item = SourceName(uri)
        if item.suffix.lower() not in suffixes or item.suffix.lower() in (".eml", ".json", ".jsonl"):
            warnings.append(f"attachment {name}: type '{item.suffix or '(none)'}' not indexed")
            continue
        try:
            payload = part.get_payload(decode=True)
            if not payload:
                raise LoaderError(uri, "the attachment is empty")
            loaded = load(item, payload, options, limits)
        except LoaderError as exc:
            problems.append(RecordProblem(f"attachment-{n}/{name}", exc.reason, uri))
            continue
        except Exception as exc:  # one attachment's parser error never fails the message
            problems.append(RecordProblem(f"attachment-{n}/{name}", f"{type(exc).__name__}: {exc}", uri))
            continue
        for doc in loaded:
            doc.source = str(path)
            doc.title = doc.title if doc.title and doc.title != item.stem else name
            doc.metadata.update(meta)
            docs.append(doc)
    return docs, problems
