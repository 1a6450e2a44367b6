"""Provider-native batches end to end: one Portico (with its worker) in front of the OpenAI, Bedrock and Vertex job
simulators, moto's S3 and the GCS emulator, driven with the official `openai` SDK.

Clocks: the `fast` simulators run their jobs' simulated minutes in milliseconds; the `slow` ones keep a job waiting
long enough to cancel it before it starts. Portico polls every second (`poll_seconds=1`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import openai
import pytest
from openai.types import Batch
from openai.types.batch_request_counts import BatchRequestCounts

from providers.simulators.app import running_simulator
from tests.conftest import BUCKET, STACKS, stack_settings
from tests.support.gateway import create_vk
from tests.support.server import RunningPortico, run_portico

CHAT: Final = "/v1/chat/completions"
EMBEDDINGS: Final = "/v1/embeddings"
ROLE = "arn:aws:iam::123456789012:role/PorticoBatch"
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
GEMINI = "gemini-2.0-flash"
FINISHED = ("completed", "failed", "expired", "cancelled")
AWS_KEY = {"awsAccessKeyId": "testing", "awsSecretAccessKey": "testing", "awsRegion": "us-east-1"}
VERTEX_KEY = {"vertexProjectId": "sim-project", "vertexRegion": "us-central1", "key": "ya29.sim"}


@dataclass
class NativeStack:
    portico: RunningPortico
    simulators: dict[str, str]
    keys: dict[str, str]

    def client(self, virtual_key: str | None = None) -> openai.OpenAI:
        headers = {"x-portkey-virtual-key": self.keys[virtual_key]} if virtual_key else {}
        return openai.OpenAI(
            base_url=self.portico.api, api_key=self.portico.admin_key, default_headers=headers, max_retries=0
        )

    def stats(self, simulator: str) -> dict[str, Any]:
        return dict(httpx.get(f"{self.simulators[simulator]}/_sim/stats").json())

    def requests_to(self, simulator: str) -> int:
        return int(self.stats(simulator)["total"])


def chat_line(custom_id: str, text: str, *, system: str | None = None, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    body = {"model": "gpt-4o-mini", "messages": messages, "max_tokens": 32, **extra}
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}


def embedding_line(custom_id: str, text: str) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": EMBEDDINGS, "body": {"model": TITAN, "input": text}}


def upload(client: openai.OpenAI, lines: list[dict[str, Any]]) -> str:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return client.files.create(file=("input.jsonl", data), purpose="batch").id


def wait_for(client: openai.OpenAI, batch_id: str, *statuses: str, timeout: float = 60) -> tuple[Batch, list[str]]:
    """Retrieve until the batch is in one of `statuses`; also returns every status seen, in order. The timeout only
    stops a broken run from hanging: nothing here measures how long a step takes."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if not seen or seen[-1] != batch.status:
            seen.append(batch.status)
        if batch.status in statuses:
            return batch, seen
        assert time.monotonic() < deadline, f"batch {batch_id} is still {batch.status} (seen {seen})"
        time.sleep(0.1)


def read_jsonl(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines() if line]


def counts(batch: Batch) -> BatchRequestCounts:
    assert batch.request_counts is not None
    return batch.request_counts


def extra(batch: Batch, name: str) -> Any:
    """A Portico field of the Batch object (mode, provider, provider_status), which the SDK keeps as extras."""
    return (batch.model_extra or {}).get(name)


def native_settings(
    request: pytest.FixtureRequest, data_dir: Path, simulators: dict[str, str], stack: str = "sqlite-local"
) -> Any:
    settings = stack_settings(
        request,
        STACKS[stack],
        data_dir,
        provider_endpoints={
            "openai": f"{simulators['openai']}/v1",
            "bedrock": simulators["bedrock"],
            "vertex-ai": simulators["vertex"],
        },
        custom_host_allowlist=["127.0.0.1"],
    )
    settings.batch.poll_seconds = 1
    settings.batch.s3_endpoint_url = request.getfixturevalue("s3_endpoint")
    return settings


def _virtual_keys(portico: RunningPortico, simulators: dict[str, str]) -> dict[str, str]:
    return {
        "openai": create_vk(portico, {"name": "oa", "provider": "openai", "key": "sk-sim"}),
        "openai-slow": create_vk(
            portico,
            {"name": "oa-slow", "provider": "openai", "key": "sk-sim", "customHost": f"{simulators['openai-slow']}/v1"},
        ),
        "openai-down": create_vk(
            portico,
            {"name": "oa-down", "provider": "openai", "key": "sk-sim", "customHost": f"{simulators['openai-down']}/v1"},
        ),
        "bedrock": create_vk(portico, {"name": "br", "provider": "bedrock", **AWS_KEY}),
        # Everything a Bedrock batch needs, on the key itself.
        "bedrock-staged": create_vk(
            portico,
            {"name": "br-staged", "provider": "bedrock", "awsRoleArn": ROLE, "awsS3Bucket": BUCKET, **AWS_KEY},
        ),
        "vertex": create_vk(portico, {"name": "vx", "provider": "vertex-ai", **VERTEX_KEY}),
    }


@pytest.fixture(scope="module")
def native(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    s3_endpoint = request.getfixturevalue("s3_endpoint")
    request.getfixturevalue("gcs_endpoint")  # sets STORAGE_EMULATOR_HOST for Portico and the Vertex simulator
    with ExitStack() as stack:
        simulators = {
            "openai": stack.enter_context(running_simulator("openai", clock_speed=1000)),
            "openai-slow": stack.enter_context(running_simulator("openai", clock_speed=1)),
            # Answers every request with a 503: a provider that never gets a job.
            "openai-down": stack.enter_context(running_simulator("openai", fail_rate=1.0, fail_status=503)),
            "bedrock": stack.enter_context(running_simulator("bedrock", clock_speed=5000)),
            "vertex": stack.enter_context(running_simulator("vertex", clock_speed=20_000)),
        }
        httpx.post(f"{simulators['bedrock']}/_sim/bedrock/s3", json={"endpoint_url": s3_endpoint}).raise_for_status()
        # The slow OpenAI simulator keeps a batch validating for ten minutes, and cancels it in two seconds.
        slow_jobs = {"batch_validating": 600, "batch_cancelling": 2}
        httpx.post(f"{simulators['openai-slow']}/_sim/jobs", json=slow_jobs).raise_for_status()
        settings = native_settings(request, tmp_path_factory.mktemp("native"), simulators)
        portico = stack.enter_context(run_portico(settings, worker=True))
        yield NativeStack(portico, simulators, _virtual_keys(portico, simulators))
