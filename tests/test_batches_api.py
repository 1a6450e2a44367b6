"""The Batch API's edges through the official `openai` SDK: bad input is refused with the field and the rule, and
leaves no batch behind (and sends nothing upstream); `Idempotency-Key` replays, refuses reuse with another body,
and turns concurrent duplicates into one object; workspaces never see each other's batches."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from providers.simulators.app import running_simulator
from tests.conftest import STACKS, stack_settings
from tests.support.inspect import stored_blob_keys
from tests.support.keys import WorkspaceKey, create_workspace_key
from tests.support.server import RunningPortico, run_portico

CHAT = "/v1/chat/completions"


def batch_file(count: int, url: str = CHAT) -> bytes:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": url, "body": body} for i in range(count)]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


class Tenant:
    def __init__(self, portico: RunningPortico, key: WorkspaceKey, virtual_key: str) -> None:
        self.portico = portico
        self.key = key
        self.virtual_key = virtual_key
        self.sdk = openai.OpenAI(
            base_url=portico.api,
            api_key=key.key,
            default_headers={"x-portkey-virtual-key": virtual_key},
            max_retries=0,
        )

    def upload(self, data: bytes, purpose: Any = "batch") -> str:
        return self.sdk.files.create(file=("in.jsonl", data), purpose=purpose).id

    def batch_ids(self) -> list[str]:
        return [b.id for b in self.sdk.batches.list(limit=100)]


def new_tenant(portico: RunningPortico, simulator: str) -> Tenant:
    key = create_workspace_key(portico, ("completions.write", "virtual_keys.create"))
    created = httpx.post(
        f"{portico.api}/virtual-keys",
        json={"name": "sim", "provider": "openai", "key": "sk-sim", "customHost": f"{simulator}/v1"},
        headers={"x-portkey-api-key": key.key},
    )
    assert created.status_code == 200, created.text
    return Tenant(portico, key, created.json()["data"]["slug"])


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    with running_simulator("openai") as url:
        yield url


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, simulator: str
) -> Iterator[RunningPortico]:
    settings = stack_settings(
        request, STACKS["sqlite-local"], tmp_path_factory.mktemp("batches-api"), custom_host_allowlist=["127.0.0.1"]
    )
    with run_portico(settings, worker=True) as portico:
        yield portico


@pytest.fixture(scope="module")
def tenant(served: RunningPortico, simulator: str) -> Tenant:
    return new_tenant(served, simulator)


def refused(call: Any) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    return caught.value


def error_of(failure: openai.APIStatusError) -> dict[str, Any]:
    body = failure.response.json()
    return dict(body["error"])


def test_bad_input_names_the_field_and_leaves_no_batch(tenant: Tenant, served: RunningPortico, simulator: str) -> None:
    good = tenant.upload(batch_file(2))
    tuning = tenant.upload(
        b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n', "fine-tune"
    )
    other = new_tenant(served, simulator)
    foreign = other.upload(batch_file(2))
    before = httpx.get(f"{simulator}/_sim/stats").json()["total"]
    cases: list[tuple[dict[str, Any], dict[str, str], int, str, str]] = [
        ({"input_file_id": "file-missing"}, {}, 404, "input_file_id", "not_found"),
        ({"input_file_id": foreign}, {}, 404, "input_file_id", "not_found"),
        ({"input_file_id": tuning}, {}, 400, "input_file_id", "invalid_file_purpose"),
        ({"input_file_id": good, "endpoint": "/v1/images/generations"}, {}, 400, "endpoint", "invalid_arguments"),
        ({"input_file_id": good, "endpoint": "/v1/embeddings"}, {}, 400, "endpoint", "endpoint_mismatch"),
        ({"input_file_id": good, "completion_window": "1h"}, {}, 400, "completion_window", "invalid_arguments"),
        (
            {"input_file_id": good},
            {"x-portkey-virtual-key": "no-such-key"},
            404,
            "x-portkey-virtual-key",
            "unknown_virtual_key",
        ),
        ({"input_file_id": good}, {"x-portkey-virtual-key": ""}, 400, "x-portkey-virtual-key", "missing_provider"),
    ]
    for overrides, headers, status, param, code in cases:
        arguments: dict[str, Any] = {"endpoint": CHAT, "completion_window": "immediate", **overrides}
        with pytest.raises(openai.APIStatusError) as caught:
            tenant.sdk.batches.create(**arguments, extra_headers=headers)
        failure = caught.value
        error = error_of(failure)
        assert (failure.status_code, error["param"], error["code"]) == (status, param, code), (overrides, error)
        assert error["message"]
    assert tenant.batch_ids() == [] and other.batch_ids() == []
    assert httpx.get(f"{simulator}/_sim/stats").json()["total"] == before, "nothing was sent upstream"


def test_a_malformed_line_is_refused_at_upload_so_no_batch_can_start(tenant: Tenant) -> None:
    data = batch_file(3).replace(b'"custom_id": "r1", ', b"")
    failure = refused(lambda: tenant.upload(data))
    error = error_of(failure)
    assert (failure.status_code, error["code"]) == (400, "missing_custom_id")
    assert "line 2:" in error["message"]


def test_file_idempotency_key_replays_refuses_other_bodies_and_dedupes_concurrency(tenant: Tenant) -> None:
    def upload(data: bytes, key: str) -> openai.types.FileObject:
        return tenant.sdk.files.create(file=("in.jsonl", data), purpose="batch", extra_headers={"Idempotency-Key": key})

    first = upload(batch_file(2), "file-key-1")
    assert upload(batch_file(2), "file-key-1") == first
    failure = refused(lambda: upload(batch_file(3), "file-key-1"))
    assert (failure.status_code, error_of(failure)["code"]) == (409, "idempotency_key_reused")

    files_before = len(tenant.sdk.files.list(limit=1000).data)
    blobs_before = len(stored_blob_keys(tenant.portico.settings))
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(upload(batch_file(4), "file-key-2").id)) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and len(set(results)) == 1
    assert len(tenant.sdk.files.list(limit=1000).data) == files_before + 1
    assert len(stored_blob_keys(tenant.portico.settings)) == blobs_before + 1, "replayed uploads keep no bytes"


def test_batch_idempotency_key_replays_refuses_other_bodies_and_dedupes_concurrency(tenant: Tenant) -> None:
    source = tenant.upload(batch_file(2))

    def create(key: str, window: Any = "immediate") -> openai.types.Batch:
        return tenant.sdk.batches.create(
            input_file_id=source, endpoint=CHAT, completion_window=window, extra_headers={"Idempotency-Key": key}
        )

    first = create("batch-key-1")
    assert create("batch-key-1").id == first.id
    failure = refused(lambda: create("batch-key-1", "24h"))
    assert (failure.status_code, error_of(failure)["code"]) == (409, "idempotency_key_reused")

    before = len(tenant.batch_ids())
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(create("batch-key-2").id)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and len(set(results)) == 1
    assert len(tenant.batch_ids()) == before + 1


def test_workspaces_never_see_each_others_batches(tenant: Tenant, served: RunningPortico, simulator: str) -> None:
    mine = tenant.sdk.batches.create(
        input_file_id=tenant.upload(batch_file(1)), endpoint=CHAT, completion_window="immediate"
    )
    other = new_tenant(served, simulator)
    for call in (
        lambda: other.sdk.batches.retrieve(mine.id),
        lambda: other.sdk.batches.cancel(mine.id),
        lambda: other.sdk.get(f"/batches/{mine.id}/output", cast_to=httpx.Response),
    ):
        assert refused(call).status_code == 404
    assert mine.id not in other.batch_ids()
    # A cursor naming another workspace's batch is no anchor: the listing is the same as without it.
    assert [b.id for b in other.sdk.batches.list(after=mine.id)] == other.batch_ids()


def test_cancelling_a_batch_as_it_starts_always_succeeds(tenant: Tenant) -> None:
    # A cancel sent right after create races the worker moving the batch (validating -> in_progress): whichever
    # state it finds, the cancel must land rather than answer "changed state meanwhile".
    # The cancel is sent 0-78 ms after the create, so some land while the worker's plan step is mid-flight.
    source = tenant.upload(batch_file(3))
    ids = []
    for delay_ms in range(0, 80, 2):
        created = tenant.sdk.batches.create(input_file_id=source, endpoint=CHAT, completion_window="immediate")
        time.sleep(delay_ms / 1000)
        cancelled = tenant.sdk.batches.cancel(created.id)
        assert cancelled.status in ("cancelling", "cancelled"), (delay_ms, cancelled.status)
        ids.append(created.id)
    # And none is left stuck half-way: every one ends cancelled.
    deadline = time.monotonic() + 60
    left = set(ids)
    while left and time.monotonic() < deadline:
        left = {batch_id for batch_id in left if tenant.sdk.batches.retrieve(batch_id).status != "cancelled"}
        time.sleep(0.2)
    assert not left, {batch_id: tenant.sdk.batches.retrieve(batch_id).status for batch_id in left}
