"""The Bedrock control-plane simulators over real HTTP: batch inference (model invocation jobs) and fine-tuning
(model customization jobs), driven by boto3's ``bedrock`` client, with moto's S3 server as the S3 stand-in, and the
resulting custom model answered by the runtime through boto3's ``bedrock-runtime`` client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from providers.simulators.app import running_simulator

BUCKET = "sim-bedrock-jobs"
ROLE = "arn:aws:iam::123456789012:role/BedrockBatch"
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
NOVA = "amazon.nova-lite-v1:0"
CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# Clock speeds: at FAST a job's simulated minutes pass in milliseconds; at SLOW an invocation job stays Submitted,
# Validating and Scheduled for ten real seconds together, ample time to stop or expire it.
FAST = 20_000.0
SLOW = 20.0
INVOCATION_ORDER = ["Submitted", "Validating", "Scheduled", "InProgress", "Completed", "PartiallyCompleted"]
WEATHER_TOOL = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@contextmanager
def simulator(s3_endpoint: str | None, **controls: Any) -> Iterator[str]:
    with running_simulator("bedrock", **controls) as url:
        if s3_endpoint is not None:
            httpx.post(url + "/_sim/bedrock/s3", json={"endpoint_url": s3_endpoint}).raise_for_status()
        yield url


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Any:
    client = boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def fast(s3_endpoint: str) -> Iterator[str]:
    with simulator(s3_endpoint, clock_speed=FAST) as url:
        yield url


@pytest.fixture(scope="module")
def slow(s3_endpoint: str) -> Iterator[str]:
    with simulator(s3_endpoint, clock_speed=SLOW) as url:
        yield url


def control(url: str, **headers: str) -> Any:
    client = boto3.client("bedrock", endpoint_url=url, config=Config(retries={"max_attempts": 1}), **CREDENTIALS)

    def add_headers(request: Any, **_: Any) -> None:
        for name, value in headers.items():
            request.headers[name] = value

    client.meta.events.register("before-sign.bedrock.*", add_headers)
    return client


def runtime(url: str) -> Any:
    return boto3.client("bedrock-runtime", endpoint_url=url, **CREDENTIALS)


def put_jsonl(s3: Any, key: str, lines: list[dict[str, Any]]) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body="\n".join(json.dumps(line) for line in lines).encode() + b"\n")
    return f"s3://{BUCKET}/{key}"


def read_jsonl(s3: Any, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines() if line]


def claude(content: object, **extra: Any) -> dict[str, Any]:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": content}],
    }
    return {**body, **extra}


def invocation_job(client: Any, name: str, source: str, output: str, **extra: Any) -> str:
    job = client.create_model_invocation_job(
        jobName=name,
        roleArn=ROLE,
        modelId=extra.pop("modelId", CLAUDE),
        inputDataConfig={"s3InputDataConfig": {"s3Uri": source}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": output}},
        **extra,
    )
    return str(job["jobArn"])


def wait_for(
    read: Callable[[], dict[str, Any]], *statuses: str, timeout: float = 30
) -> tuple[dict[str, Any], list[str]]:
    """Poll until the job reaches one of `statuses`; also returns every status seen, in order."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        job = read()
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in statuses:
            return job, seen
        assert time.monotonic() < deadline, f"the job is still {job['status']} (seen {seen})"
        time.sleep(0.01)


def error_code(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


# --- model invocation (batch) jobs -------------------------------------------------------------------------------


def test_failing_records_leave_the_job_partially_completed_with_one_line_each(fast: str, s3: Any) -> None:
    records = {
        "pc-1": claude("Hello   there batch", system="Be brief."),
        "pc-2-fail": claude("never answered"),
        "pc-3": claude("weather?", tools=[WEATHER_TOOL]),
        "pc-4": {"anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": "no cap"}]},
        "pc-5": claude([{"type": "text", "text": "one two three four"}], max_tokens=2),
    }
    source = put_jsonl(s3, "pc/input/records.jsonl", [{"recordId": k, "modelInput": v} for k, v in records.items()])
    client = control(fast)
    arn = invocation_job(client, "partial-" + uuid.uuid4().hex[:8], source, f"s3://{BUCKET}/pc/output/")

    job, seen = wait_for(lambda: client.get_model_invocation_job(jobIdentifier=arn), "PartiallyCompleted", "Completed")
    assert job["status"] == "PartiallyCompleted"
    assert seen == sorted(seen, key=INVOCATION_ORDER.index)  # never out of order
    counts = [job[f"{name}RecordCount"] for name in ("total", "processed", "success", "error")]
    assert counts == [5, 5, 3, 2]
    assert job["endTime"] >= job["submitTime"]

    job_id = arn.rsplit("/", 1)[1]
    lines = {line["recordId"]: line for line in read_jsonl(s3, f"pc/output/{job_id}/records.jsonl.out")}
    assert set(lines) == set(records)
    assert all(line["modelInput"] == records[record_id] for record_id, line in lines.items())

    def reply(content: list[dict[str, Any]], stop: str, tokens: tuple[int, int]) -> dict[str, Any]:
        usage = {"input_tokens": tokens[0], "output_tokens": tokens[1]}
        body = {"type": "message", "role": "assistant", "model": "claude-3-haiku-20240307", "content": content}
        return {**body, "stop_reason": stop, "stop_sequence": None, "usage": usage}

    outputs = {rid: line["modelOutput"] for rid, line in lines.items() if "modelOutput" in line}
    assert all(output.pop("id").startswith("msg_bdrk_") for output in outputs.values())
    assert outputs == {
        "pc-1": reply([{"type": "text", "text": "Simulated reply to: Hello there batch"}], "end_turn", (5, 6)),
        "pc-3": reply(
            [{"type": "tool_use", "id": "toolu_bdrk_sim_0", "name": "get_weather", "input": {"city": "sim"}}],
            "tool_use",
            (1, 1),
        ),
        "pc-5": reply([{"type": "text", "text": "Simulated reply"}], "max_tokens", (4, 2)),
    }
    assert lines["pc-2-fail"]["error"]["errorCode"] == 500 and "fail" in lines["pc-2-fail"]["error"]["errorMessage"]
    assert lines["pc-4"]["error"]["errorCode"] == 400 and "max_tokens" in lines["pc-4"]["error"]["errorMessage"]
    assert all(("error" in line) != ("modelOutput" in line) for line in lines.values())

    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"pc/output/{job_id}/manifest.json.out")["Body"].read())
    assert manifest == {
        "totalRecordCount": 5,
        "processedRecordCount": 5,
        "successRecordCount": 3,
        "errorRecordCount": 2,
        "inputTokenCount": 5 + 1 + 4,
        "outputTokenCount": 6 + 1 + 2,
    }
    stats = httpx.get(fast + "/_sim/stats").json()
    assert {record_id: stats["by_request_id"].get(record_id) for record_id in records} == dict.fromkeys(records, 1)


def test_folder_input_gives_one_out_file_per_input_file_and_converse_records(fast: str, s3: Any) -> None:
    def converse(text: str) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": [{"text": text}]}], "inferenceConfig": {"maxTokens": 50}}

    put_jsonl(s3, "folder/in/a.jsonl", [{"recordId": "fa-1", "modelInput": converse("first file")}])
    put_jsonl(s3, "folder/in/b.jsonl", [{"recordId": f"fb-{n}", "modelInput": converse("second")} for n in (1, 2)])
    client = control(fast)
    arn = invocation_job(
        client,
        "folder-" + uuid.uuid4().hex[:8],
        f"s3://{BUCKET}/folder/in/",
        f"s3://{BUCKET}/folder/out",
        modelId=NOVA,
        modelInvocationType="Converse",
    )
    job, _ = wait_for(lambda: client.get_model_invocation_job(jobIdentifier=arn), "Completed", "PartiallyCompleted")
    assert (job["status"], job["modelInvocationType"], job["successRecordCount"]) == ("Completed", "Converse", 3)

    job_id = arn.rsplit("/", 1)[1]
    first = read_jsonl(s3, f"folder/out/{job_id}/a.jsonl.out")
    assert [line["recordId"] for line in first] == ["fa-1"]
    assert first[0]["modelOutput"] == {
        "output": {"message": {"role": "assistant", "content": [{"text": "Simulated reply to: first file"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 2, "outputTokens": 5, "totalTokens": 7},
        "metrics": {"latencyMs": 0},
    }
    assert sorted(line["recordId"] for line in read_jsonl(s3, f"folder/out/{job_id}/b.jsonl.out")) == ["fb-1", "fb-2"]
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"folder/out/{job_id}/manifest.json.out")["Body"].read())
    assert (manifest["totalRecordCount"], manifest["successRecordCount"], manifest["errorRecordCount"]) == (3, 3, 0)


def test_create_is_idempotent_by_token_and_a_job_is_found_by_name_arn_or_id(fast: str, s3: Any) -> None:
    source = put_jsonl(s3, "idem/in.jsonl", [{"recordId": "id-1", "modelInput": claude("hi")}])
    client, name = control(fast), "idem-" + uuid.uuid4().hex[:8]
    token = uuid.uuid4().hex
    arn = invocation_job(client, name, source, f"s3://{BUCKET}/idem/out/", clientRequestToken=token)
    assert invocation_job(client, name, source, f"s3://{BUCKET}/idem/out/", clientRequestToken=token) == arn
    listed = client.list_model_invocation_jobs(nameContains=name)["invocationJobSummaries"]
    assert [job["jobArn"] for job in listed] == [arn]

    with pytest.raises(ClientError) as reused:  # the same token for another request
        invocation_job(client, name, source, f"s3://{BUCKET}/idem/other/", clientRequestToken=token)
    assert error_code(reused) == ("ConflictException", 400)
    with pytest.raises(ClientError) as same_name:  # a new token, but the name is taken
        invocation_job(client, name, source, f"s3://{BUCKET}/idem/out/")
    assert error_code(same_name) == ("ConflictException", 400)

    by = {key: client.get_model_invocation_job(jobIdentifier=key) for key in (arn, name, arn.rsplit("/", 1)[1])}
    assert {(job["jobArn"], job["jobName"], job["clientRequestToken"]) for job in by.values()} == {(arn, name, token)}
    with pytest.raises(ClientError) as missing:
        client.get_model_invocation_job(
            jobIdentifier="arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/000000000000"
        )
    assert error_code(missing) == ("ResourceNotFoundException", 404)
    wait_for(lambda: client.get_model_invocation_job(jobIdentifier=arn), "Completed")


def test_stop_goes_through_stopping_and_expiry_is_a_control(slow: str, s3: Any) -> None:
    source = put_jsonl(s3, "stop/in.jsonl", [{"recordId": "st-1", "modelInput": claude("hi")}])
    client = control(slow)
    stopped = invocation_job(client, "stop-" + uuid.uuid4().hex[:8], source, f"s3://{BUCKET}/stop/out/")
    expired = invocation_job(client, "expire-" + uuid.uuid4().hex[:8], source, f"s3://{BUCKET}/stop/out/")

    client.stop_model_invocation_job(jobIdentifier=stopped)
    job, seen = wait_for(lambda: client.get_model_invocation_job(jobIdentifier=stopped), "Stopped")
    assert seen == ["Stopping", "Stopped"] and "endTime" in job
    with pytest.raises(ClientError) as again:
        client.stop_model_invocation_job(jobIdentifier=stopped)
    assert error_code(again) == ("ConflictException", 400)

    assert httpx.post(f"{slow}/_sim/bedrock/model-invocation-job/{expired}/expire").json()["status"] == "Expired"
    listed = client.list_model_invocation_jobs(statusEquals="Expired")["invocationJobSummaries"]
    assert [job["jobArn"] for job in listed] == [expired]
    assert client.get_model_invocation_job(jobIdentifier=expired)["status"] == "Expired"


def test_unreadable_input_fails_the_job(fast: str) -> None:
    client = control(fast)
    missing = f"s3://{BUCKET}/nowhere/in.jsonl"
    arn = invocation_job(client, "unreadable-" + uuid.uuid4().hex[:8], missing, f"s3://{BUCKET}/nowhere/out/")
    job, _ = wait_for(lambda: client.get_model_invocation_job(jobIdentifier=arn), "Failed", "Completed")
    assert job["status"] == "Failed" and "nowhere/in.jsonl" in job["message"]


def test_malformed_requests_and_a_missing_s3_endpoint_are_validation_errors(fast: str) -> None:
    with pytest.raises(ClientError) as bad_role:
        control(fast).create_model_invocation_job(
            jobName="bad-role",
            roleArn="not-an-arn",
            modelId=CLAUDE,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{BUCKET}/x.jsonl"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/out/"}},
        )
    assert (
        error_code(bad_role) == ("ValidationException", 400)
        and "roleArn" in bad_role.value.response["Error"]["Message"]
    )
    with simulator(None) as unconfigured, pytest.raises(ClientError) as no_s3:
        invocation_job(control(unconfigured), "no-s3", f"s3://{BUCKET}/x.jsonl", f"s3://{BUCKET}/out/")
    assert error_code(no_s3) == ("ValidationException", 400) and "/_sim/bedrock/s3" in str(no_s3.value)


def test_the_fail_rate_fails_the_same_records_for_the_same_seed(s3_endpoint: str, s3: Any) -> None:
    ids = [f"rate-{n}" for n in range(16)]
    source = put_jsonl(s3, "rate/in.jsonl", [{"recordId": rid, "modelInput": claude("x")} for rid in ids])

    def failed_records(seed: int) -> set[str]:
        with simulator(s3_endpoint, clock_speed=FAST, fail_rate=0.5, seed=seed) as url:
            # x-sim-fail-times: 0 exempts the control-plane calls themselves from the random failures.
            client = control(url, **{"x-sim-fail-times": "0", "x-sim-key": "control"})
            prefix = f"rate/out-{seed}-{uuid.uuid4().hex[:6]}"
            arn = invocation_job(client, "rate-job", source, f"s3://{BUCKET}/{prefix}/")
            wait_for(lambda: client.get_model_invocation_job(jobIdentifier=arn), "PartiallyCompleted", "Completed")
            lines = read_jsonl(s3, f"{prefix}/{arn.rsplit('/', 1)[1]}/in.jsonl.out")
            failed = {line["recordId"]: line["error"]["errorCode"] for line in lines if "error" in line}
            assert set(failed.values()) <= {429}  # the configured fail_status
            assert httpx.get(url + "/_sim/stats").json()["failures_by_status"].get("429", 0) == len(failed)
            return set(failed)

    first = failed_records(7)
    assert 0 < len(first) < len(ids)
    assert failed_records(7) == first


# --- model customization jobs ------------------------------------------------------------------------------------


def customization_job(client: Any, name: str, training: str, output: str, **extra: Any) -> str:
    job = client.create_model_customization_job(
        jobName=name,
        customModelName=name + "-model",
        roleArn=ROLE,
        baseModelIdentifier=extra.pop("baseModelIdentifier", NOVA),
        trainingDataConfig={"s3Uri": training},
        outputDataConfig={"s3Uri": output},
        **extra,
    )
    return str(job["jobArn"])


def conversation(question: str, answer: str) -> dict[str, Any]:
    messages = [
        {"role": "user", "content": [{"text": question}]},
        {"role": "assistant", "content": [{"text": answer}]},
    ]
    return {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "Be kind."}], "messages": messages}


def test_a_completed_fine_tune_reports_metrics_and_its_model_answers_converse(fast: str, s3: Any) -> None:
    training = put_jsonl(s3, "ft/train.jsonl", [conversation(f"q{n}", f"a{n}") for n in range(4)])
    validation = put_jsonl(s3, "ft/valid.jsonl", [{"prompt": "p", "completion": "c"}])
    client, name = control(fast), "tune-" + uuid.uuid4().hex[:8]
    arn = customization_job(
        client,
        name,
        training,
        f"s3://{BUCKET}/ft/out/",
        validationDataConfig={"validators": [{"s3Uri": validation}]},
        hyperParameters={"epochCount": "2", "batchSize": "2", "learningRate": "0.00001"},
        customizationType="FINE_TUNING",
        clientRequestToken="tune-token-" + name,
    )
    assert arn.startswith(f"arn:aws:bedrock:us-east-1:123456789012:model-customization-job/{NOVA}/")

    job, seen = wait_for(lambda: client.get_model_customization_job(jobIdentifier=name), "Completed", "Failed")
    assert (job["status"], seen[0]) == ("Completed", "InProgress")
    assert client.get_model_customization_job(jobIdentifier=arn)["jobName"] == name
    model_arn = job["outputModelArn"]
    assert model_arn.startswith(f"arn:aws:bedrock:us-east-1:123456789012:custom-model/{NOVA}/")
    assert job["baseModelArn"] == f"arn:aws:bedrock:us-east-1::foundation-model/{NOVA}"
    assert (job["outputModelName"], job["hyperParameters"]["epochCount"]) == (name + "-model", "2")
    assert {detail["status"] for detail in job["statusDetails"].values()} == {"Completed"}
    # Two epochs of two steps (4 records, batches of 2): the loss at step 3 is 0.1 + 2.4 / 2.5.
    assert job["trainingMetrics"] == {"trainingLoss": 1.06}
    assert job["validationMetrics"] == [{"validationLoss": 1.11}]

    folder = f"ft/out/model-customization-job-{arn.rsplit('/', 1)[1]}"
    steps = s3.get_object(Bucket=BUCKET, Key=f"{folder}/training_artifacts/step_wise_training_metrics.csv")
    rows = steps["Body"].read().decode().splitlines()
    assert rows[0] == "step_number,epoch_number,training_loss,perplexity"
    assert [row.split(",")[:3] for row in rows[1:]] == [
        ["0", "0", "2.5"],
        ["1", "0", "1.7"],
        ["2", "1", "1.3"],
        ["3", "1", "1.06"],
    ]
    validation_key = f"{folder}/validation_artifacts/post_fine_tuning_validation/validation_metrics.csv"
    assert (
        s3.get_object(Bucket=BUCKET, Key=validation_key)["Body"]
        .read()
        .decode()
        .startswith("step_number,epoch_number,validation_loss")
    )

    summaries = client.list_model_customization_jobs(nameContains=name)["modelCustomizationJobSummaries"]
    assert [(s["jobArn"], s["customModelArn"], s["status"]) for s in summaries] == [(arn, model_arn, "Completed")]

    question = {"messages": [{"role": "user", "content": [{"text": "Are you   tuned?"}]}]}
    reply = runtime(fast).converse(modelId=model_arn, **question)
    assert reply["output"]["message"]["content"] == [{"text": "Simulated reply to: Are you tuned?"}]
    unknown_model = model_arn.rsplit("/", 1)[0] + "/000000000000"
    with pytest.raises(ClientError) as unknown:
        runtime(fast).converse(modelId=unknown_model, **question)
    assert error_code(unknown) == ("ValidationException", 400)


def test_invalid_training_data_fails_and_stop_leaves_no_model(fast: str, slow: str, s3: Any) -> None:
    broken = put_jsonl(s3, "ft-bad/train.jsonl", [conversation("q", "a"), {"text": "not a training record"}])
    client = control(fast)
    arn = customization_job(client, "broken-" + uuid.uuid4().hex[:8], broken, f"s3://{BUCKET}/ft-bad/out/")
    job, _ = wait_for(lambda: client.get_model_customization_job(jobIdentifier=arn), "Failed", "Completed")
    assert job["status"] == "Failed" and "line 2" in job["failureMessage"]
    assert job["statusDetails"]["validationDetails"]["status"] == "Failed" and "outputModelArn" not in job

    with pytest.raises(ClientError) as bad_hyper:
        customization_job(
            client, "hyper-" + uuid.uuid4().hex[:8], broken, f"s3://{BUCKET}/x/", hyperParameters={"epochCount": "two"}
        )
    assert error_code(bad_hyper) == ("ValidationException", 400) and "epochCount" in str(bad_hyper.value)

    training = put_jsonl(s3, "ft-stop/train.jsonl", [{"prompt": "p", "completion": "c"}])
    slow_client, name = control(slow), "stop-tune-" + uuid.uuid4().hex[:8]
    arn = customization_job(slow_client, name, training, f"s3://{BUCKET}/ft-stop/out/")
    slow_client.stop_model_customization_job(jobIdentifier=name)
    job, seen = wait_for(lambda: slow_client.get_model_customization_job(jobIdentifier=arn), "Stopped")
    assert seen == ["Stopping", "Stopped"] and "outputModelArn" not in job and "endTime" in job
    assert job["statusDetails"]["validationDetails"]["status"] == "Stopped"
    assert job["statusDetails"]["trainingDetails"]["status"] == "NotStarted"
