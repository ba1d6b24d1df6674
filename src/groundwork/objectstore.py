"""S3 and S3-compatible object stores (MinIO, Ceph, moto): URI parsing and a boto3 client.

Shared by ingestion (``s3://bucket/prefix`` sources) and the index (LanceDB tables and ``meta.json``
in a bucket). A leaf module: boto3 is imported only when a client is made.
"""

from __future__ import annotations

from groundwork.errors import ConfigError


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix). Raises ConfigError for anything else."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ConfigError(f"{uri!r} is not an S3 URI; write s3://bucket/prefix")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix


def s3_client(endpoint_url: str | None = None):
    """A boto3 S3 client: credentials from the standard AWS chain; ``endpoint_url`` for MinIO, Ceph, moto."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or None)
