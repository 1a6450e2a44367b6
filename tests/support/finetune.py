"""Fine-tuning end to end: one Portico (with its worker) in front of the OpenAI, Bedrock and Vertex job simulators,
moto's S3 and the GCS emulator, driven with the official `openai` SDK.

The simulators run their jobs' simulated minutes in milliseconds (`clock_speed`); Portico polls every second.
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
from openai.types.fine_tuning import FineTuningJob

from providers.simulators.app import running_simulator
from tests.conftest import BUCKET
from tests.support.gateway import create_vk
from tests.support.native_batches import AWS_KEY, ROLE, VERTEX_KEY, native_settings
from tests.support.server import RunningPortico, run_portico

__all__ = ["BUCKET", "ROLE"]

GPT: Final = "gpt-4o-mini-2024-07-18"
NOVA: Final = "amazon.nova-micro-v1:0"
GEMINI: Final = "gemini-2.0-flash-001"
FINISHED: Final = ("succeeded", "failed", "cancelled")


@dataclass
class TuningStack:
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


def example(n: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You answer in one short sentence."},
            {"role": "user", "content": f"What is {n} plus {n}?"},
            {"role": "assistant", "content": f"{n} plus {n} is {2 * n}."},
        ]
    }


def upload(client: openai.OpenAI, lines: list[dict[str, Any]], purpose: str = "fine-tune") -> str:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return client.files.create(file=("train.jsonl", data), purpose=purpose).id  # type: ignore[arg-type]


def training_file(client: openai.OpenAI, examples: int = 12) -> str:
    return upload(client, [example(n) for n in range(examples)])


def wait_for(
    client: openai.OpenAI, job_id: str, *statuses: str, timeout: float = 60
) -> tuple[FineTuningJob, list[str]]:
    """Retrieve until the job is in one of `statuses`; also returns every (status, provider_status) seen. The timeout
    only stops a broken run from hanging: nothing here measures how long a step takes."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        observed = f"{job.status}/{extra(job, 'provider_status')}"
        if not seen or seen[-1] != observed:
            seen.append(observed)
        if job.status in statuses:
            return job, seen
        assert time.monotonic() < deadline, f"job {job_id} is still {job.status} (seen {seen})"
        time.sleep(0.1)


def extra(job: Any, name: str) -> Any:
    """A Portico field of the job object (provider, provider_status, progress), which the SDK keeps as extras."""
    return (job.model_extra or {}).get(name)


def all_events(client: openai.OpenAI, job_id: str) -> list[Any]:
    """Every event, newest first, paged 5 at a time (so paging itself is exercised)."""
    events: list[Any] = []
    after: str | None = None
    while True:
        page = client.fine_tuning.jobs.list_events(job_id, limit=5, **({"after": after} if after else {}))
        events += page.data
        if len(page.data) < 5:
            return events
        after = page.data[-1].id


def chat_reaches(stack: TuningStack, simulator: str, virtual_key: str, model: str, expected: str) -> None:
    """A chat naming `model` through Portico arrives at the simulator as `expected`."""
    before = stack.stats(simulator)["by_model"].get(expected, 0)
    answer = stack.client(virtual_key).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What is 2 plus 2?"}], max_tokens=16
    )
    assert answer.choices[0].message.content
    assert stack.stats(simulator)["by_model"].get(expected, 0) == before + 1


def tuning_settings(
    request: pytest.FixtureRequest, data_dir: Path, simulators: dict[str, str], stack: str = "sqlite-local"
) -> Any:
    settings = native_settings(request, data_dir, simulators, stack)
    settings.mcp_toolsets = [*settings.mcp_toolsets, "finetune"]
    return settings


def _keys(portico: RunningPortico) -> dict[str, str]:
    return {
        "openai": create_vk(portico, {"name": "oa", "provider": "openai", "key": "sk-sim"}),
        "bedrock": create_vk(portico, {"name": "br", "provider": "bedrock", **AWS_KEY}),
        "bedrock-staged": create_vk(
            portico,
            {"name": "br-staged", "provider": "bedrock", "awsRoleArn": ROLE, "awsS3Bucket": BUCKET, **AWS_KEY},
        ),
        "vertex": create_vk(
            portico, {"name": "vx", "provider": "vertex-ai", "vertexStorageBucketName": BUCKET, **VERTEX_KEY}
        ),
    }


# Every fine-tuning flow on SQLite with local blobs and on PostgreSQL with S3 (event inserts differ by dialect).
@pytest.fixture(scope="module", params=["sqlite-local", "postgresql-s3"])
def tuning(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TuningStack]:
    s3_endpoint = request.getfixturevalue("s3_endpoint")
    request.getfixturevalue("gcs_endpoint")  # sets STORAGE_EMULATOR_HOST for Portico and the Vertex simulator
    with ExitStack() as stack:
        simulators = {
            "openai": stack.enter_context(running_simulator("openai", clock_speed=1000)),
            "bedrock": stack.enter_context(running_simulator("bedrock", clock_speed=5000)),
            "vertex": stack.enter_context(running_simulator("vertex", clock_speed=20_000)),
        }
        httpx.post(f"{simulators['bedrock']}/_sim/bedrock/s3", json={"endpoint_url": s3_endpoint}).raise_for_status()
        settings = tuning_settings(request, tmp_path_factory.mktemp("tuning"), simulators, request.param)
        portico = stack.enter_context(run_portico(settings, worker=True))
        yield TuningStack(portico, simulators, _keys(portico))
