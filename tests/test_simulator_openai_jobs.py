"""The OpenAI simulator's job APIs (files, batches, fine-tuning) driven by the official openai SDK over real HTTP.

Jobs progress on the simulator's clock; these tests speed it up, or shape the phases through ``POST /_sim/jobs``,
and poll as a real client would. Where a phase boundary matters the assertions use the simulated timestamps, which
do not depend on when a poll happened to land.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import openai
import pytest
from openai.types import Batch, FileObject
from openai.types.fine_tuning import FineTuningJob

from providers.simulators.app import running_simulator
from providers.simulators.controls import SimulatorControls
from providers.simulators.openai_batch_lines import line_failure

# 60 s of validation take 12 ms: a default batch or fine-tune finishes well within a second of real time.
FAST = 5000.0
T = TypeVar("T")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_simulator("openai", clock_speed=FAST) as base:
        yield base


def sdk(base: str, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key="sk-sim", max_retries=options.pop("max_retries", 0), **options)


def configure(base: str, **settings: float | None) -> None:
    response = httpx.post(base + "/_sim/jobs", json=settings)
    assert response.status_code == 200, response.text


def wait_until(fetch: Callable[[], T], done: Callable[[T], bool], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"gave up waiting; last seen: {value}"
        time.sleep(0.01)


def request_line(custom_id: str, text: str, url: str = "/v1/chat/completions", **body: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": text}]
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": {"model": "gpt-4o-mini", "messages": messages, **body},
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def upload(client: openai.OpenAI, data: bytes, purpose: str = "batch", name: str = "input.jsonl") -> FileObject:
    return client.files.create(file=(name, data), purpose=purpose)  # type: ignore[arg-type]


def run_batch(client: openai.OpenAI, lines: bytes) -> Batch:
    source = upload(client, lines)
    batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "validating" and batch.input_file_id == source.id
    return batch


def finished(statuses: set[str]) -> Callable[[Any], bool]:
    return lambda job: job.status in statuses


def read_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    assert client.files.retrieve(file_id).purpose == "batch_output"
    return [json.loads(line) for line in client.files.content(file_id).content.splitlines()]


# --- files -------------------------------------------------------------------------------------------------------


def test_files_crud_with_purpose_filter_and_cursor_pages(url: str) -> None:
    client = sdk(url)
    tag = str(time.monotonic_ns())
    uploaded = [upload(client, f"{tag}-{i}".encode(), "user_data", f"f{i}.txt") for i in range(5)]
    other = upload(client, b"{}\n", "fine-tune", "train.jsonl")
    first = uploaded[0]
    assert (first.object, first.bytes, first.filename, first.purpose, first.status) == (
        "file",
        len(f"{tag}-0"),
        "f0.txt",
        "user_data",
        "processed",
    )
    assert client.files.retrieve(first.id) == first
    assert client.files.content(first.id).content == f"{tag}-0".encode()

    page = client.files.list(purpose="user_data", limit=2)
    assert len(page.data) == 2 and page.has_more
    everything = [f.id for f in client.files.list(purpose="user_data", limit=2)]  # the SDK follows `after`
    ours = [f.id for f in uploaded]
    assert [i for i in everything if i in ours] == ours[::-1]  # newest first
    ascending = [f.id for f in client.files.list(purpose="user_data", order="asc")]
    assert [i for i in ascending if i in ours] == ours
    assert other.id not in everything

    deleted = client.files.delete(first.id)
    assert deleted.deleted and deleted.id == first.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(first.id)
    with pytest.raises(openai.BadRequestError, match="purpose"):
        upload(client, b"x", "nonsense")
    with pytest.raises(openai.BadRequestError, match="after"):
        client.files.list(after="file-unknown")


# --- batches -----------------------------------------------------------------------------------------------------


def test_a_batch_completes_with_output_and_error_files_matching_its_lines(url: str) -> None:
    client = sdk(url)
    good = [f"ok-{i}" for i in range(6)]
    lines = [request_line(cid, f"question {cid}") for cid in good]
    lines += [request_line("will-fail", "x"), request_line("fail-500", "y")]
    lines += [{**request_line("bad-body", "z"), "body": {"model": "gpt-4o-mini"}}]  # no messages: a per-line 400
    lines += [request_line("streamed", "s", stream=True)]
    batch = run_batch(client, jsonl(lines))

    done = wait_until(lambda: client.batches.retrieve(batch.id), finished({"completed", "failed"}))
    assert done.status == "completed", done.errors
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (10, 6, 4)
    assert done.created_at <= done.in_progress_at <= done.finalizing_at <= done.completed_at
    assert done.usage is not None and done.usage.total_tokens > 0

    output = read_lines(client, done.output_file_id)
    assert sorted(line["custom_id"] for line in output) == sorted(good)
    for line in output:
        assert line["error"] is None and line["id"].startswith("batch_req_")
        assert line["response"]["status_code"] == 200 and line["response"]["request_id"]
        body = line["response"]["body"]
        assert body["object"] == "chat.completion" and body["model"] == "gpt-4o-mini"
        assert body["choices"][0]["message"]["content"] == f"Simulated reply to: question {line['custom_id']}"

    errors = {line["custom_id"]: line for line in read_lines(client, done.error_file_id)}
    assert set(errors) == {"will-fail", "fail-500", "bad-body", "streamed"}
    statuses = {cid: line["response"]["status_code"] for cid, line in errors.items()}
    assert statuses == {"will-fail": 400, "fail-500": 500, "bad-body": 400, "streamed": 400}
    assert "messages" in errors["bad-body"]["response"]["body"]["error"]["message"]
    assert all(line["error"] is None for line in errors.values())

    by_id = httpx.get(url + "/_sim/stats").json()["by_request_id"]
    assert all(by_id[line["custom_id"]] == 1 for line in lines)  # each line processed exactly once
    assert batch.id in [b.id for b in client.batches.list(limit=100)]
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)


def test_batches_list_newest_first_with_a_cursor(url: str) -> None:
    client = sdk(url)
    created = [run_batch(client, jsonl([request_line("only", "hi")])).id for _ in range(3)]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == created[:0:-1] and page.has_more
    following = client.batches.list(limit=2, after=page.data[-1].id)
    assert following.data[0].id == created[0]


def test_cancelling_mid_way_keeps_what_was_processed() -> None:
    with running_simulator("openai", clock_speed=1000) as base:
        client = sdk(base)
        configure(base, batch_validating=0, batch_per_line=50, batch_cancelling=20)  # a line every 50 ms
        lines = [request_line(f"line-{i:02d}", f"q{i}") for i in range(40)]
        batch = run_batch(client, jsonl(lines))
        running = wait_until(
            lambda: client.batches.retrieve(batch.id),
            lambda b: b.request_counts is not None and b.request_counts.completed >= 2,
        )
        assert running.status == "in_progress" and running.output_file_id is None
        cancelling = client.batches.cancel(batch.id)
        assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
        cancelled = wait_until(lambda: client.batches.retrieve(batch.id), finished({"cancelled"}))
        counts = cancelled.request_counts
        assert counts is not None and 2 <= counts.completed < 40 and counts.failed == 0 and counts.total == 40
        output = read_lines(client, cancelled.output_file_id)
        assert [line["custom_id"] for line in output] == [f"line-{i:02d}" for i in range(counts.completed)]
        assert cancelled.error_file_id is None
        assert client.batches.cancel(batch.id).status == "cancelled"  # cancelling again changes nothing


def test_an_invalid_input_file_fails_the_batch_naming_each_line(url: str) -> None:
    client = sdk(url)
    good = json.dumps(request_line("a", "hi"))
    bad_lines = [
        good,
        "{not json",
        json.dumps({**request_line("x", "hi"), "custom_id": None}),
        "",
        json.dumps(request_line("a", "again")),
        json.dumps(request_line("b", "hi", url="/v1/embeddings")),
        json.dumps({**request_line("c", "hi"), "method": "GET"}),
    ]
    batch = run_batch(client, "\n".join(bad_lines).encode())
    failed = wait_until(lambda: client.batches.retrieve(batch.id), finished({"failed", "completed"}))
    assert failed.status == "failed" and failed.failed_at is not None and failed.in_progress_at is None
    assert failed.errors is not None and failed.errors.data is not None
    found = [(e.line, e.code, e.param) for e in failed.errors.data]
    assert found == [
        (2, "invalid_json_line", None),
        (3, "missing_required_parameter", "custom_id"),
        (5, "duplicate_custom_id", "custom_id"),
        (6, "invalid_url", "url"),
        (7, "invalid_method", "method"),
    ]
    assert failed.output_file_id is None and failed.error_file_id is None

    wrong_purpose = upload(client, jsonl([request_line("a", "hi")]), "user_data")
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.batches.create(input_file_id=wrong_purpose.id, endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        client.batches.create(input_file_id=wrong_purpose.id, endpoint="/v1/videos", completion_window="24h")


def test_a_batch_past_its_window_expires_with_the_rest_in_the_error_file() -> None:
    with running_simulator("openai", clock_speed=FAST) as base:
        client = sdk(base)
        # Lines finish at 10, 20 and 30 s; the window closes at 35 s, before the fourth.
        configure(base, batch_validating=0, batch_per_line=10, batch_window=35)
        batch = run_batch(client, jsonl([request_line(f"r{i}", "q") for i in range(6)]))
        expired = wait_until(lambda: client.batches.retrieve(batch.id), finished({"expired", "completed"}))
        assert expired.status == "expired" and expired.expired_at == expired.created_at + 35
        assert expired.request_counts is not None
        assert (expired.request_counts.completed, expired.request_counts.failed) == (3, 3)
        assert [line["custom_id"] for line in read_lines(client, expired.output_file_id)] == ["r0", "r1", "r2"]
        cut_off = read_lines(client, expired.error_file_id)
        assert [line["custom_id"] for line in cut_off] == ["r3", "r4", "r5"]
        assert all(line["response"] is None and line["error"]["code"] == "batch_expired" for line in cut_off)


def test_the_seeded_fail_rate_fails_the_lines_it_predicts() -> None:
    settings: dict[str, Any] = {"fail_rate": 0.3, "seed": 11, "fail_status": 503, "retry_after": 0.001}
    with running_simulator("openai", clock_speed=FAST, **settings) as base:
        # The same rate fails HTTP requests too: the SDK retries them (1 ms apart, as Retry-After says).
        client = sdk(base, max_retries=30)
        ids = [f"item-{i}" for i in range(30)]
        batch = run_batch(client, jsonl([request_line(cid, "q") for cid in ids]))
        done = wait_until(lambda: client.batches.retrieve(batch.id), finished({"completed"}))
        expected = {cid for cid in ids if line_failure(cid, SimulatorControls(**settings), 0) is not None}
        assert 0 < len(expected) < len(ids)
        errors = read_lines(client, done.error_file_id)
        assert {line["custom_id"] for line in errors} == expected
        assert {line["response"]["status_code"] for line in errors} == {503}
        assert {line["custom_id"] for line in read_lines(client, done.output_file_id)} == set(ids) - expected


# --- fine-tuning -------------------------------------------------------------------------------------------------


def example(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": f"question number {i}"},
            {"role": "assistant", "content": f"answer {i}"},
        ]
    }


def training_file(client: openai.OpenAI, examples: list[dict[str, Any]]) -> str:
    return upload(client, jsonl(examples), "fine-tune", "train.jsonl").id


def test_a_fine_tune_runs_to_a_model_that_chat_serves(url: str) -> None:
    client = sdk(url)
    train, valid = training_file(client, [example(i) for i in range(10)]), training_file(client, [example(0)] * 10)
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18",
        training_file=train,
        validation_file=valid,
        suffix="demo",
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
        metadata={"team": "sim"},
    )
    assert job.status == "validating_files" and job.fine_tuned_model is None
    assert job.hyperparameters.n_epochs == 2 and job.hyperparameters.batch_size == "auto"

    done = wait_until(lambda: client.fine_tuning.jobs.retrieve(job.id), finished({"succeeded", "failed"}))
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model == f"ft:gpt-4o-mini-2024-07-18:portico-sim:demo:{job.id[-8:]}"
    assert done.hyperparameters.batch_size == 1 and done.trained_tokens == 2 * 10 * (3 + 3 + 2)
    assert done.finished_at == job.created_at + 60 + 60 + 20 * 10

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=7))  # newest first, over several pages
    assert [e.created_at for e in events] == sorted((e.created_at for e in events), reverse=True)
    assert len({e.id for e in events}) == len(events)
    messages = [e.message for e in reversed(events) if e.type == "message"]
    assert messages[:4] == [
        f"Created fine-tuning job: {job.id}",
        f"Validating training file: {train}",
        "Files validated, moving job to queued state",
        "Fine-tuning job started",
    ]
    assert messages[-2:] == [
        f"New fine-tuned model created: {done.fine_tuned_model}",
        "The job has successfully completed",
    ]
    steps = [e for e in reversed(events) if e.type == "metrics"]
    assert [e.data["step"] for e in steps] == list(range(1, 21))  # type: ignore[index]
    assert steps[-1].data["valid_loss"] > steps[-1].data["train_loss"]  # type: ignore[index]

    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [20, 10]  # one per epoch, newest first
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-20"
    assert checkpoints[0].metrics.full_valid_loss is not None

    results = client.files.retrieve(done.result_files[0])
    assert results.purpose == "fine-tune-results"
    csv = client.files.content(results.id).content.decode().splitlines()
    assert csv[0].startswith("step,train_loss") and len(csv) == 21

    assert done.fine_tuned_model in [m.id for m in client.models.list()]
    assert client.models.retrieve(done.fine_tuned_model).id == done.fine_tuned_model
    reply = client.chat.completions.create(model=done.fine_tuned_model, messages=[{"role": "user", "content": "hello"}])
    assert reply.model == done.fine_tuned_model and reply.choices[0].message.content == "Simulated reply to: hello"
    assert job.id in [j.id for j in client.fine_tuning.jobs.list(metadata={"team": "sim"})]
    assert job.id not in [j.id for j in client.fine_tuning.jobs.list(metadata={"team": "other"})]
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.cancel(job.id)


def test_an_invalid_training_file_fails_the_job(url: str) -> None:
    client = sdk(url)
    examples = [example(i) for i in range(10)]
    examples[2] = {"messages": [{"role": "user", "content": "no answer to learn"}]}
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training_file(client, examples))
    failed: FineTuningJob = wait_until(
        lambda: client.fine_tuning.jobs.retrieve(job.id), finished({"failed", "succeeded"})
    )
    assert failed.status == "failed" and failed.error is not None
    assert (failed.error.code, failed.error.param) == ("invalid_training_file", "training_file")
    assert "Line 3" in failed.error.message and failed.fine_tuned_model is None

    few = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training_file(client, examples[3:6]))
    too_few = wait_until(lambda: client.fine_tuning.jobs.retrieve(few.id), finished({"failed", "succeeded"}))
    assert too_few.error is not None and "at least 10" in too_few.error.message

    batch_file = upload(client, jsonl([example(0)]), "batch")
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=batch_file.id)
    with pytest.raises(openai.BadRequestError, match="n_epochs"):
        client.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=training_file(client, examples), hyperparameters={"n_epochs": 0}
        )


def test_cancelling_a_running_fine_tune_keeps_its_checkpoints() -> None:
    with running_simulator("openai", clock_speed=1000) as base:
        client = sdk(base)
        configure(base, tune_validating=0, tune_queued=0, tune_per_step=20)  # a step every 20 ms
        train = training_file(client, [example(i) for i in range(10)])
        job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=train)
        wait_until(lambda: client.fine_tuning.jobs.checkpoints.list(job.id).data, bool)  # epoch 1 done
        cancelled = client.fine_tuning.jobs.cancel(job.id)
        assert cancelled.status == "cancelled" and cancelled.fine_tuned_model is None
        kept = client.fine_tuning.jobs.checkpoints.list(job.id).data
        assert kept and kept[-1].step_number == 10
        time.sleep(0.1)  # no further steps after the cancel
        after = client.fine_tuning.jobs.list_events(job.id, limit=1).data
        assert after[0].message == "Fine-tuning job cancelled"
        assert cancelled.fine_tuned_model not in [m.id for m in client.models.list()]


def test_job_settings_are_checked(url: str) -> None:
    defaults = httpx.get(url + "/_sim/jobs").json()
    assert defaults["batch_validating"] == 60 and defaults["batch_window"] is None
    assert httpx.post(url + "/_sim/jobs", json={"nope": 1}).status_code == 400
    assert httpx.post(url + "/_sim/jobs", json={"tune_per_step": -1}).status_code == 400
