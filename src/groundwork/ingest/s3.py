"""Sources in S3 and S3-compatible object stores (MinIO, Ceph, moto): ``s3://bucket/prefix``.

Objects under the prefix are listed with boto3 (credentials from the standard AWS chain; endpoint from
``ingest.s3_endpoint_url`` or ``AWS_ENDPOINT_URL``). Each object's ETag is its fingerprint: an object
whose ETag (and chunking settings) match the index is not downloaded again. A prefix is synced like a
folder: documents whose objects were deleted are deleted from the index. Hidden keys (a path part
starting with '.') are skipped, as for folders.
"""

from __future__ import annotations

from functools import partial

from groundwork.config import IngestSettings
from groundwork.errors import LoaderError
from groundwork.ingest.loaders import SourceName, check_size
from groundwork.ingest.sources import SourceItem
from groundwork.objectstore import parse_s3_uri, s3_client


def _read(client, bucket: str, key: str, size: int, etag: str, max_bytes: int) -> bytes:
    uri = f"s3://{bucket}/{key}"
    check_size(uri, SourceName(uri).suffix, size, max_bytes)
    try:
        # IfMatch: the bytes are those of the listed version, so the recorded ETag describes them.
        return client.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"].read()
    except client.exceptions.NoSuchKey:
        raise LoaderError(uri, "the object was deleted while ingesting; run ingest again") from None
    except Exception as exc:  # botocore ClientError: changed since listing (412), access denied, ...
        raise LoaderError(uri, f"cannot download the object ({exc})") from None


def list_s3(uri: str, settings: IngestSettings):
    """(items, sync root) for every object under ``uri``. A URI naming one object gives that object
    and no root (nothing is deleted); a prefix gives its objects and the prefix as the root.

    Raises:
        ConfigError: not an s3:// URI. LoaderError: the bucket cannot be listed (names it and why).
    """
    bucket, prefix = parse_s3_uri(uri)
    client = s3_client(settings.s3_endpoint_url)
    items = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        objects = [o for page in pages for o in page.get("Contents", [])]
    except Exception as exc:  # botocore errors: no such bucket, access denied, unreachable endpoint
        raise LoaderError(
            uri, f"cannot list the bucket ({exc}); check the URI, credentials and ingest.s3_endpoint_url"
        ) from None
    exact = [o for o in objects if o["Key"] == prefix]
    if exact and not prefix.endswith("/"):
        objects, root = exact, None
    else:
        root = f"s3://{bucket}/{prefix}" if not prefix or prefix.endswith("/") else f"s3://{bucket}/{prefix}/"
        base = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        objects = [o for o in objects if o["Key"].startswith(base) and not o["Key"].endswith("/")]
        objects = [o for o in objects if not any(p.startswith(".") for p in o["Key"][len(base) :].split("/"))]
    for o in sorted(objects, key=lambda o: o["Key"]):
        key, etag = o["Key"], o["ETag"]
        items.append(
            SourceItem(
                SourceName(f"s3://{bucket}/{key}"),
                partial(_read, client, bucket, key, o["Size"], etag),
                fingerprint=f"etag:{etag.strip(chr(34))}",
            )
        )
    return items, root
