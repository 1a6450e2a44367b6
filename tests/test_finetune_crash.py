"""Fine-tuning jobs survive SIGKILL: the API (`portico serve`) and the worker (`portico worker`) run as real
processes, and both process groups are killed with SIGKILL while jobs on OpenAI, Bedrock (moto S3) and Vertex (GCS
emulator) are training, with events recorded. Fresh processes on the same database and Redis then follow every job
to `succeeded` with its `fine_tuned_model`; each provider job was created once, and no event was recorded twice or
lost. Also: `Idempotency-Key` on create, through the official `openai` SDK.

The kill lands between two steps (`PorticoProcesses.quiesced_kill`). A step killed half-way holds its job for at
least its lease (60 s, by design), and today for arq's in-progress timeout (~610 s): the cron re-queues the same
`ftjob:<id>:poll:<poll_count>` id, which arq drops while the dead run's keys live. Too long for a test here.
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import SecretStr

from providers.simulators.app import running_simulator
from tests.support.finetune import (
    BUCKET,
    FINISHED,
    GPT,
    NOVA,
    ROLE,
    TuningStack,
    _keys,
    all_events,
    extra,
    training_file,
    tuning,
    tuning_settings,
    wait_for,
)
from tests.support.finetune_processes import PorticoProcesses
from tests.support.server import ADMIN_KEY

__all__ = ["tuning"]

GEMINI = "gemini-2.0-flash-001"
# Events each job has before the kill: Portico's "created" and at least two from the provider's job.
EVENTS_BEFORE_KILL = 3


def _create_jobs(stack: TuningStack) -> dict[str, str]:
    client = stack.client()
    bedrock = {
        "role_arn": ROLE,
        "portkey_options": {"x-portkey-virtual-key": stack.keys["bedrock"], "x-portkey-aws-s3-bucket": BUCKET},
    }
    return {
        "openai": stack.client("openai").fine_tuning.jobs.create(model=GPT, training_file=training_file(client)).id,
        "bedrock": client.fine_tuning.jobs.create(
            model=NOVA, training_file=training_file(client), extra_body=bedrock
        ).id,
        "vertex": stack.client("vertex").fine_tuning.jobs.create(model=GEMINI, training_file=training_file(client)).id,
    }


def _mid_way(client: openai.OpenAI, job_id: str) -> list[Any]:
    """Wait until the job trains at its provider with events recorded; returns its events then."""
    while True:
        job, _ = wait_for(client, job_id, "running", *FINISHED)
        assert job.status == "running", f"{job_id} ended ({job.status}) before the kill: slow the simulator down"
        events = all_events(client, job_id)
        if len(events) >= EVENTS_BEFORE_KILL:
            return events


def _provider_events(simulator: str, provider_job_id: str) -> list[tuple[int, str]]:
    page = httpx.get(
        f"{simulator}/v1/fine_tuning/jobs/{provider_job_id}/events",
        params={"limit": 100},
        headers={"Authorization": "Bearer sk-sim"},
    )
    page.raise_for_status()
    assert not page.json()["has_more"]
    return [(event["created_at"], event["message"]) for event in page.json()["data"]]


def test_jobs_finish_without_duplicates_after_the_api_and_worker_are_killed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    s3_endpoint = request.getfixturevalue("s3_endpoint")
    request.getfixturevalue("gcs_endpoint")  # STORAGE_EMULATOR_HOST, inherited by the Portico processes
    with ExitStack() as stack:
        # Clocks: each job trains for ~15 real seconds, so all are mid-way at the kill and still training for a
        # while after the restart (OpenAI: 36 steps of 0.5 s; Bedrock: 480 simulated s; Vertex: 960).
        simulators = {
            "openai": stack.enter_context(running_simulator("openai", clock_speed=1)),
            "bedrock": stack.enter_context(running_simulator("bedrock", clock_speed=30)),
            "vertex": stack.enter_context(running_simulator("vertex", clock_speed=60)),
        }
        timings = {"tune_validating": 1, "tune_queued": 0.5, "tune_per_step": 0.5}
        httpx.post(f"{simulators['openai']}/_sim/jobs", json=timings).raise_for_status()
        httpx.post(f"{simulators['bedrock']}/_sim/bedrock/s3", json={"endpoint_url": s3_endpoint}).raise_for_status()
        settings = tuning_settings(request, tmp_path_factory.mktemp("ft-crash"), simulators)
        settings.admin_api_key = SecretStr(ADMIN_KEY)

        first = PorticoProcesses(settings, tmp_path)
        stack.callback(first.stop)
        crashed = TuningStack(first.start(), simulators, {})
        crashed.keys = _keys(crashed.portico)
        jobs = _create_jobs(crashed)
        client = crashed.client()
        before = {provider: _mid_way(client, job_id) for provider, job_id in jobs.items()}
        first.quiesced_kill()
        assert not first.api.running and not first.worker.running

        second = PorticoProcesses(settings, tmp_path)
        stack.callback(second.stop)
        restarted = TuningStack(second.start(), simulators, crashed.keys)
        client = restarted.client()
        for provider, job_id in jobs.items():
            done, seen = wait_for(client, job_id, *FINISHED)
            assert done.status == "succeeded", (provider, done.error, seen)
            assert done.fine_tuned_model, provider

            events = all_events(client, job_id)
            ids = [event.id for event in events]
            assert len(ids) == len(set(ids)), f"{provider}: an event id twice"
            assert {event.id for event in before[provider]} <= set(ids), f"{provider}: events before the kill kept"
            assert len(events) > len(before[provider]), f"{provider}: the new processes recorded the rest"
            keyed = Counter((event.created_at, event.message) for event in events)
            assert [key for key, count in keyed.items() if count > 1] == [], f"{provider}: an event recorded twice"
            messages = Counter(event.message for event in events)
            assert [m for m, count in messages.items() if count > 1] == [], f"{provider}: a message twice: {events}"

        # The OpenAI job's events are OpenAI's own, mirrored: each exactly once.
        mirrored = Counter(
            (event.created_at, event.message)
            for event in all_events(client, jobs["openai"])
            if event.message != f"Created fine-tuning job: {jobs['openai']}"  # Portico's own
        )
        openai_job = extra(client.fine_tuning.jobs.retrieve(jobs["openai"]), "provider_job_id")
        assert mirrored == Counter(_provider_events(simulators["openai"], openai_job))

        listed = httpx.get(f"{simulators['openai']}/v1/fine_tuning/jobs", headers={"Authorization": "Bearer x"})
        assert len(listed.json()["data"]) == 1, "the OpenAI job was created once"
        assert restarted.stats("openai")["by_route"].get("fine_tuning.jobs.create") == 1
        assert restarted.stats("bedrock")["by_route"].get("CreateModelCustomizationJob") == 1
        assert restarted.stats("vertex")["by_route"].get("tuningJobs.create") == 1


def test_idempotency_key_replays_the_job_and_refuses_another_body(tuning: TuningStack) -> None:
    client = tuning.client("openai")
    source, other = training_file(client), training_file(client, examples=4)
    creates_before = tuning.stats("openai")["by_route"].get("fine_tuning.jobs.create", 0)

    def create(key: str, training: str = source) -> Any:
        return client.fine_tuning.jobs.create(
            model=GPT, training_file=training, suffix="idem", extra_headers={"Idempotency-Key": key}
        )

    first = create("ft-key-1")
    assert create("ft-key-1").id == first.id
    with pytest.raises(openai.APIStatusError) as caught:
        create("ft-key-1", other)
    refused = caught.value
    assert (refused.status_code, refused.response.json()["error"]["code"]) == (409, "idempotency_key_reused")

    # Concurrent duplicates: one job.
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(create("ft-key-2").id)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    second = results[0]
    assert second != first.id

    for job_id in (first.id, second):
        done, _ = wait_for(client, job_id, *FINISHED)
        assert done.status == "succeeded", done.error
    listed = client.fine_tuning.jobs.list(limit=100).data
    suffixed = [job.id for job in listed if job.fine_tuned_model and ":idem:" in job.fine_tuned_model]
    assert sorted(suffixed) == sorted([first.id, second]), "no other job was created with these keys"
    creates = tuning.stats("openai")["by_route"].get("fine_tuning.jobs.create", 0) - creates_before
    assert creates == 2, "one provider job per key"
