"""Provider-native batches (`completion_window: "24h"`) through the official `openai` SDK, run by the providers' own
batch APIs (the simulators) and brought back as Portico files: OpenAI's batches, Bedrock's model invocation jobs
on moto's S3, Vertex's batch prediction jobs on the GCS emulator. Each input custom_id comes back exactly once,
failures land in the error file, request_counts match the files, and the provider's raw state stays visible."""

from __future__ import annotations

import json
from typing import Any

import boto3
import httpx
import pytest

from tests.conftest import BUCKET
from tests.support.native_batches import (
    CHAT,
    CLAUDE,
    EMBEDDINGS,
    FINISHED,
    GEMINI,
    ROLE,
    NativeStack,
    chat_line,
    counts,
    embedding_line,
    extra,
    native,
    read_jsonl,
    upload,
    wait_for,
)

__all__ = ["native"]

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def split(client: Any, batch: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The output and error lines by custom_id, checking no custom_id appears twice across both files."""
    outputs, errors = read_jsonl(client, batch.output_file_id), read_jsonl(client, batch.error_file_id)
    ids = [line["custom_id"] for line in outputs + errors]
    assert len(ids) == len(set(ids)), f"a custom_id came back twice: {ids}"
    tally = counts(batch)
    assert (tally.completed, tally.failed) == (len(outputs), len(errors)), "request_counts match the files"
    return {line["custom_id"]: line for line in outputs}, {line["custom_id"]: line for line in errors}


def test_openai_batch_runs_on_openai_and_both_files_come_back(native: NativeStack) -> None:
    client = native.client("openai")
    ids = ["oa-1", "oa-2-fail", "oa-3", "oa-4"]
    source = upload(client, [chat_line(i, f"Say hello to {i}") for i in ids])
    batch = client.batches.create(
        input_file_id=source, endpoint=CHAT, completion_window="24h", metadata={"team": "native"}
    )
    assert (batch.status, extra(batch, "mode"), extra(batch, "provider")) == ("validating", "native", "openai")

    done, _ = wait_for(client, batch.id, *FINISHED)
    assert done.status == "completed", done.errors
    assert extra(done, "provider_status") == "completed"
    assert done.in_progress_at and done.finalizing_at and done.completed_at
    outputs, errors = split(client, done)
    assert sorted([*outputs, *errors]) == sorted(ids)
    assert set(errors) == {"oa-2-fail"} and errors["oa-2-fail"]["response"]["status_code"] == 400
    assert all(line["response"]["status_code"] == 200 for line in outputs.values())
    assert outputs["oa-1"]["response"]["body"]["object"] == "chat.completion"
    assert counts(done).total == 4
    assert client.files.retrieve(str(done.output_file_id)).purpose == "batch_output"

    # One provider batch, and it carries this batch's id (how a re-run submit would find it again).
    listed = httpx.get(f"{native.simulators['openai']}/v1/batches?limit=100", headers={"Authorization": "Bearer x"})
    mine = [b for b in listed.json()["data"] if (b["metadata"] or {}).get("portico_batch_id") == batch.id]
    assert len(mine) == 1 and mine[0]["metadata"]["team"] == "native"


def test_bedrock_batch_runs_as_a_model_invocation_job_and_surfaces_partial_success(native: NativeStack) -> None:
    client = native.client()
    ids = ["br-1", "br-2-fail", "br-3", "br-4"]
    source = upload(client, [chat_line(i, f"Weather for {i}?", system="Be brief.") for i in ids])
    routing = {"x-portkey-virtual-key": native.keys["bedrock"], "x-portkey-aws-s3-bucket": BUCKET}
    batch = client.batches.create(
        input_file_id=source,
        endpoint=CHAT,
        completion_window="24h",
        extra_body={"portkey_options": routing, "role_arn": ROLE, "model": CLAUDE},
    )
    assert (extra(batch, "mode"), extra(batch, "provider")) == ("native", "bedrock")

    done, _ = wait_for(client, batch.id, *FINISHED)
    assert done.status == "completed", done.errors
    # The provider's own word for "some records failed" stays visible beside OpenAI's status.
    assert extra(done, "provider_status") == "PartiallyCompleted"
    outputs, errors = split(client, done)
    assert sorted([*outputs, *errors]) == sorted(ids)
    assert set(errors) == {"br-2-fail"} and errors["br-2-fail"]["response"]["status_code"] == 500
    assert (counts(done).total, counts(done).failed) == (4, 1)
    answer = outputs["br-1"]["response"]["body"]
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] > 0

    # What Bedrock read: Anthropic Messages bodies, one record per custom_id, staged under the batch's own key.
    s3 = boto3.client("s3", endpoint_url=native.portico.settings.batch.s3_endpoint_url, region_name="us-east-1")
    key = f"portico/batches/{batch.id}/input/{batch.id}.jsonl"
    staged = [line for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines() if line]
    assert len(staged) == 4 and '"anthropic_version":"bedrock-2023-05-31"' in staged[0]


def test_bedrock_embeddings_batch_routed_by_header_uses_the_key_settings(native: NativeStack) -> None:
    client = native.client("bedrock-staged")
    ids = [f"emb-{n}" for n in range(3)]
    source = upload(client, [embedding_line(i, f"text number {i}") for i in ids])
    batch = client.batches.create(
        input_file_id=source,
        endpoint=EMBEDDINGS,
        completion_window="24h",
        extra_body={"provider_options": {"model": "amazon.titan-embed-text-v2:0"}},
    )
    done, _ = wait_for(client, batch.id, *FINISHED)
    assert (done.status, extra(done, "provider_status")) == ("completed", "Completed"), done.errors
    outputs, errors = split(client, done)
    assert sorted(outputs) == ids and not errors and done.error_file_id is None
    vector = outputs["emb-0"]["response"]["body"]["data"][0]["embedding"]
    assert isinstance(vector, list) and len(vector) > 0


def test_nova_batch_carries_tools_both_ways(native: NativeStack) -> None:
    client = native.client("bedrock-staged")
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}
    lines = [chat_line("nv-text", "Hello Nova", system="Be brief."), chat_line("nv-tool", "Weather?", tools=[tool])]
    batch = client.batches.create(
        input_file_id=upload(client, lines),
        endpoint=CHAT,
        completion_window="24h",
        extra_body={"model": "us.amazon.nova-lite-v1:0"},
    )
    done, _ = wait_for(client, batch.id, *FINISHED)
    assert (done.status, extra(done, "provider_status")) == ("completed", "Completed"), done.errors
    outputs, _ = split(client, done)
    text = outputs["nv-text"]["response"]["body"]["choices"][0]
    assert text["finish_reason"] == "stop" and "Hello Nova" in text["message"]["content"]
    called = outputs["nv-tool"]["response"]["body"]["choices"][0]
    assert called["finish_reason"] == "tool_calls"
    call = called["message"]["tool_calls"][0]["function"]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "sim"}


def test_vertex_batch_runs_as_a_batch_prediction_job_keeping_custom_ids(native: NativeStack) -> None:
    client = native.client()
    texts = {"vx-1": "Hello there", "vx-2": "Please fail this one", "vx-3": "Tell me about the sea"}
    source = upload(client, [chat_line(custom_id, text) for custom_id, text in texts.items()])
    routing = {"x-portkey-virtual-key": native.keys["vertex"], "x-portkey-vertex-storage-bucket-name": BUCKET}
    batch = client.batches.create(
        input_file_id=source,
        endpoint=CHAT,
        completion_window="24h",
        extra_body={"portkey_options": routing, "model": GEMINI},
    )
    done, _ = wait_for(client, batch.id, *FINISHED)
    assert done.status == "completed", done.errors
    assert extra(done, "provider_status") == "JOB_STATE_PARTIALLY_SUCCEEDED"
    outputs, errors = split(client, done)
    assert sorted(outputs) == ["vx-1", "vx-3"] and sorted(errors) == ["vx-2"]
    assert errors["vx-2"]["response"]["status_code"] == 400
    assert "fail" in errors["vx-2"]["response"]["body"]["error"]["message"]
    answer = outputs["vx-1"]["response"]["body"]
    assert answer["object"] == "chat.completion" and answer["model"] == GEMINI
    assert answer["choices"][0]["message"]["content"]


def test_cancel_moves_through_cancelling_to_cancelled_on_the_provider(native: NativeStack) -> None:
    client = native.client("openai-slow")
    source = upload(client, [chat_line(f"c-{n}", "hello") for n in range(3)])
    batch = client.batches.create(input_file_id=source, endpoint=CHAT, completion_window="24h")
    # Submitted: the provider has the job (its raw state shows), and keeps it validating for ten minutes.
    while extra(batch, "provider_status") is None:
        batch, _ = wait_for(client, batch.id, "validating")
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at

    done, seen = wait_for(client, batch.id, *FINISHED)
    assert done.status == "cancelled" and done.cancelled_at and seen[0] == "cancelling"
    assert extra(done, "provider_status") == "cancelled"
    assert done.output_file_id is None and done.error_file_id is None
    listed = httpx.get(f"{native.simulators['openai-slow']}/v1/batches", headers={"Authorization": "Bearer x"})
    assert [b["status"] for b in listed.json()["data"]] == ["cancelled"]


# Per provider: the simulator, its create route, the key, and the create's extra body.
LOST_CREATES = {
    "openai": ("openai", "batches.create", "openai", {}),
    "bedrock": ("bedrock", "CreateModelInvocationJob", "bedrock-staged", {"provider_options": {"model": CLAUDE}}),
    "vertex": ("vertex", "batchPredictionJobs.create", None, {}),
}


@pytest.mark.parametrize("provider", sorted(LOST_CREATES))
def test_a_create_whose_answer_was_lost_is_found_not_repeated(native: NativeStack, provider: str) -> None:
    """The provider creates the job but its answer never reaches Portico (a 500 after the work): the next step
    finds that job by the batch's own mark (metadata, client token or job name, label) and adopts it. One create,
    one provider job, every line back."""
    simulator, route, key, body = LOST_CREATES[provider]
    client = native.client(key)
    ids = [f"lost-{provider}-{n}" for n in range(3)]
    if provider == "vertex":
        routing = {"x-portkey-virtual-key": native.keys["vertex"], "x-portkey-vertex-storage-bucket-name": BUCKET}
        body = {"portkey_options": routing, "model": GEMINI}
    url = native.simulators[simulator]
    httpx.post(f"{url}/_sim/fail-after", json={"route": route, "status": 500, "times": 1}).raise_for_status()
    creates_before = native.stats(simulator)["by_route"].get(route, 0)

    source = upload(client, [chat_line(i, f"Hello from {i}") for i in ids])
    batch = client.batches.create(input_file_id=source, endpoint=CHAT, completion_window="24h", extra_body=body)
    done, _ = wait_for(client, batch.id, *FINISHED)

    assert done.status == "completed", done.errors
    outputs, errors = split(client, done)
    assert sorted([*outputs, *errors]) == ids
    assert native.stats(simulator)["by_route"][route] - creates_before == 1, "the job was created once"


def test_an_input_upload_whose_answer_was_lost_is_not_sent_twice(native: NativeStack) -> None:
    """OpenAI stores the batch's input file but the answer is lost: the next step finds the file by its name (the
    batch's id) and size instead of leaving an orphan copy at the provider."""
    client = native.client("openai")
    url = native.simulators["openai"]
    httpx.post(f"{url}/_sim/fail-after", json={"route": "files.create", "times": 1}).raise_for_status()
    ids = [f"lost-upload-{n}" for n in range(3)]
    source = upload(client, [chat_line(i, f"Hello from {i}") for i in ids])
    batch = client.batches.create(input_file_id=source, endpoint=CHAT, completion_window="24h")
    done, _ = wait_for(client, batch.id, *FINISHED)

    assert done.status == "completed", done.errors
    outputs, errors = split(client, done)
    assert sorted([*outputs, *errors]) == ids
    listed = httpx.get(f"{url}/v1/files?purpose=batch", headers={"Authorization": "Bearer x"}).json()["data"]
    assert [f["filename"] for f in listed].count(f"{batch.id}.jsonl") == 1, "the input was uploaded once"
