"""The Vertex simulator's job APIs over real HTTP: batchPredictionJobs and tuningJobs reading their inputs from, and
writing their outputs to, the GCS emulator, with google-cloud-storage as the storage client on the test's side.

Two simulators run: a fast clock (20,000x) to see jobs through to the end, and a slow one (10x: 30 simulated seconds
queued are 3 real seconds) to catch jobs before they start, for cancel and expiry.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from providers.simulators.app import running_simulator
from tests.conftest import BUCKET

AUTH = {"Authorization": "Bearer ya29.sim"}
PARENT = "projects/demo/locations/us-central1"
BATCHES = f"/v1/{PARENT}/batchPredictionJobs"
TUNINGS = f"/v1/{PARENT}/tuningJobs"
MODEL = "publishers/google/models/gemini-2.0-flash"
TERMINAL = {
    "JOB_STATE_SUCCEEDED",
    "JOB_STATE_PARTIALLY_SUCCEEDED",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_EXPIRED",
}
HTTP = httpx.Client(timeout=30, headers=AUTH)


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture(scope="module")
def gcs(gcs_endpoint: str) -> Iterator[Any]:
    """A client of the emulator (the gcs_endpoint fixture sets STORAGE_EMULATOR_HOST, which the simulator reads)."""
    client = storage.Client(project="portico", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    yield client
    client.close()


@pytest.fixture(scope="module")
def fast(gcs_endpoint: str) -> Iterator[str]:
    with running_simulator("vertex", clock_speed=20_000) as url:
        yield url


@pytest.fixture(scope="module")
def slow(gcs_endpoint: str) -> Iterator[str]:
    with running_simulator("vertex", clock_speed=10) as url:
        yield url


def upload(gcs: Any, lines: list[Any]) -> str:
    """A JSONL object of the given lines (objects are JSON-encoded, strings written as they are); its gs:// URI."""
    name = f"vertex-jobs/{uuid.uuid4().hex}/input.jsonl"
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    gcs.bucket(BUCKET).blob(name).upload_from_string(text)
    return f"gs://{BUCKET}/{name}"


def new_prefix() -> str:
    return f"gs://{BUCKET}/vertex-jobs/{uuid.uuid4().hex}/out"


def objects_under(gcs: Any, uri: str) -> list[str]:
    return sorted(blob.name for blob in gcs.list_blobs(BUCKET, prefix=uri.removeprefix(f"gs://{BUCKET}/") + "/"))


def ask(text: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def batch_body(uris: list[str], prefix: str, model: str | None = MODEL) -> dict[str, Any]:
    body: dict[str, Any] = {
        "displayName": "sim batch",
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": uris}},
        "outputConfig": {"predictionsFormat": "jsonl", "gcsDestination": {"outputUriPrefix": prefix}},
    }
    if model is not None:
        body["model"] = model
    return body


def create(url: str, collection: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = HTTP.post(url + collection, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait(url: str, name: str, **headers: str) -> tuple[dict[str, Any], list[str]]:
    """Poll until the job ends; the job and every state seen, in order, without repeats."""
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = HTTP.get(f"{url}/v1/{name}", headers=headers).json()
        if not seen or seen[-1] != job["state"]:
            seen.append(job["state"])
        if job["state"] in TERMINAL:
            return dict(job), seen
        time.sleep(0.002)
    raise AssertionError(f"{name} did not end; states seen: {seen}")


def is_in_order(seen: list[str], order: list[str]) -> bool:
    positions = iter(order)
    return all(state in positions for state in seen)  # a subsequence: polling may miss short states


def predictions(gcs: Any, directory: str) -> dict[str, list[dict[str, Any]]]:
    files = objects_under(gcs, directory)
    return {
        name.rsplit("/", 1)[1]: [
            json.loads(line) for line in gcs.bucket(BUCKET).blob(name).download_as_text().splitlines()
        ]
        for name in files
    }


def stats(url: str) -> dict[str, Any]:
    return dict(httpx.get(url + "/_sim/stats").json())


# --- batchPredictionJobs -------------------------------------------------------------------------------------------


def test_a_batch_with_failing_lines_partially_succeeds_with_one_prediction_per_line(fast: str, gcs: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    tool_request = {
        **ask("weather in Paris?"),
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {"required": ["city"]}}]}],
    }
    lines: list[dict[str, Any]] = [
        {"custom_id": f"ok-{tag}", "request": ask("Name three   colours"), "meta": {"n": 1}},
        {"custom_id": f"fail-{tag}", "request": ask("please FAIL this one"), "meta": {"n": 2}},
        {"request": tool_request},  # no custom id: counted under its line index
        {"custom_id": f"bad-{tag}", "request": {"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}},
    ]
    prefix = new_prefix()
    by_index_before = stats(fast)["by_request_id"].get("2", 0)
    created = create(fast, BATCHES, batch_body([upload(gcs, lines)], prefix))
    assert created["name"].startswith(f"{PARENT}/batchPredictionJobs/") and created["state"] == "JOB_STATE_QUEUED"
    assert (created["displayName"], created["model"]) == ("sim batch", MODEL)
    assert "completionStats" not in created and "outputInfo" not in created

    job, seen = wait(fast, created["name"])
    assert job["state"] == "JOB_STATE_PARTIALLY_SUCCEEDED", job
    order = ["JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_PARTIALLY_SUCCEEDED"]
    assert is_in_order(seen, order), seen
    assert job["completionStats"] == {"successfulCount": "2", "failedCount": "2", "incompleteCount": "0"}
    assert job["createTime"] < job["startTime"] < job["endTime"] and "error" not in job
    directory = job["outputInfo"]["gcsOutputDirectory"]
    assert directory == f"{prefix}/prediction-model-{job['createTime']}"

    files = predictions(gcs, directory)
    assert list(files) == ["predictions_00001.jsonl"]
    out = {line.get("custom_id", "index 2"): line for line in files["predictions_00001.jsonl"]}
    assert len(out) == 4
    for line in lines:  # every input key is carried over, the request untouched
        assert {k: out[str(line.get("custom_id", "index 2"))][k] for k in line} == line

    ok = out[f"ok-{tag}"]
    assert ok["status"] == ""
    online = HTTP.post(f"{fast}/v1/{PARENT}/{MODEL}:generateContent", json=lines[0]["request"]).json()
    assert ok["response"]["candidates"] == online["candidates"]
    assert ok["response"]["candidates"][0]["content"]["parts"] == [{"text": "Simulated reply to: Name three colours"}]
    assert (
        ok["response"]["usageMetadata"]
        == online["usageMetadata"]
        == {
            "promptTokenCount": 3,
            "candidatesTokenCount": 6,
            "totalTokenCount": 9,
        }
    )
    assert ok["response"]["modelVersion"] == "gemini-2.0-flash"
    started, ended = (datetime.fromisoformat(job[key]) for key in ("startTime", "endTime"))
    assert started < datetime.fromisoformat(ok["processed_time"]) <= ended
    assert out["index 2"]["response"]["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "sim"}}}
    ]

    for key, message in ((f"fail-{tag}", "contains 'fail'"), (f"bad-{tag}", "role user|model")):
        failed = out[key]
        assert "response" not in failed
        reason, _, error = failed["status"].partition(": ")
        assert reason == "Bad Request"
        assert json.loads(error)["error"]["code"] == 400 and json.loads(error)["error"]["status"] == "INVALID_ARGUMENT"
        assert message in json.loads(error)["error"]["message"]

    counted = stats(fast)["by_request_id"]
    assert [counted[f"{kind}-{tag}"] for kind in ("ok", "fail", "bad")] == [1, 1, 1]
    assert counted["2"] == by_index_before + 1


def test_large_outputs_are_split_into_numbered_files(fast: str, gcs: Any) -> None:
    lines = [{"custom_id": f"line-{n}", "request": ask(f"question {n}")} for n in range(1001)]
    job, _ = wait(fast, create(fast, BATCHES, batch_body([upload(gcs, lines)], new_prefix()))["name"])
    assert job["state"] == "JOB_STATE_SUCCEEDED"
    assert job["completionStats"] == {"successfulCount": "1001", "failedCount": "0", "incompleteCount": "0"}
    files = predictions(gcs, job["outputInfo"]["gcsOutputDirectory"])
    assert {name: len(rows) for name, rows in files.items()} == {
        "predictions_00001.jsonl": 1000,
        "predictions_00002.jsonl": 1,
    }
    replies = {
        row["custom_id"]: row["response"]["candidates"][0]["content"]["parts"][0]["text"]
        for rows in files.values()
        for row in rows
    }
    assert replies == {f"line-{n}": f"Simulated reply to: question {n}" for n in range(1001)}


def test_several_input_files_make_one_batch(fast: str, gcs: Any) -> None:
    uris = [
        upload(gcs, [{"custom_id": "a", "request": ask("one")}]),
        upload(gcs, [{"custom_id": "b", "request": ask("two")}]),
    ]
    job, _ = wait(fast, create(fast, BATCHES, batch_body(uris, new_prefix()))["name"])
    rows = predictions(gcs, job["outputInfo"]["gcsOutputDirectory"])["predictions_00001.jsonl"]
    assert [row["custom_id"] for row in rows] == ["a", "b"] and job["state"] == "JOB_STATE_SUCCEEDED"


@pytest.mark.parametrize(
    ("problem", "code", "message"),
    [
        ("missing object", 3, "Failed to import data"),
        ("not json", 3, "is not JSON"),
        ("no request", 3, "'request' object"),
        ("empty", 3, "no requests"),
        ("missing model", 5, "was not found"),
        ("unknown tuned model", 5, "was not found"),
    ],
)
def test_unusable_input_fails_the_job(fast: str, gcs: Any, problem: str, code: int, message: str) -> None:
    good = {"request": ask("hi")}
    inputs: dict[str, Callable[[], str]] = {
        "missing object": lambda: f"gs://{BUCKET}/vertex-jobs/{uuid.uuid4().hex}/absent.jsonl",
        "not json": lambda: upload(gcs, [good, "{not json"]),
        "no request": lambda: upload(gcs, [good, {"custom_id": "x", "contents": []}]),
        "empty": lambda: upload(gcs, ["", "  "]),
    }
    uri = inputs.get(problem, lambda: upload(gcs, [good]))()
    model = {"missing model": None, "unknown tuned model": f"{PARENT}/models/42"}.get(problem, MODEL)
    prefix = new_prefix()
    body = batch_body([uri], prefix, model)
    job, seen = wait(fast, create(fast, BATCHES, body)["name"])
    assert job["state"] == "JOB_STATE_FAILED" and "JOB_STATE_RUNNING" not in seen
    assert job["error"]["code"] == code and message in job["error"]["message"], job["error"]
    assert "completionStats" not in job and "startTime" not in job
    assert objects_under(gcs, prefix) == []


def test_an_unwritable_output_fails_the_job(fast: str, gcs: Any) -> None:
    prefix = f"gs://no-such-bucket-{uuid.uuid4().hex[:8]}/out"
    job, _ = wait(fast, create(fast, BATCHES, batch_body([upload(gcs, [{"request": ask("hi")}])], prefix))["name"])
    assert job["state"] == "JOB_STATE_FAILED" and job["error"]["code"] == 9
    assert "startTime" in job and "completionStats" not in job


def test_cancel_moves_through_cancelling_to_cancelled(slow: str, gcs: Any) -> None:
    prefix = new_prefix()
    created = create(slow, BATCHES, batch_body([upload(gcs, [{"request": ask("hi")}])], prefix))
    assert created["state"] == "JOB_STATE_QUEUED"
    cancel = HTTP.post(f"{slow}/v1/{created['name']}:cancel")
    assert (cancel.status_code, cancel.json()) == (200, {})
    assert HTTP.get(f"{slow}/v1/{created['name']}").json()["state"] == "JOB_STATE_CANCELLING"
    again = HTTP.post(f"{slow}/v1/{created['name']}:cancel")
    assert again.status_code == 400 and again.json()["error"]["status"] == "FAILED_PRECONDITION"

    job, seen = wait(slow, created["name"])
    assert seen == ["JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED"]
    assert job["error"] == {"code": 1, "message": "CANCELED"} and "startTime" not in job
    assert job["endTime"] > job["createTime"]
    assert objects_under(gcs, prefix) == []
    late = HTTP.post(f"{slow}/v1/{created['name']}:cancel")
    assert late.status_code == 400 and "JOB_STATE_CANCELLED" in late.json()["error"]["message"]


def test_the_expire_control_expires_an_unfinished_job(slow: str, gcs: Any) -> None:
    created = create(slow, BATCHES, batch_body([upload(gcs, [{"request": ask("hi")}])], new_prefix()))
    job_id = created["name"].rsplit("/", 1)[1]
    expired = httpx.post(f"{slow}/_sim/vertex/batchPredictionJobs/{job_id}:expire")  # controls need no credentials
    assert expired.status_code == 200 and expired.json()["state"] == "JOB_STATE_EXPIRED"
    job = HTTP.get(f"{slow}/v1/{created['name']}").json()
    assert job["state"] == "JOB_STATE_EXPIRED" and job["error"]["code"] == 4
    assert httpx.post(f"{slow}/_sim/vertex/batchPredictionJobs/{job_id}:expire").status_code == 400
    assert HTTP.post(f"{slow}/v1/{created['name']}:cancel").status_code == 400


def test_list_pages_newest_first_within_its_location(slow: str, gcs: Any) -> None:
    location = f"/v1/projects/demo/locations/sim-{uuid.uuid4().hex[:8]}/batchPredictionJobs"
    uri = upload(gcs, [{"request": ask("hi")}])
    names = [create(slow, location, batch_body([uri], new_prefix()))["name"] for _ in range(3)]
    first = HTTP.get(slow + location, params={"pageSize": 2}).json()
    assert [job["name"] for job in first["batchPredictionJobs"]] == names[::-1][:2]
    second = HTTP.get(slow + location, params={"pageSize": 2, "pageToken": first["nextPageToken"]}).json()
    assert [job["name"] for job in second["batchPredictionJobs"]] == names[:1] and "nextPageToken" not in second
    elsewhere = HTTP.get(slow + location.replace("/sim-", "/other-")).json()
    assert elsewhere == {}
    assert HTTP.get(f"{slow}/v1/{names[0].replace('/sim-', '/other-')}").status_code == 404
    assert HTTP.get(slow + location, params={"pageToken": "nope"}).status_code == 400


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.pop("displayName"), "displayName"),
        (lambda b: b["inputConfig"]["gcsSource"].update(uris=[]), "inputConfig.gcsSource.uris"),
        (lambda b: b["inputConfig"]["gcsSource"].update(uris=["s3://x/y"]), "inputConfig.gcsSource.uris[0]"),
        (lambda b: b["inputConfig"].update(instancesFormat="bigquery"), "inputConfig.instancesFormat"),
        (lambda b: b["outputConfig"].pop("gcsDestination"), "outputConfig.gcsDestination.outputUriPrefix"),
    ],
)
def test_create_refuses_bad_bodies_naming_the_field(fast: str, change: Any, field: str) -> None:
    body = batch_body([f"gs://{BUCKET}/in.jsonl"], new_prefix())
    change(body)
    response = HTTP.post(fast + BATCHES, json=body)
    assert response.status_code == 400 and response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert field in response.json()["error"]["message"]


def test_job_routes_need_credentials_and_known_ids(fast: str) -> None:
    unauthenticated = httpx.get(fast + BATCHES)
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"]["status"] == "UNAUTHENTICATED"
    assert HTTP.get(f"{fast}{BATCHES}/123").status_code == 404
    assert HTTP.post(f"{fast}{BATCHES}/123:cancel").status_code == 404
    assert HTTP.get(f"{fast}/v1/projects/demo/locations/bad%20place/batchPredictionJobs").status_code == 400
    failed = HTTP.get(fast + BATCHES, headers={"x-sim-fail": "429"})
    assert failed.status_code == 429 and failed.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_seeded_line_failures_repeat_with_the_seed(gcs: Any) -> None:
    lines = [{"custom_id": f"s{n}", "request": ask(f"q {n}")} for n in range(40)]
    uri = upload(gcs, lines)
    # x-sim-fail-times: 0 exempts the job API calls themselves from the fail rate.
    exempt = {"x-sim-fail-times": "0", "x-sim-key": "calls"}

    def failed_lines(seed: int) -> tuple[str, set[str]]:
        with running_simulator("vertex", clock_speed=20_000, fail_rate=0.3, fail_status=429, seed=seed) as url:
            job, _ = wait(url, create(url, BATCHES, batch_body([uri], new_prefix()), **exempt)["name"], **exempt)
            rows = predictions(gcs, job["outputInfo"]["gcsOutputDirectory"])["predictions_00001.jsonl"]
            failed = {row["custom_id"] for row in rows if row["status"]}
            assert all(row["status"].startswith("Too Many Requests: ") for row in rows if row["status"])
            assert job["completionStats"]["failedCount"] == str(len(failed))
            return job["state"], failed

    state, seven = failed_lines(7)
    assert state == "JOB_STATE_PARTIALLY_SUCCEEDED" and 0 < len(seven) < 40
    assert failed_lines(7) == (state, seven)
    assert failed_lines(8)[1] != seven


# --- tuningJobs ----------------------------------------------------------------------------------------------------


def example(question: str, answer: str) -> dict[str, Any]:
    return {
        "systemInstruction": {"role": "system", "parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"text": question}]},
            {"role": "model", "parts": [{"text": answer}]},
        ],
    }


def tuning_body(training: str, validation: str | None = None, **hyper: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"trainingDatasetUri": training, "hyperParameters": hyper}
    if validation is not None:
        spec["validationDatasetUri"] = validation
    return {"baseModel": "gemini-2.0-flash-001", "supervisedTuningSpec": spec, "tunedModelDisplayName": "sim-tuned"}


def test_a_tuning_job_succeeds_and_its_endpoint_answers(fast: str, gcs: Any) -> None:
    training = upload(gcs, [example("What is two plus two?", "Four."), example("Capital of France?", "Paris.")] * 3)
    validation = upload(gcs, [example("One plus one?", "Two.")])
    hyper = {"epochCount": "2", "learningRateMultiplier": 1.0, "adapterSize": "ADAPTER_SIZE_FOUR"}
    created = create(fast, TUNINGS, tuning_body(training, validation, **hyper))
    assert created["name"].startswith(f"{PARENT}/tuningJobs/") and created["state"] == "JOB_STATE_PENDING"
    assert created["tunedModelDisplayName"] == "sim-tuned" and "tunedModel" not in created

    job, seen = wait(fast, created["name"])
    assert job["state"] == "JOB_STATE_SUCCEEDED", job
    assert is_in_order(seen, ["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]), seen
    assert job["supervisedTuningSpec"]["hyperParameters"] == hyper
    # 6 examples of 8 or 6 words (system, user and model turns), 2 epochs, 8 examples a step.
    assert job["tuningDataStats"]["supervisedTuningDataStats"] == {
        "tuningDatasetExampleCount": "6",
        "totalTuningCharacterCount": str(
            3 * (len("Be brief.What is two plus two?Four.") + len("Be brief.Capital of France?Paris."))
        ),
        "totalBillableTokenCount": str(2 * 3 * (8 + 6)),
        "tuningStepCount": "2",
    }
    model, endpoint = job["tunedModel"]["model"], job["tunedModel"]["endpoint"]
    assert model.startswith(f"{PARENT}/models/") and endpoint.startswith(f"{PARENT}/endpoints/")

    answer = HTTP.post(f"{fast}/v1/{endpoint}:generateContent", json=ask("Hello tuned model"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["candidates"][0]["content"]["parts"] == [{"text": "Simulated reply to: Hello tuned model"}]
    assert answer.json()["usageMetadata"]["promptTokenCount"] == 3
    stream = HTTP.post(f"{fast}/v1/{endpoint}:streamGenerateContent", json=ask("Hello"))
    assert "".join(chunk["candidates"][0]["content"]["parts"][0]["text"] for chunk in stream.json()) == (
        "Simulated reply to: Hello"
    )
    assert (
        HTTP.post(
            f"{fast}/v1/{endpoint.replace('us-central1', 'europe-west4')}:generateContent", json=ask("x")
        ).status_code
        == 404
    )
    assert httpx.post(f"{fast}/v1/{endpoint}:generateContent", json=ask("x")).status_code == 401

    batch, _ = wait(
        fast, create(fast, BATCHES, batch_body([upload(gcs, [{"request": ask("hi")}])], new_prefix(), model))["name"]
    )
    assert batch["state"] == "JOB_STATE_SUCCEEDED"
    row = predictions(gcs, batch["outputInfo"]["gcsOutputDirectory"])["predictions_00001.jsonl"][0]
    assert row["response"]["modelVersion"] == "gemini-2.0-flash-001"


def test_unknown_endpoints_answer_404(fast: str) -> None:
    response = HTTP.post(f"{fast}/v1/{PARENT}/endpoints/999:generateContent", json=ask("x"))
    assert response.status_code == 404 and response.json()["error"]["status"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (None, "cannot read"),
        (["{not json"], "is not JSON"),
        ([{"contents": [{"role": "user", "parts": [{"text": "no answer"}]}]}], "no 'model' turn"),
        ([{"messages": [{"role": "user", "content": "OpenAI format"}]}], "'contents' is required"),
        ([{"contents": [{"role": "robot", "parts": []}]}], "role user|model"),
        ([""], "has no examples"),
    ],
)
def test_unusable_training_data_fails_the_tuning_job(
    fast: str, gcs: Any, lines: list[Any] | None, message: str
) -> None:
    training = f"gs://{BUCKET}/vertex-jobs/{uuid.uuid4().hex}/absent.jsonl" if lines is None else upload(gcs, lines)
    job, seen = wait(fast, create(fast, TUNINGS, tuning_body(training))["name"])
    assert job["state"] == "JOB_STATE_FAILED" and "JOB_STATE_RUNNING" not in seen
    assert job["error"]["code"] == 3 and message in job["error"]["message"], job["error"]
    assert "tunedModel" not in job and "tuningDataStats" not in job


def test_an_invalid_validation_dataset_fails_the_tuning_job(fast: str, gcs: Any) -> None:
    training = upload(gcs, [example("q", "a")])
    job, _ = wait(fast, create(fast, TUNINGS, tuning_body(training, upload(gcs, ["[]"])))["name"])
    assert job["state"] == "JOB_STATE_FAILED" and "JSON object" in job["error"]["message"]


def test_a_cancelled_tuning_job_produces_no_model(slow: str, gcs: Any) -> None:
    created = create(slow, TUNINGS, tuning_body(upload(gcs, [example("q", "a")])))
    assert HTTP.post(f"{slow}/v1/{created['name']}:cancel").json() == {}
    job, seen = wait(slow, created["name"])
    assert seen == ["JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED"] and "tunedModel" not in job
    listed = HTTP.get(slow + TUNINGS).json()["tuningJobs"]
    assert created["name"] in [entry["name"] for entry in listed]


@pytest.mark.parametrize(
    ("hyper", "field"),
    [
        ({"epochCount": 0}, "epochCount"),
        ({"epochCount": "two"}, "epochCount"),
        ({"learningRateMultiplier": -1}, "learningRateMultiplier"),
        ({"adapterSize": "HUGE"}, "adapterSize"),
    ],
)
def test_tuning_create_refuses_bad_hyperparameters(fast: str, hyper: dict[str, Any], field: str) -> None:
    response = HTTP.post(fast + TUNINGS, json=tuning_body(f"gs://{BUCKET}/train.jsonl", **hyper))
    assert response.status_code == 400 and field in response.json()["error"]["message"]
    no_data = HTTP.post(fast + TUNINGS, json={"baseModel": "gemini-2.0-flash-001", "supervisedTuningSpec": {}})
    assert no_data.status_code == 400 and "trainingDatasetUri" in no_data.json()["error"]["message"]
