"""Reading an upload request: multipart files, or JSON records (written as one JSONL file).

Returns the files (name -> bytes), the allowed groups, and the records options; every problem is a
422 ``ApiError`` that names the field."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request

from groundwork.serve import schemas as S
from groundwork.serve.errors import ApiError
from groundwork.types import ACL_NAME

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
    """The upload in ``request`` (multipart/form-data or application/json). Raises ApiError."""
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
        raise ApiError(422, "invalid_request", f"allowed_groups: invalid group name {bad[0]!r}")
    return upload


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
    except Exception as exc:  # malformed multipart
        raise ApiError(422, "invalid_request", f"could not read the multipart body: {exc}") from None
    upload = Upload(groups=[g.strip() for g in str(form.get("allowed_groups") or "").split(",") if g.strip()])
    for item in form.getlist("files"):
        if not hasattr(item, "read"):
            raise ApiError(422, "invalid_request", "files: each part must be a file")
        name = Path(item.filename or "").name
        if not name or name.startswith("."):
            raise ApiError(422, "invalid_request", "files: every file needs a name")
        upload.files[name] = await item.read()
    if not upload.files:
        raise ApiError(422, "invalid_request", "files: upload at least one file")
    return upload
