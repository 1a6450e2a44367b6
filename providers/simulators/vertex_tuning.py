"""Vertex ``tuningJobs`` (supervised tuning of Gemini models): create, get, list, ``:cancel``; and ``generateContent``
(also ``streamGenerateContent`` and ``countTokens``) on the endpoint a succeeded job deploys, at
``/v1/projects/{project}/locations/{location}/endpoints/{id}:{action}``, answered by the shared behaviour.

Schedule on the simulated clock, from createTime: ``JOB_STATE_PENDING`` for 60 s, then the datasets are read and
checked; the job is ``JOB_STATE_RUNNING`` for 300 s per epoch and then ``JOB_STATE_SUCCEEDED``, with ``tunedModel
{model, endpoint}`` and ``tuningDataStats``. It is ``JOB_STATE_FAILED`` (with ``error``) if a dataset cannot be read,
is empty, or has a line that is not a Gemini ``contents`` example with at least one ``model`` turn. The model and
endpoint ids are reserved at create time but answer only once the job has succeeded; a batch prediction job may
name the model (``projects/…/models/<id>``) from then on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from providers.simulators import vertex
from providers.simulators.behaviour import InvalidRequest, count_words
from providers.simulators.controls import SimulatorControls, controls_of
from providers.simulators.edge import Call
from providers.simulators.vertex_gcs import StorageError, read_lines, split_uri
from providers.simulators.vertex_jobs import (
    Code,
    Job,
    JobApi,
    JobState,
    JobStore,
    TunedModel,
    at_path,
    finish_cancel,
    parent_of,
    store_of,
)

PENDING_FOR = 60.0
EPOCH_FOR = 300.0
DEFAULT_EPOCHS = 3  # the simulator's choice when hyperParameters.epochCount is not given
EXAMPLES_PER_STEP = 8  # for tuningStepCount
ADAPTER_SIZES = frozenset(
    f"ADAPTER_SIZE_{size}" for size in ("UNSPECIFIED", "ONE", "TWO", "FOUR", "EIGHT", "SIXTEEN", "THIRTY_TWO")
)
ENDPOINT_PATH = "/v1/projects/{project}/locations/{location}/endpoints/{model_action}"


class BadDataset(ValueError):
    """A dataset line that is not a tuning example; the job fails."""


@dataclass(kw_only=True)
class TuningJob(Job):
    body: dict[str, Any]  # the create body, echoed back
    base_model: str
    training_uri: str
    validation_uri: str | None
    epochs: int
    model_id: str
    endpoint_id: str
    run_until: float = 0.0
    data_stats: dict[str, str] | None = None


def create(call: Call, job_id: str, parent: str) -> TuningJob:
    body = call.body
    base_model = at_path(body, "baseModel", str)
    training = at_path(body, "supervisedTuningSpec.trainingDatasetUri", str)
    split_uri(training, "supervisedTuningSpec.trainingDatasetUri")
    validation = at_path(body, "supervisedTuningSpec.validationDatasetUri", str, optional=True)
    if validation is not None:
        split_uri(validation, "supervisedTuningSpec.validationDatasetUri")
    hyper = at_path(body, "supervisedTuningSpec.hyperParameters", dict, optional=True) or {}
    epochs = _epochs(hyper.get("epochCount"))
    multiplier = hyper.get("learningRateMultiplier")
    if multiplier is not None and (not isinstance(multiplier, int | float) or isinstance(multiplier, bool)):
        raise InvalidRequest("'supervisedTuningSpec.hyperParameters.learningRateMultiplier' must be a number")
    if multiplier is not None and multiplier <= 0:
        raise InvalidRequest("'supervisedTuningSpec.hyperParameters.learningRateMultiplier' must be positive")
    if hyper.get("adapterSize", "ADAPTER_SIZE_UNSPECIFIED") not in ADAPTER_SIZES:
        sizes = ", ".join(sorted(ADAPTER_SIZES))
        raise InvalidRequest(f"'supervisedTuningSpec.hyperParameters.adapterSize' must be one of {sizes}")
    at_path(body, "tunedModelDisplayName", str, optional=True)
    store, now = store_of(call.request), call.controls.clock.now()
    return TuningJob(
        id=job_id,
        parent=parent,
        created=now,
        updated=now,
        state=JobState.PENDING,
        body=body,
        base_model=base_model,
        training_uri=training,
        validation_uri=validation,
        epochs=epochs,
        model_id=store.new_id(),
        endpoint_id=store.new_id(),
    )


def _epochs(value: object) -> int:
    # epochCount is an int64, which Google's JSON mapping also accepts as a decimal string.
    if value is None:
        return DEFAULT_EPOCHS
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
        raise InvalidRequest("'supervisedTuningSpec.hyperParameters.epochCount' must be an integer from 1 to 100")
    return value


async def advance(job: TuningJob, now: float, _: SimulatorControls, store: JobStore) -> None:
    if finish_cancel(job, now):
        return
    if job.state is JobState.PENDING and now >= job.created + PENDING_FOR:
        await _start(job, job.created + PENDING_FOR)
    if job.state is JobState.RUNNING and now >= job.run_until:
        job.move(JobState.SUCCEEDED, job.run_until)
        store.tuned_models[job.model_id] = TunedModel(job.base_model, job.endpoint_id)


async def _start(job: TuningJob, at: float) -> None:
    try:
        stats = await anyio.to_thread.run_sync(_dataset_stats, job.training_uri, job.epochs)
        if job.validation_uri is not None:
            await anyio.to_thread.run_sync(_dataset_stats, job.validation_uri, job.epochs)
    except (StorageError, BadDataset) as problem:
        job.move(JobState.FAILED, at, (Code.INVALID_ARGUMENT, f"Dataset validation failed. {problem}"))
        return
    job.data_stats = stats
    job.run_until = at + EPOCH_FOR * job.epochs
    job.move(JobState.RUNNING, at)


def _dataset_stats(uri: str, epochs: int) -> dict[str, str]:
    """Check every example (in a worker thread: the storage client blocks) and count what Vertex reports."""
    examples = characters = tokens = 0
    for number, line in enumerate(read_lines(uri), start=1):
        if not line.strip():
            continue
        texts = _example_texts(line, f"{uri} line {number}")
        examples += 1
        characters += sum(len(text) for text in texts)
        tokens += sum(count_words(text) for text in texts)
    if examples == 0:
        raise BadDataset(f"{uri} has no examples")
    # int64 counts are strings in Google's JSON mapping.
    return {
        "tuningDatasetExampleCount": str(examples),
        "totalTuningCharacterCount": str(characters),
        "totalBillableTokenCount": str(tokens * epochs),
        "tuningStepCount": str(math.ceil(examples * epochs / EXAMPLES_PER_STEP)),
    }


def _example_texts(line: str, where: str) -> list[str]:
    """The texts of one example, after the minimal checks: a JSON object, valid Gemini contents, a model turn."""
    try:
        example = json.loads(line)
    except ValueError as problem:
        raise BadDataset(f"{where} is not JSON: {problem}") from problem
    if not isinstance(example, dict):
        raise BadDataset(f"{where} must be a JSON object with 'contents'")
    try:
        prompt = vertex.prompt_of(example)
    except InvalidRequest as problem:
        raise BadDataset(f"{where}: {problem}") from problem
    if not any(isinstance(c, dict) and c.get("role") == "model" for c in example["contents"]):
        raise BadDataset(f"{where} has no 'model' turn to learn from")
    return [turn.text for turn in prompt.turns]


def render(job: TuningJob) -> dict[str, Any]:
    body = job.body
    resource: dict[str, Any] = {"name": f"{job.parent}/tuningJobs/{job.id}", "baseModel": job.base_model}
    for optional in ("tunedModelDisplayName", "description", "labels"):
        if optional in body:
            resource[optional] = body[optional]
    resource |= {"supervisedTuningSpec": body["supervisedTuningSpec"], "state": job.state, **job.times()}
    if job.data_stats is not None:
        resource["tuningDataStats"] = {"supervisedTuningDataStats": job.data_stats}
    if job.state is JobState.SUCCEEDED:
        resource["tunedModel"] = {
            "model": f"{job.parent}/models/{job.model_id}",
            "endpoint": f"{job.parent}/endpoints/{job.endpoint_id}",
        }
    if job.error is not None:
        resource["error"] = job.error
    return resource


API = JobApi("tuningJobs", TuningJob, create, advance, render, model_field="baseModel")


async def serve_endpoint(request: Request) -> Response:
    """A tuned endpoint answers as the publisher models do, once its tuning job has succeeded."""
    if not vertex.DIALECT.authorized(request):
        return vertex.error(vertex.DIALECT.unauthorized_status, vertex.DIALECT.unauthorized_message)
    try:
        parent = parent_of(request)
    except InvalidRequest as problem:
        return vertex.error(400, str(problem))
    endpoint_id = str(request.path_params["model_action"]).rpartition(":")[0]
    store, controls = store_of(request), controls_of(request)
    job = next((j for j in store.jobs.values() if isinstance(j, TuningJob) and j.endpoint_id == endpoint_id), None)
    if job is not None and job.parent == parent:
        async with job.lock:
            await advance(job, controls.clock.now(), controls, store)
        if job.state is JobState.SUCCEEDED:
            return await vertex.dispatch(request)
    return vertex.error(404, f"Endpoint {parent}/endpoints/{endpoint_id} not found.")


def routes() -> list[BaseRoute]:
    return [*API.routes(), Route(ENDPOINT_PATH, serve_endpoint, methods=["POST"])]
