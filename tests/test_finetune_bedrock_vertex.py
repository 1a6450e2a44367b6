"""Fine-tuning on Bedrock (model customization jobs on moto's S3) and Vertex (tuningJobs on the GCS emulator)
through the official `openai` SDK: Portico converts the OpenAI examples, stages them, creates and follows the
provider's job to `succeeded`, synthesizes events from what it observed (no duplicates), explains the empty
checkpoint list, and the tuned model answers a chat sent through Portico with the same virtual key."""

from __future__ import annotations

import json
from typing import Any

import boto3
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests.support.finetune import (
    BUCKET,
    FINISHED,
    GEMINI,
    NOVA,
    ROLE,
    TuningStack,
    all_events,
    chat_reaches,
    extra,
    training_file,
    tuning,
    wait_for,
)

__all__ = ["tuning"]


def checkpoints_page(stack: TuningStack, virtual_key: str, job_id: str) -> Any:
    return stack.client(virtual_key).fine_tuning.jobs.checkpoints.list(job_id)


def test_bedrock_job_succeeds_and_its_custom_model_answers(tuning: TuningStack, s3_endpoint: str) -> None:
    client = tuning.client()
    source = training_file(client)
    job = client.fine_tuning.jobs.create(
        model=NOVA,
        training_file=source,
        suffix="adder",
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
        extra_body={
            "role_arn": ROLE,
            "portkey_options": {"x-portkey-virtual-key": tuning.keys["bedrock"], "x-portkey-aws-s3-bucket": BUCKET},
        },
    )
    assert job.status == "validating_files" and extra(job, "provider") == "bedrock"

    done, seen = wait_for(client, job.id, *FINISHED)
    assert done.status == "succeeded", done.error
    assert extra(done, "provider_status") == "Completed"
    assert all(step.split("/")[1] in ("None", "InProgress", "Completed") for step in seen), seen
    model = str(done.fine_tuned_model)
    assert model.startswith("arn:aws:bedrock:us-east-1:") and ":custom-model/" in model

    # The converted data was staged where the job read it: Nova's conversation schema, one line per example.
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    staged = s3.get_object(Bucket=BUCKET, Key=f"portico/fine-tuning/{job.id}/training.jsonl")["Body"].read()
    lines = [json.loads(line) for line in staged.splitlines()]
    assert len(lines) == 12 and lines[0]["schemaVersion"] == "bedrock-conversation-2024"

    events = all_events(client, job.id)
    messages = [event.message for event in events]
    assert len(messages) == len(set(messages)), f"an event came twice: {messages}"
    assert "Training: Completed" in messages and f"New fine-tuned model created: {model}" in messages
    assert any(event.type == "metrics" for event in events)
    assert messages[-1] == f"Created fine-tuning job: {job.id}"

    page = checkpoints_page(tuning, "bedrock", job.id)
    assert page.data == [] and "no intermediate checkpoints" in (page.model_extra or {})["note"]
    chat_reaches(tuning, "bedrock", "bedrock", model, model)


def test_vertex_job_succeeds_and_its_endpoint_answers(tuning: TuningStack, gcs_endpoint: str) -> None:
    client = tuning.client("vertex")
    source = training_file(client)
    job = client.fine_tuning.jobs.create(model=GEMINI, training_file=source, suffix="adder")
    assert job.status == "validating_files" and extra(job, "provider") == "vertex-ai"

    done, _ = wait_for(client, job.id, *FINISHED)
    assert done.status == "succeeded", done.error
    assert extra(done, "provider_status") == "JOB_STATE_SUCCEEDED"
    model = str(done.fine_tuned_model)
    assert model.startswith("projects/sim-project/locations/us-central1/endpoints/")
    assert done.trained_tokens

    gcs = storage.Client(project="portico", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    staged = gcs.bucket(BUCKET).blob(f"portico/fine-tuning/{job.id}/training.jsonl").download_as_bytes()
    assert json.loads(staged.splitlines()[0])["contents"][-1]["role"] == "model"

    messages = [event.message for event in all_events(client, job.id)]
    assert len(messages) == len(set(messages)), f"an event came twice: {messages}"
    assert "Vertex tuning job is JOB_STATE_SUCCEEDED" in messages
    assert f"New fine-tuned model created: {model}" in messages

    page = checkpoints_page(tuning, "vertex", job.id)
    assert page.data == [] and (page.model_extra or {})["note"]
    endpoint_id = model.rsplit("/", 1)[1]
    chat_reaches(tuning, "vertex", "vertex", model, endpoint_id)
