"""Gateway-managed batches (`completion_window: "immediate"`) end to end, with the official `openai` SDK against the
real app and its arq worker, Redis, SQLite/PostgreSQL, local/S3/GCS blobs and the OpenAI, Bedrock and Vertex
simulators. The simulators count every request by its `X-Client-Request-Id` (`<batch_id>:<custom_id>`), which is
how these tests know how often each line was sent.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import openai
import pytest
import redis

from batch.managed.split import Splitter
from portico.settings import BatchSettings
from providers.simulators.app import running_simulator
from tests.conftest import STACKS, stack_settings
from tests.support.batches import (
    CHAT,
    chat_line,
    jsonl,
    logged_requests,
    move_deadline,
    requests_of,
    result_lines,
    sim_stats,
    wait_for,
)
from tests.support.gateway import MODELS, create_vk
from tests.support.keys import create_workspace_key
from tests.support.server import RunningPortico, run_portico

PROVIDERS = ["openai", "bedrock", "vertex-ai"]
MAX_ATTEMPTS = 3
# Small chunks, so every batch here spans several chunk jobs; a short lease and reconcile tick for quick recovery.
BATCH = BatchSettings(chunk_lines=4, concurrency=8, max_attempts=MAX_ATTEMPTS, reconcile_seconds=1, lease_seconds=3)
SLOW_MS = 250


def provider_keys(portico: RunningPortico, sims: dict[str, str]) -> dict[str, str]:
    keys = {
        "openai": create_vk(portico, {"name": "oa", "provider": "openai", "key": "sk-sim"}),
        "bedrock": create_vk(
            portico,
            {
                "name": "br",
                "provider": "bedrock",
                "awsAccessKeyId": "AKIDSIM",
                "awsSecretAccessKey": "secret",
                "awsRegion": "us-east-1",
            },
        ),
        "vertex-ai": create_vk(
            portico,
            {
                "name": "vx",
                "provider": "vertex-ai",
                "vertexProjectId": "sim-project",
                "vertexRegion": "us-central1",
                "key": "ya29.sim",
            },
        ),
    }
    for name in ("flaky", "slow"):
        keys[name] = create_vk(
            portico, {"name": name, "provider": "openai", "key": "sk", "customHost": f"{sims[name]}/v1"}
        )
    return keys


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        yield {
            "openai": stack.enter_context(running_simulator("openai")),
            "bedrock": stack.enter_context(running_simulator("bedrock")),
            "vertex-ai": stack.enter_context(running_simulator("vertex")),
            "flaky": stack.enter_context(running_simulator("openai", fail_rate=0.7, fail_status=500, seed=11)),
            "slow": stack.enter_context(running_simulator("openai", latency_ms=SLOW_MS)),
        }


def endpoints(sims: dict[str, str]) -> dict[str, str]:
    return {"openai": f"{sims['openai']}/v1", "bedrock": sims["bedrock"], "vertex-ai": sims["vertex-ai"]}


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sims: dict[str, str]
) -> Iterator[tuple[RunningPortico, dict[str, str]]]:
    settings = stack_settings(
        request,
        STACKS["sqlite-local"],
        tmp_path_factory.mktemp("managed"),
        provider_endpoints=endpoints(sims),
        custom_host_allowlist=["127.0.0.1"],
        batch=BATCH,
    )
    with run_portico(settings, worker=True) as portico:
        yield portico, provider_keys(portico, sims)


def sdk(portico: RunningPortico, api_key: str | None = None, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=portico.api, api_key=api_key or portico.admin_key, default_headers=headers, max_retries=0
    )


def ids(lines: list[dict[str, Any]]) -> list[str]:
    return sorted(str(line["custom_id"]) for line in lines)


def check_counts(batch: Any, output: list[dict[str, Any]], errors: list[dict[str, Any]]) -> None:
    counts = batch.request_counts
    assert (counts.completed, counts.failed) == (len(output), len(errors)), "request_counts are the files' lines"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_line_runs_once_and_lands_in_the_output_or_error_file(
    served: tuple[RunningPortico, dict[str, str]], sims: dict[str, str], provider: str
) -> None:
    portico, keys = served
    client = sdk(portico, **{"x-portkey-virtual-key": keys[provider]})
    lines = [chat_line(f"{provider}-{i}", MODELS[provider], f"question {i}") for i in range(13)]
    # Refused by every provider (or its translation): a role nobody has.
    lines.insert(6, chat_line(f"{provider}-bad", MODELS[provider], "hello", role="wizard"))
    source = client.files.create(file=("in.jsonl", jsonl(lines, blank_every=3)), purpose="batch")

    created = client.batches.create(input_file_id=source.id, endpoint=CHAT, completion_window="immediate")
    assert created.status == "validating"
    done = wait_for(client, created.id)

    assert done.status == "completed", done
    output, errors = result_lines(client, done.output_file_id), result_lines(client, done.error_file_id)
    assert ids(output + errors) == ids(lines), "one result line per custom_id"
    assert done.request_counts.total == len(lines)
    check_counts(done, output, errors)
    [bad] = errors
    assert bad["custom_id"] == f"{provider}-bad" and bad["error"] is None
    assert bad["response"]["status_code"] == 400 and bad["response"]["body"]["error"]["message"]
    for line in output:
        number = line["custom_id"].rsplit("-", 1)[1]
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200 and line["response"]["request_id"]
        assert line["response"]["body"]["choices"][0]["message"]["content"] == f"Simulated reply to: question {number}"
    sent = requests_of(sims[provider], created.id)
    assert all(sent[line["custom_id"]] == 1 for line in output), "each line was sent exactly once"
    logged = logged_requests(portico.settings, created.id, len(lines))
    assert sorted(row["status"] for row in logged) == [200] * len(output) + [400], "every line is request-logged"
    assert {json.loads(row["metadata"])["custom_id"] for row in logged} == set(ids(lines))


# Each endpoint's request body for a text, and whether the simulator's answer is the one for that text.
OTHER_ENDPOINTS: dict[str, tuple[Callable[[str], dict[str, Any]], Callable[[dict[str, Any], str], bool]]] = {
    "/v1/embeddings": (
        lambda text: {"model": "text-embedding-3-small", "input": text},
        lambda body, text: len(body["data"][0]["embedding"]) == 8,
    ),
    "/v1/completions": (
        lambda text: {"model": "gpt-3.5-turbo-instruct", "prompt": text},
        lambda body, text: body["choices"][0]["text"] == f"Simulated reply to: {text}",
    ),
}


@pytest.mark.parametrize("endpoint", list(OTHER_ENDPOINTS))
def test_portkey_options_in_the_body_route_embeddings_and_completions_batches(
    served: tuple[RunningPortico, dict[str, str]], sims: dict[str, str], endpoint: str
) -> None:
    portico, keys = served
    client = sdk(portico)
    body_for, answered = OTHER_ENDPOINTS[endpoint]
    texts = {f"e{i}": f"text {i}" for i in range(6)}
    lines = [{"custom_id": cid, "method": "POST", "url": endpoint, "body": body_for(t)} for cid, t in texts.items()]
    source = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")

    created = client.batches.create(
        input_file_id=source.id,
        endpoint=endpoint,
        completion_window="immediate",
        extra_body={"portkey_options": {"x-portkey-virtual-key": keys["openai"]}},
    )
    done = wait_for(client, created.id)

    assert done.status == "completed" and done.error_file_id is None
    output = result_lines(client, done.output_file_id)
    assert ids(output) == ids(lines)
    check_counts(done, output, [])
    assert all(answered(line["response"]["body"], texts[line["custom_id"]]) for line in output)
    assert set(requests_of(sims["openai"], created.id).values()) == {1}


def test_injected_failures_are_retried_then_land_in_the_error_file(
    served: tuple[RunningPortico, dict[str, str]], sims: dict[str, str]
) -> None:
    portico, keys = served
    client = sdk(portico, **{"x-portkey-virtual-key": keys["flaky"]})
    lines = [chat_line(f"f{i}", "gpt-4o-mini", f"try {i}") for i in range(20)]
    source = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    before = sim_stats(sims["flaky"])["injected_failures"]

    created = client.batches.create(input_file_id=source.id, endpoint=CHAT, completion_window="immediate")
    done = wait_for(client, created.id)

    assert done.status == "completed"
    output, errors = result_lines(client, done.output_file_id), result_lines(client, done.error_file_id)
    assert ids(output + errors) == ids(lines)
    check_counts(done, output, errors)
    assert output and errors, "with a 70% failure rate over 3 attempts both kinds occur"
    assert all(line["response"]["status_code"] == 500 for line in errors)
    sent = requests_of(sims["flaky"], created.id)
    assert all(sent[line["custom_id"]] == MAX_ATTEMPTS for line in errors), "a failed line used every attempt"
    assert all(1 <= sent[line["custom_id"]] <= MAX_ATTEMPTS for line in output)
    injected = sim_stats(sims["flaky"])["injected_failures"] - before
    assert sum(sent.values()) == len(output) + injected, "every request was a success kept or a failure retried"


class Progress:
    """Every message the job bus publishes for one batch (a Redis subscriber, as the MCP server is one)."""

    def __init__(self, redis_url: str, batch_id: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self._client = redis.Redis.from_url(redis_url)
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(f"portico:jobs:batches:{batch_id}")
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._closing.is_set():
            message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                self.messages.append(json.loads(message["data"]))

    def close(self) -> None:
        self._closing.set()
        self._thread.join()
        self._pubsub.close()
        self._client.close()


def test_cancel_keeps_finished_lines_and_nothing_is_sent_after_cancelled(
    served: tuple[RunningPortico, dict[str, str]], sims: dict[str, str]
) -> None:
    portico, keys = served
    client = sdk(portico, **{"x-portkey-virtual-key": keys["slow"]})
    lines = [chat_line(f"c{i}", "gpt-4o-mini", f"slow {i}") for i in range(160)]
    source = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    created = client.batches.create(input_file_id=source.id, endpoint=CHAT, completion_window="immediate")
    progress = Progress(portico.settings.redis_url, created.id)
    try:
        running = wait_for(client, created.id, {"in_progress"})
        while running.request_counts.completed < 12:
            running = wait_for(client, created.id, {"in_progress"})
        cancelling = client.batches.cancel(created.id)
        assert cancelling.status == "cancelling"
        done = wait_for(client, created.id)
        sent_when_cancelled = sim_stats(sims["slow"])["total"]
        # Long enough for a lease to run out and the reconciler to pass twice: a forgotten runner would show up.
        time.sleep(BATCH.lease_seconds + 2 * BATCH.reconcile_seconds)
    finally:
        progress.close()

    assert done.status == "cancelled" and done.cancelled_at is not None
    output = result_lines(client, done.output_file_id)
    assert 12 <= len(output) < len(lines), "finished lines are kept, the rest never ran"
    check_counts(done, output, [])
    assert done.request_counts.total == len(lines)
    sent = requests_of(sims["slow"], created.id)
    assert sorted(sent) == ids(output) and set(sent.values()) == {1}, "every request sent became a kept line"
    assert sim_stats(sims["slow"])["total"] == sent_when_cancelled
    running_counts = [
        m["batch"]["request_counts"]["completed"] for m in progress.messages if m["status"] == "in_progress"
    ]
    assert any(0 < completed < len(output) for completed in running_counts), "counts were published while running"
    assert progress.messages[-1]["status"] == "cancelled"


def start_slow_batch(
    portico: RunningPortico, key: str, prefix: str, count: int
) -> tuple[openai.OpenAI, str, list[str]]:
    """A batch on the slow simulator, returned once some of its lines have finished."""
    client = sdk(portico, **{"x-portkey-virtual-key": key})
    lines = [chat_line(f"{prefix}{i}", "gpt-4o-mini", f"{prefix} {i}") for i in range(count)]
    source = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    created = client.batches.create(input_file_id=source.id, endpoint=CHAT, completion_window="immediate")
    running = wait_for(client, created.id, {"in_progress"})
    while running.request_counts.completed < 8:
        running = wait_for(client, created.id, {"in_progress"})
    return client, created.id, ids(lines)


def test_past_its_window_a_batch_expires_keeping_what_finished(
    served: tuple[RunningPortico, dict[str, str]], sims: dict[str, str]
) -> None:
    portico, keys = served
    client, batch_id, custom_ids = start_slow_batch(portico, keys["slow"], "x", 120)

    move_deadline(portico.settings, batch_id, int(time.time()) - 1)
    done = wait_for(client, batch_id)

    assert done.status == "expired" and done.expired_at is not None
    output, errors = result_lines(client, done.output_file_id), result_lines(client, done.error_file_id)
    assert ids(output + errors) == custom_ids, "finished lines in the output, the others expired in the error file"
    check_counts(done, output, errors)
    assert output and errors and all(line["error"]["code"] == "batch_expired" for line in errors)
    assert all(line["response"] is None for line in errors)
    assert sorted(requests_of(sims["slow"], batch_id)) == ids(output), "expired lines were never sent"


def test_a_batch_survives_losing_redis(served: tuple[RunningPortico, dict[str, str]], sims: dict[str, str]) -> None:
    portico, keys = served
    client, batch_id, custom_ids = start_slow_batch(portico, keys["slow"], "r", 96)

    # Everything Redis held goes: queue, leases, checkpoints, counters. SQL still has the batch and its chunks.
    redis.Redis.from_url(portico.settings.redis_url).flushdb()
    done = wait_for(client, batch_id)

    assert done.status == "completed"
    output, errors = result_lines(client, done.output_file_id), result_lines(client, done.error_file_id)
    assert ids(output) == custom_ids and errors == [], "one result line per custom_id, none lost or doubled"
    check_counts(done, output, errors)
    sent = requests_of(sims["slow"], batch_id)
    # Lines run again only if their results were lost: checkpoints of the chunks running at the flush (an arq worker
    # runs 10 jobs at a time).
    assert sorted(sent) == custom_ids and sum(sent.values()) - len(custom_ids) <= 10 * BATCH.chunk_lines


def test_another_workspace_can_neither_see_nor_cancel_the_batch(served: tuple[RunningPortico, dict[str, str]]) -> None:
    portico, keys = served
    owner = sdk(portico, **{"x-portkey-virtual-key": keys["slow"]})
    lines = [chat_line(f"w{i}", "gpt-4o-mini", f"mine {i}") for i in range(16)]
    source = owner.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    created = owner.batches.create(input_file_id=source.id, endpoint=CHAT, completion_window="immediate")
    stranger = sdk(portico, create_workspace_key(portico).key)

    with pytest.raises(openai.NotFoundError):
        stranger.batches.cancel(created.id)
    with pytest.raises(openai.NotFoundError):
        stranger.batches.retrieve(created.id)
    assert created.id not in [batch.id for batch in stranger.batches.list()]

    done = wait_for(owner, created.id)
    assert done.status == "completed" and done.request_counts.completed == len(lines)


@pytest.mark.parametrize("stack", ["postgresql-s3", "sqlite-gcs"])
def test_a_managed_batch_on_postgresql_s3_and_gcs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sims: dict[str, str], stack: str
) -> None:
    settings = stack_settings(
        request, STACKS[stack], tmp_path_factory.mktemp(stack), provider_endpoints=endpoints(sims), batch=BATCH
    )
    with run_portico(settings, worker=True) as portico:
        key = create_vk(portico, {"name": "oa", "provider": "openai", "key": "sk-sim"})
        client = sdk(portico, **{"x-portkey-virtual-key": key})
        lines = [chat_line(f"s{i}", "gpt-4o-mini", f"stacked {i}") for i in range(30)]
        lines.append(chat_line("s-bad", "gpt-4o-mini", "x", role="wizard"))
        source = client.files.create(file=("in.jsonl", jsonl(lines, blank_every=7)), purpose="batch")
        created = client.batches.create(input_file_id=source.id, endpoint=CHAT, completion_window="immediate")
        done = wait_for(client, created.id)

        assert done.status == "completed"
        output, errors = result_lines(client, done.output_file_id), result_lines(client, done.error_file_id)
        assert ids(output + errors) == ids(lines) and ids(errors) == ["s-bad"]
        check_counts(done, output, errors)
        assert set(requests_of(sims["openai"], created.id).values()) == {1}


def test_the_splitter_cuts_the_same_chunks_wherever_the_reads_break() -> None:
    data = b'{"a":1}\n\n  \r\n{"b":2}\r\n{"c":3}\n \t\n{"d":4}\n{"e":5}\n{"f":6}'
    expected = None
    for cut in range(1, len(data) + 1):
        splitter = Splitter(2)
        for start in range(0, len(data), cut):
            splitter.feed(data[start : start + cut])
        spans = splitter.finish()
        expected = expected or spans
        assert spans == expected, f"reads of {cut} bytes"
    assert expected is not None
    assert [(s.first_line, s.line_count) for s in expected] == [(1, 2), (5, 2), (8, 2)]
    assert [data[s.start : s.end].count(b"{") for s in expected] == [2, 2, 2]
    assert expected[-1].end == len(data) and all(a.end == b.start for a, b in itertools.pairwise(expected))
