"""The Files API through the official `openai` SDK, on every stack (SQLite or PostgreSQL, local or S3 or GCS)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.support.inspect import stored_blob_keys
from tests.support.keys import WorkspaceKey, create_workspace_key
from tests.support.server import RunningPortico


def batch_lines(count: int) -> bytes:
    lines = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say {i}"}]},
        }
        for i in range(count)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


@pytest.fixture(scope="module")
def tenant(portico: RunningPortico) -> WorkspaceKey:
    return create_workspace_key(portico)


@pytest.fixture
def client(portico: RunningPortico, tenant: WorkspaceKey) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=portico.api, api_key=tenant.key, max_retries=0) as sdk:
        yield sdk


def test_upload_retrieve_download_list_delete(client: openai.OpenAI, portico: RunningPortico) -> None:
    data = batch_lines(3)
    created = client.files.create(file=("requests.jsonl", data), purpose="batch")
    assert (created.object, created.purpose, created.filename, created.bytes) == (
        "file",
        "batch",
        "requests.jsonl",
        len(data),
    )
    assert created.status == "processed"
    assert created.id.startswith("file-")

    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).content == data
    assert created.id in [f.id for f in client.files.list(purpose="batch")]
    assert created.id not in [f.id for f in client.files.list(purpose="fine-tune")]

    blobs_before = stored_blob_keys(portico.settings)
    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created.id)
    removed = blobs_before - stored_blob_keys(portico.settings)
    assert len(removed) == 1 and created.id in removed.pop(), "the file's bytes are removed with it"


def test_list_pages_newest_first(client: openai.OpenAI) -> None:
    ids = [client.files.create(file=(f"n{i}.txt", b"note %d" % i), purpose="assistants").id for i in range(5)]
    first = client.files.list(purpose="assistants", limit=2)
    assert len(first.data) == 2 and first.has_more
    walked = [f.id for f in client.files.list(purpose="assistants", limit=2)]  # the SDK follows `after`
    assert walked[:5] == list(reversed(ids))
    ascending = [f.id for f in client.files.list(purpose="assistants", limit=3, order="asc")]
    assert ascending[-5:] == ids
    page_after = client.files.list(purpose="assistants", limit=2, after=walked[1])
    assert [f.id for f in page_after.data] == walked[2:4]


def test_100_mb_round_trip_is_byte_identical(client: openai.OpenAI, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as out:
        for _ in range(100):
            chunk = os.urandom(1024 * 1024)
            digest.update(chunk)
            out.write(chunk)
    with source.open("rb") as handle:
        created = client.files.create(file=("big.bin", handle), purpose="assistants")
    assert created.bytes == 100 * 1024 * 1024

    readback = hashlib.sha256()
    with client.files.with_streaming_response.content(created.id) as response:
        for chunk in response.iter_bytes():
            readback.update(chunk)
    assert readback.hexdigest() == digest.hexdigest()
    client.files.delete(created.id)
