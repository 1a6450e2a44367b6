"""Fine-tuning jobs survive their Portico: created by one process (API and worker) on OpenAI, Bedrock and Vertex,
which then stops while the providers are still training, they are followed to `succeeded` by the next process on the
same database and Redis; each provider job is created once, and no event is recorded twice."""

from __future__ import annotations

from contextlib import ExitStack

import httpx
import pytest

from providers.simulators.app import running_simulator
from tests.support.finetune import (
    BUCKET,
    FINISHED,
    GEMINI,
    GPT,
    NOVA,
    ROLE,
    TuningStack,
    _keys,
    all_events,
    extra,
    training_file,
    tuning_settings,
    wait_for,
)
from tests.support.server import run_portico


def test_the_next_portico_finishes_the_jobs_the_previous_one_started(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    s3_endpoint = request.getfixturevalue("s3_endpoint")
    request.getfixturevalue("gcs_endpoint")
    with ExitStack() as stack:
        # Slow enough clocks that every job is still training when the first Portico is gone (a few real seconds).
        simulators = {
            "openai": stack.enter_context(running_simulator("openai", clock_speed=1)),
            "bedrock": stack.enter_context(running_simulator("bedrock", clock_speed=150)),
            "vertex": stack.enter_context(running_simulator("vertex", clock_speed=250)),
        }
        jobs = {"tune_validating": 3, "tune_queued": 0.5, "tune_per_step": 0.05}
        httpx.post(f"{simulators['openai']}/_sim/jobs", json=jobs).raise_for_status()
        httpx.post(f"{simulators['bedrock']}/_sim/bedrock/s3", json={"endpoint_url": s3_endpoint}).raise_for_status()
        settings = tuning_settings(request, tmp_path_factory.mktemp("ft-restart"), simulators)

        with run_portico(settings, worker=True) as first:
            first_stack = TuningStack(first, simulators, _keys(first))
            keys = first_stack.keys
            client = first_stack.client()
            created = [
                first_stack.client("openai").fine_tuning.jobs.create(model=GPT, training_file=training_file(client)),
                client.fine_tuning.jobs.create(
                    model=NOVA,
                    training_file=training_file(client),
                    extra_body={
                        "role_arn": ROLE,
                        "portkey_options": {
                            "x-portkey-virtual-key": keys["bedrock"],
                            "x-portkey-aws-s3-bucket": BUCKET,
                        },
                    },
                ),
                first_stack.client("vertex").fine_tuning.jobs.create(model=GEMINI, training_file=training_file(client)),
            ]
            for job in created:
                while extra(job, "provider_job_id") is None:
                    job, _ = wait_for(client, job.id, "validating_files", "queued", "running")
                assert job.status not in FINISHED, f"{job.id} finished before the restart"
            before = {job.id: [e.id for e in all_events(client, job.id)] for job in created}

        with run_portico(settings, worker=True) as second:
            client = TuningStack(second, simulators, keys).client()
            for job in created:
                done, _ = wait_for(client, job.id, *FINISHED)
                assert done.status == "succeeded", (job.id, done.error)
                assert done.fine_tuned_model
                events = all_events(client, job.id)
                ids = [event.id for event in events]
                assert len(ids) == len(set(ids))
                assert set(before[job.id]) <= set(ids), "the first process's events are kept"
                keyed = [(event.created_at, event.message) for event in events]
                assert len(keyed) == len(set(keyed)), f"an event was recorded twice: {keyed}"

        listed = httpx.get(f"{simulators['openai']}/v1/fine_tuning/jobs", headers={"Authorization": "Bearer x"})
        assert len(listed.json()["data"]) == 1, "the OpenAI job was created once"
        customizations = TuningStack(second, simulators, keys).stats("bedrock")["by_route"]
        assert customizations.get("CreateModelCustomizationJob") == 1, "the Bedrock job was created once"
