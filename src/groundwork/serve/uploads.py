"""Reading an upload request: multipart files, or JSON records (written as one JSONL file).

Returns the files (name -> bytes), the allowed groups, and the records options; every problem is a
422 ``ApiError`` that names the field."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request

from groundwork.serve import schemas as S
from groundwork.serve.errors import ApiError
from groundwork.serve.limits import BodyTooLarge
from groundwork.types import ACL_NAME, ACL_NAME_RULE, Access

MAX_NAME_BYTES = 255  # what file systems and the web page can show

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "allowed_groups": {
                            "type": "string",
                            "description": "comma-separated groups that may see the documents",
                        },
                    },
                }
            },
            "application/json": {
                "schema": S.RecordsUpload.model_json_schema(ref_template="#/components/schemas/{model}")
            },
        },
    }
}


@dataclass
class Upload:
    files: dict[str, bytes] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


async def read_upload(request: Request) -> Upload:
    """The upload in ``request`` (multipart/form-data or application/json). Raises ApiError: 413 when
    the body passes ``serve.max_upload_mb`` while it is read (see ``BodyLimit``), 422 for a bad name."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        upload = await _records(request)
    elif ctype.startswith("multipart/form-data"):
        upload = await _multipart(request)
    else:
        message = "send multipart/form-data files or application/json records"
        raise ApiError(415 if ctype else 422, "unsupported_media_type", message)
    bad = [g for g in upload.groups if not ACL_NAME.match(g)]
    if bad:
        raise ApiError(422, "invalid_request", f"allowed_groups: invalid group name {bad[0]!r}: {ACL_NAME_RULE}")
    return upload


def check_groups(groups: list[str], access: Access) -> None:
    """A key may restrict a document only to groups it belongs to (a write touches only what the
    writer can read); a key without groups writes documents without groups. Raises ApiError 403."""
    if access.everything:
        return
    foreign = sorted(set(groups) - set(access.groups))
    if foreign:
        raise ApiError(
            403,
            "forbidden",
            f"allowed_groups: this key is not in group {foreign[0]!r}; it can only restrict "
            "documents to its own groups",
        )


def file_name(raw: str | None) -> str:
    """An uploaded file's name: its last path component, checked. Raises ApiError 422 naming it."""
    name = Path((raw or "").replace("\\", "/")).name
    if not name or name.startswith("."):
        raise ApiError(422, "invalid_request", "files: every file needs a name that does not start with '.'")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise ApiError(422, "invalid_request", f"files: the name {name!r} holds control characters; rename the file")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ApiError(422, "invalid_request", f"files: a name is longer than {MAX_NAME_BYTES} bytes; rename the file")
    return name


async def _records(request: Request) -> Upload:
    try:
        body = S.RecordsUpload.model_validate(json.loads(await request.body()))
    except (ValueError, TypeError) as exc:
        raise ApiError(422, "invalid_request", f"records upload: {exc}") from None
    data = "".join(json.dumps(r) + "\n" for r in body.records).encode()
    options = {"text_field": body.text_field, "id_field": body.id_field, "metadata_fields": body.metadata_fields}
    return Upload({f"{body.name}.jsonl": data}, body.allowed_groups, options)


async def _multipart(request: Request) -> Upload:
    try:
        form = await request.form()
    except BodyTooLarge:
        raise
    except Exception as exc:  # malformed multipart; starlette's parser groups errors in a TaskGroup
        too_large = exc.subgroup(BodyTooLarge) if isinstance(exc, BaseExceptionGroup) else None
        if too_large is not None:
            raise too_large.exceptions[0] from None
        raise ApiError(422, "invalid_request", "could not read the multipart body; send multipart/form-data") from None
    upload = Upload(groups=[g.strip() for g in str(form.get("allowed_groups") or "").split(",") if g.strip()])
    for item in form.getlist("files"):
        if not hasattr(item, "read"):
            raise ApiError(422, "invalid_request", "files: each part must be a file")
        name = file_name(item.filename)
        if name in upload.files:
            raise ApiError(422, "invalid_request", f"files: {name!r} appears twice in this upload; send it once")
        upload.files[name] = await item.read()
    if not upload.files:
        raise ApiError(422, "invalid_request", "files: upload at least one file")
    return upload
