"""Fine-tuning on OpenAI through the official `openai` SDK: Portico sends the files and the job to OpenAI (the
simulator), follows it to `succeeded`, mirrors OpenAI's events and checkpoints, and the tuned model answers a chat
sent through Portico with the same virtual key."""

from __future__ import annotations

import httpx

from tests.support.finetune import (
    FINISHED,
    GPT,
    TuningStack,
    all_events,
    chat_reaches,
    extra,
    training_file,
    tuning,
    wait_for,
)

__all__ = ["tuning"]


def test_openai_job_succeeds_with_events_checkpoints_and_a_routable_model(tuning: TuningStack) -> None:
    client = tuning.client("openai")
    source = training_file(client)
    job = client.fine_tuning.jobs.create(
        model=GPT,
        training_file=source,
        suffix="adder",
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4}}},
        metadata={"team": "tuning"},
    )
    assert job.id.startswith("ftjob-") and job.status == "validating_files"
    assert extra(job, "provider") == "openai"

    done, seen = wait_for(client, job.id, *FINISHED)
    assert done.status == "succeeded", done.error
    assert extra(done, "provider_status") == "succeeded"
    assert done.fine_tuned_model and done.fine_tuned_model.startswith(f"ft:{GPT}:portico-sim:adder:")
    assert done.trained_tokens and done.finished_at
    assert done.hyperparameters.n_epochs == 2
    assert all(step.split("/")[0] in ("validating_files", "queued", "running", "succeeded") for step in seen)

    events = all_events(client, job.id)
    ids = [event.id for event in events]
    assert len(ids) == len(set(ids)), "no event twice"
    assert [e.created_at for e in events] == sorted((e.created_at for e in events), reverse=True), "newest first"
    messages = [event.message for event in events]
    assert any(m.startswith("New fine-tuned model created") for m in messages)
    assert any(m.startswith("Step ") for m in messages)
    assert messages[-1] == f"Created fine-tuning job: {job.id}"

    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [6, 3], "one per epoch, newest first"
    assert all(c.fine_tuned_model_checkpoint.startswith(done.fine_tuned_model) for c in checkpoints)
    assert all(c.fine_tuning_job_id == job.id and c.metrics.train_loss is not None for c in checkpoints)

    listed = client.fine_tuning.jobs.list(limit=100).data
    assert job.id in [j.id for j in listed]

    # The provider's job was created once, and carries Portico's id.
    provider = httpx.get(
        f"{tuning.simulators['openai']}/v1/fine_tuning/jobs?limit=100", headers={"Authorization": "Bearer x"}
    )
    mine = [j for j in provider.json()["data"] if (j["metadata"] or {}).get("portico_fine_tuning_job_id") == job.id]
    assert len(mine) == 1 and mine[0]["metadata"]["team"] == "tuning"

    chat_reaches(tuning, "openai", "openai", done.fine_tuned_model, done.fine_tuned_model)


def test_cancel_stops_the_openai_job(tuning: TuningStack) -> None:
    client = tuning.client("openai")
    slow = {"tune_validating": 3600}
    httpx.post(f"{tuning.simulators['openai']}/_sim/jobs", json=slow).raise_for_status()
    try:
        job = client.fine_tuning.jobs.create(model=GPT, training_file=training_file(client))
        while extra(job, "provider_job_id") is None:
            job, _ = wait_for(client, job.id, "validating_files", "queued", "running")
    finally:
        httpx.post(f"{tuning.simulators['openai']}/_sim/jobs", json={"tune_validating": 60}).raise_for_status()
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at
    assert extra(cancelled, "provider_status") == "cancelled"
    provider = httpx.get(
        f"{tuning.simulators['openai']}/v1/fine_tuning/jobs/{extra(job, 'provider_job_id')}",
        headers={"Authorization": "Bearer x"},
    )
    assert provider.json()["status"] == "cancelled"
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled", "cancelling again is a no-op"
    messages = [event.message for event in all_events(client, job.id)]
    assert messages.count("Fine-tuning job cancelled") >= 1


def test_lost_answers_to_the_upload_and_the_create_cost_no_second_copy(tuning: TuningStack) -> None:
    """OpenAI stores the training file, then creates the job, and both answers are lost (a 500 after the work):
    later steps find the file by name and size and the job by Portico's metadata. One file, one job."""
    client = tuning.client("openai")
    url = tuning.simulators["openai"]
    for route in ("files.create", "fine_tuning.jobs.create"):
        httpx.post(f"{url}/_sim/fail-after", json={"route": route, "times": 1}).raise_for_status()
    creates_before = tuning.stats("openai")["by_route"].get("fine_tuning.jobs.create", 0)
    job = client.fine_tuning.jobs.create(model=GPT, training_file=training_file(client))
    done, _ = wait_for(client, job.id, *FINISHED)

    assert done.status == "succeeded", done.error
    files = httpx.get(f"{url}/v1/files?purpose=fine-tune", headers={"Authorization": "Bearer x"}).json()["data"]
    assert [f["filename"] for f in files].count(f"{job.id}-training.jsonl") == 1, "the training file was sent once"
    assert tuning.stats("openai")["by_route"]["fine_tuning.jobs.create"] - creates_before == 1
