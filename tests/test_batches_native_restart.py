"""A native batch survives its Portico: submitted by one process (API and worker), which then stops while the
provider is still running the job, it is polled and collected by the next process on the same database, and the
provider job is neither lost nor created twice."""

from __future__ import annotations

import httpx
import openai
import pytest

from providers.simulators.app import running_simulator
from tests.conftest import STACKS, stack_settings
from tests.support.gateway import create_vk
from tests.support.native_batches import CHAT, FINISHED, chat_line, counts, extra, read_jsonl, upload, wait_for
from tests.support.server import RunningPortico, run_portico


def sdk(portico: RunningPortico, virtual_key: str) -> openai.OpenAI:
    headers = {"x-portkey-virtual-key": virtual_key}
    return openai.OpenAI(base_url=portico.api, api_key=portico.admin_key, default_headers=headers, max_retries=0)


def test_the_next_portico_finishes_a_batch_the_previous_one_submitted(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with running_simulator("openai", clock_speed=1) as simulator:
        # Real seconds: the job validates for 4 s, so it is still running when the first Portico is gone.
        jobs = {"batch_validating": 4, "batch_per_line": 0.1, "batch_finalizing": 0.2}
        httpx.post(f"{simulator}/_sim/jobs", json=jobs).raise_for_status()
        settings = stack_settings(
            request,
            STACKS["sqlite-local"],
            tmp_path_factory.mktemp("restart"),
            provider_endpoints={"openai": f"{simulator}/v1"},
        )
        settings.batch.poll_seconds = 1
        ids = [f"rs-{n}" for n in range(5)]
        with run_portico(settings, worker=True) as first:
            virtual_key = create_vk(first, {"name": "oa", "provider": "openai", "key": "sk-sim"})
            client = sdk(first, virtual_key)
            source = upload(client, [chat_line(i, "hello") for i in ids])
            batch = client.batches.create(input_file_id=source, endpoint=CHAT, completion_window="24h")
            while extra(batch, "provider_status") is None:
                batch, _ = wait_for(client, batch.id, "validating", "in_progress")
            assert batch.status not in FINISHED
        listed = httpx.get(f"{simulator}/v1/batches", headers={"Authorization": "Bearer x"}).json()["data"]
        assert [b["status"] for b in listed] == ["validating"], "the provider job outlived the first Portico"

        with run_portico(settings, worker=True) as second:
            client = sdk(second, virtual_key)
            done, _ = wait_for(client, batch.id, *FINISHED)
            assert done.status == "completed", done.errors
            assert counts(done).completed == len(ids)
            assert sorted(line["custom_id"] for line in read_jsonl(client, done.output_file_id)) == ids
        listed = httpx.get(f"{simulator}/v1/batches", headers={"Authorization": "Bearer x"}).json()["data"]
        assert len(listed) == 1, "the provider job was created once"
