"""Native batches that must not run: provider parameters refused at create (4xx naming the field, no batch, nothing
sent to the provider), input lines the model cannot take (the batch fails naming the lines, before any provider
job), and a cancel that arrives before the provider has a job (cancelled, and no job is ever created)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import openai
import pytest
from botocore.exceptions import ClientError

from tests.conftest import BUCKET
from tests.support.native_batches import (
    CHAT,
    CLAUDE,
    EMBEDDINGS,
    FINISHED,
    GEMINI,
    ROLE,
    TITAN,
    NativeStack,
    chat_line,
    embedding_line,
    extra,
    native,
    upload,
    wait_for,
)

__all__ = ["native"]

S3_BUCKET = "x-portkey-aws-s3-bucket"
GCS_BUCKET = "x-portkey-vertex-storage-bucket-name"


def batch_ids(client: openai.OpenAI) -> list[str]:
    return [batch.id for batch in client.batches.list(limit=100)]


def test_bad_provider_parameters_are_refused_and_nothing_is_created(native: NativeStack) -> None:
    client = native.client()
    chat = upload(client, [chat_line("r-1", "hi")])
    embeddings = upload(client, [embedding_line("e-1", "hi")])
    bedrock = {"x-portkey-virtual-key": native.keys["bedrock"]}
    staged = {**bedrock, S3_BUCKET: BUCKET}
    vertex = {"x-portkey-virtual-key": native.keys["vertex"]}
    cases: list[tuple[str, str, dict[str, Any], str, str]] = [
        (chat, CHAT, {"portkey_options": staged, "model": CLAUDE}, "role_arn", "missing_role_arn"),
        (chat, CHAT, {"portkey_options": staged, "model": CLAUDE, "role_arn": "admin"}, "role_arn", "invalid_role_arn"),
        (chat, CHAT, {"portkey_options": staged, "role_arn": ROLE}, "model", "missing_model"),
        (
            chat,
            CHAT,
            {"portkey_options": staged, "role_arn": ROLE, "model": "cohere.command-r-v1:0"},
            "model",
            "unsupported_model",
        ),
        (chat, CHAT, {"portkey_options": staged, "role_arn": ROLE, "model": TITAN}, "endpoint", "unsupported_endpoint"),
        (chat, CHAT, {"portkey_options": bedrock, "role_arn": ROLE, "model": CLAUDE}, S3_BUCKET, "missing_s3_bucket"),
        (chat, CHAT, {"portkey_options": {**vertex, GCS_BUCKET: BUCKET}}, "model", "missing_model"),
        (chat, CHAT, {"portkey_options": vertex, "model": GEMINI}, GCS_BUCKET, "missing_gcs_bucket"),
        (
            embeddings,
            EMBEDDINGS,
            {"portkey_options": {**vertex, GCS_BUCKET: BUCKET}, "model": "text-embedding-004"},
            "endpoint",
            "unsupported_endpoint",
        ),
    ]
    batches_before = batch_ids(client)
    requests_before = {name: native.requests_to(name) for name in ("bedrock", "vertex")}
    for source, endpoint, body, param, code in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.batches.create(
                input_file_id=source,
                endpoint=endpoint,  # type: ignore[arg-type]
                completion_window="24h",
                extra_body=body,
            )
        error = caught.value.response.json()["error"]
        assert (error["param"], error["code"]) == (param, code), (body, error)
        assert error["message"]
    assert batch_ids(client) == batches_before, "no batch was stored"
    assert {name: native.requests_to(name) for name in ("bedrock", "vertex")} == requests_before, "nothing sent"


def test_lines_the_model_cannot_take_fail_the_batch_naming_them_before_any_provider_job(native: NativeStack) -> None:
    client = native.client()
    picture = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    lines = [chat_line("ok-1", "hi"), chat_line("two-choices", "hi", n=2), chat_line("ok-3", "hi")]
    lines.append(
        {**chat_line("picture", "x"), "body": {"model": "m", "messages": [{"role": "user", "content": [picture]}]}}
    )
    requests_before = native.requests_to("bedrock")
    routing = {"x-portkey-virtual-key": native.keys["bedrock"], S3_BUCKET: BUCKET}
    batch = client.batches.create(
        input_file_id=upload(client, lines),
        endpoint=CHAT,
        completion_window="24h",
        extra_body={"portkey_options": routing, "role_arn": ROLE, "model": CLAUDE},
    )
    done, _ = wait_for(client, batch.id, *FINISHED)
    assert done.status == "failed" and done.errors and done.errors.data
    assert [(error.line, error.param) for error in done.errors.data] == [
        (2, "n"),
        (4, "messages[0].content[0].image_url"),
    ]
    assert native.requests_to("bedrock") == requests_before, "no job was created"
    s3 = boto3.client("s3", endpoint_url=native.portico.settings.batch.s3_endpoint_url, region_name="us-east-1")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=f"portico/batches/{batch.id}/input/{batch.id}.jsonl")


def test_cancel_before_the_provider_has_a_job_ends_cancelled_and_never_creates_one(native: NativeStack) -> None:
    client = native.client("openai-down")
    batch = client.batches.create(
        input_file_id=upload(client, [chat_line("d-1", "hi")]), endpoint=CHAT, completion_window="24h"
    )
    # The submit was tried and refused (503): the batch waits for the next poll, with no provider job.
    deadline = time.monotonic() + 30
    while native.requests_to("openai-down") == 0:
        assert time.monotonic() < deadline, "the submit never reached the provider"
        time.sleep(0.05)
    assert client.batches.retrieve(batch.id).status == "validating"

    assert client.batches.cancel(batch.id).status == "cancelling"
    done, _ = wait_for(client, batch.id, *FINISHED)
    assert done.status == "cancelled" and extra(done, "provider_status") is None
    stats = native.stats("openai-down")
    assert stats["injected_failures"] == stats["total"], "every request was refused: no provider job exists"
