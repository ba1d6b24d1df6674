"""S3 sources against moto's standalone server on loopback (a real HTTP S3 endpoint): listing, ETag
change detection without re-downloading, updates and deletions synced like a folder."""

from __future__ import annotations

import boto3
import pytest

import groundwork.ingest.s3 as s3mod
from groundwork.config import IngestSettings
from groundwork.errors import LoaderError
from groundwork.ingest.s3 import list_s3


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    from groundwork.index.pg_local import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    import uuid

    bucket = f"b-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


def test_prefix_ingest_syncs_changes_and_deletions(
    s3, s3_endpoint: str, make_kb, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, bucket = s3
    put = lambda key, text: client.put_object(Bucket=bucket, Key=key, Body=text.encode())  # noqa: E731
    put("docs/pumps.md", "# Pumps\n\nThe coolant pump pressure is checked every Monday.\n")
    put("docs/valves.md", "# Valves\n\nRelief valves are replaced every two years.\n")
    put(
        "docs/sub/records.jsonl",
        '{"id": "r1", "text": "Record one is about forklifts."}\n{"id": "r2", "text": "Record two is about ladders."}\n',
    )
    put("docs/.hidden/secret.md", "# Hidden\n\nnever indexed\n")
    put("other/outside.md", "# Outside\n\nnot under the prefix\n")
    kb = make_kb(**{"ingest.s3_endpoint_url": s3_endpoint})

    r1 = kb.ingest([f"s3://{bucket}/docs"])
    assert (r1.added, r1.failed) == (4, []), r1.failed
    sources = {d.source for d in kb.documents()}
    assert sources == {
        f"s3://{bucket}/docs/pumps.md",
        f"s3://{bucket}/docs/valves.md",
        f"s3://{bucket}/docs/sub/records.jsonl",
    }
    assert kb.search("when are relief valves replaced", top_k=1)[0].chunk.doc_id == f"s3://{bucket}/docs/valves.md"

    downloads: list[str] = []
    real_read = s3mod._read
    monkeypatch.setattr(
        s3mod, "_read", lambda client, b, key, *a: downloads.append(key) or real_read(client, b, key, *a)
    )
    r2 = kb.ingest([f"s3://{bucket}/docs/"])
    assert (r2.added, r2.updated, r2.deleted, r2.unchanged) == (0, 0, 0, 4)
    assert downloads == [
        "docs/sub/records.jsonl"
    ]  # unchanged files are recognised by ETag; records are compared one by one

    put("docs/pumps.md", "# Pumps\n\nThe coolant pump pressure is checked every Friday.\n")
    client.delete_object(Bucket=bucket, Key="docs/valves.md")
    r3 = kb.ingest([f"s3://{bucket}/docs"])
    assert (r3.updated, r3.deleted, r3.unchanged) == (1, 1, 2)
    assert "Friday" in kb.search("pump pressure check", top_k=1)[0].chunk.text
    assert f"s3://{bucket}/docs/valves.md" not in {d.doc_id for d in kb.documents()}


def test_single_object_and_clear_errors(s3, s3_endpoint: str, make_kb) -> None:
    client, bucket = s3
    client.put_object(Bucket=bucket, Key="one.txt", Body=b"A single object about safety shoes.")
    client.put_object(Bucket=bucket, Key="big.txt", Body=b"x" * 2_000_000)
    kb = make_kb(**{"ingest.s3_endpoint_url": s3_endpoint, "ingest.max_file_mb": 1})
    r = kb.ingest([f"s3://{bucket}/one.txt", f"s3://{bucket}/big.txt"])
    assert r.added == 1 and r.failed[0].path == f"s3://{bucket}/big.txt" and "ingest.max_file_mb" in r.failed[0].reason
    with pytest.raises(LoaderError, match="cannot list the bucket"):
        list_s3("s3://no-such-bucket-here/x", IngestSettings(s3_endpoint_url=s3_endpoint))
    r2 = kb.ingest(["s3://no-such-bucket-here/docs/", f"s3://{bucket}/one.txt"])
    assert r2.unchanged == 1 and "cannot list the bucket" in r2.failed[0].reason and kb.count_chunks() == 1


def test_knowledge_base_in_a_bucket_through_the_cli(s3, s3_endpoint: str, tmp_path) -> None:
    """`--kb s3://bucket/path`: LanceDB tables and meta.json in the bucket; ingest, sync and search."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    client, bucket = s3
    gw = str(Path(sys.executable).parent / "groundwork")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pumps.md").write_text("# Pumps\n\nThe coolant pump pressure is checked every Monday.\n")
    (docs / "valves.md").write_text("# Valves\n\nRelief valves are replaced every two years.\n")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "GROUNDWORK_INDEX__STORAGE_OPTIONS": json.dumps(
            {"aws_endpoint": s3_endpoint, "allow_http": "true", "aws_region": "us-east-1"}
        ),
    }
    kb = f"s3://{bucket}/teams/ops"
    run = lambda *a: subprocess.run([gw, "--kb", kb, *a], capture_output=True, text=True, env=env, cwd=tmp_path)  # noqa: E731
    out = run("ingest", str(docs), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["added"] == 2
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert "teams/ops/meta.json" in keys and any(k.startswith("teams/ops/lancedb/chunks.lance/") for k in keys)
    (docs / "valves.md").unlink()
    out = run("ingest", str(docs), "--json")
    assert json.loads(out.stdout)["deleted"] == 1
    out = run("search", "coolant pump pressure", "--json")
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert len(hits) == 1 and hits[0]["source"].endswith("pumps.md")
    assert not (tmp_path / ".groundwork" / "lancedb").exists()  # nothing of the index on local disk
