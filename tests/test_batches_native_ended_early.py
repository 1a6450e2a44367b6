"""Bedrock jobs that end early, on a simulator slow enough to catch them: one that expires part way keeps the
records the provider processed (answers in the output file, failures in the error file), every record it never
reached gets a `batch_expired` error line, so each input custom_id still appears exactly once, and the batch is
`expired` with the raw `Expired` kept beside; one cancelled before it starts is stopped on Bedrock and ends
`cancelled`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from providers.simulators.app import running_simulator
from tests.conftest import BUCKET, STACKS, stack_settings
from tests.support.gateway import create_vk
from tests.support.native_batches import (
    AWS_KEY,
    CHAT,
    CLAUDE,
    FINISHED,
    ROLE,
    chat_line,
    counts,
    extra,
    read_jsonl,
    upload,
    wait_for,
)
from tests.support.server import RunningPortico, run_portico

# The simulator's own SigV4-shaped header (it reads the region from the credential scope, not the signature).
SIMULATOR_AUTH = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/bedrock/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=00",
    "X-Amz-Date": "20250101T000000Z",
}
RECORDS = 60


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningPortico, str]]:
    s3_endpoint = request.getfixturevalue("s3_endpoint")
    # At 50x, the job waits 4 s before it starts and then answers a record every 40 ms: time to expire it mid-way.
    with running_simulator("bedrock", clock_speed=50) as simulator:
        httpx.post(f"{simulator}/_sim/bedrock/s3", json={"endpoint_url": s3_endpoint}).raise_for_status()
        settings = stack_settings(
            request,
            STACKS["sqlite-local"],
            tmp_path_factory.mktemp("expiry"),
            provider_endpoints={"bedrock": simulator},
        )
        settings.batch.poll_seconds = 1
        settings.batch.s3_endpoint_url = s3_endpoint
        with run_portico(settings, worker=True) as portico:
            yield portico, simulator


def simulator_jobs(simulator: str, batch_id: str) -> list[dict[str, Any]]:
    """The simulator's jobs for one batch (Portico names them after it)."""
    name = "portico-" + batch_id.replace("_", "-")
    listing = httpx.get(f"{simulator}/model-invocation-jobs", headers=SIMULATOR_AUTH).json()
    return [job for job in listing.get("invocationJobSummaries") or [] if job["jobName"] == name]


def job_under_way(simulator: str, batch_id: str, records: int) -> dict[str, Any]:
    """The batch's job on the simulator, once it has processed `records` records."""
    deadline = time.monotonic() + 30
    while True:
        jobs = simulator_jobs(simulator, batch_id)
        assert len(jobs) <= 1
        if jobs and jobs[0].get("processedRecordCount", 0) >= records:
            return jobs[0]
        assert time.monotonic() < deadline, f"the job never got under way: {jobs}"
        time.sleep(0.02)


def sdk(portico: RunningPortico) -> openai.OpenAI:
    virtual_key = create_vk(
        portico, {"name": "br", "provider": "bedrock", "awsRoleArn": ROLE, "awsS3Bucket": BUCKET, **AWS_KEY}
    )
    headers = {"x-portkey-virtual-key": virtual_key}
    return openai.OpenAI(base_url=portico.api, api_key=portico.admin_key, default_headers=headers, max_retries=0)


def test_an_expired_job_keeps_what_ran_and_reports_the_rest_as_expired(stack: tuple[RunningPortico, str]) -> None:
    portico, simulator = stack
    client = sdk(portico)
    ids = [f"ex-{n:02d}" for n in range(RECORDS - 1)] + ["ex-fail"]
    source = upload(client, [chat_line(i, "hello") for i in ids])
    batch = client.batches.create(
        input_file_id=source, endpoint=CHAT, completion_window="24h", extra_body={"model": CLAUDE}
    )
    job = job_under_way(simulator, batch.id, 3)
    expired = httpx.post(f"{simulator}/_sim/bedrock/model-invocation-job/{job['jobArn'].rsplit('/', 1)[-1]}/expire")
    assert expired.json()["status"] == "Expired", expired.text
    processed = int(expired.json()["processedRecordCount"])
    assert 0 < processed < RECORDS

    done, _ = wait_for(client, batch.id, *FINISHED)
    assert (done.status, extra(done, "provider_status")) == ("expired", "Expired")
    assert done.expired_at and done.errors and done.errors.data[0].code == "batch_expired"
    outputs = read_jsonl(client, done.output_file_id)
    errors = read_jsonl(client, done.error_file_id)
    returned = [line["custom_id"] for line in outputs + errors]
    assert sorted(returned) == sorted(ids), "every custom_id exactly once"
    never_ran = [line for line in errors if line["error"] and line["error"]["code"] == "batch_expired"]
    assert len(outputs) + len(errors) - len(never_ran) == processed
    assert never_ran and all(line["response"] is None for line in never_ran)
    assert (counts(done).completed, counts(done).failed, counts(done).total) == (len(outputs), len(errors), RECORDS)


def test_cancelling_a_bedrock_job_stops_it_and_ends_cancelled(stack: tuple[RunningPortico, str]) -> None:
    portico, simulator = stack
    client = sdk(portico)
    source = upload(client, [chat_line(f"st-{n}", "hello") for n in range(3)])
    batch = client.batches.create(
        input_file_id=source, endpoint=CHAT, completion_window="24h", extra_body={"model": CLAUDE}
    )
    while extra(batch, "provider_status") is None:
        batch, _ = wait_for(client, batch.id, "validating")
    assert client.batches.cancel(batch.id).status == "cancelling"

    done, seen = wait_for(client, batch.id, *FINISHED)
    assert (done.status, extra(done, "provider_status")) == ("cancelled", "Stopped") and seen[0] == "cancelling"
    assert [job["status"] for job in simulator_jobs(simulator, batch.id)] == ["Stopped"]
