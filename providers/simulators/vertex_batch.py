"""Vertex ``batchPredictionJobs`` for Gemini models: create, get, list, ``:cancel``, reading Cloud Storage JSONL.

Schedule on the simulated clock, from createTime: ``JOB_STATE_QUEUED`` for 30 s, ``JOB_STATE_PENDING`` for 60 s,
then the input is imported and the job is ``JOB_STATE_RUNNING`` for 60 s + 0.5 s per line, after which the
predictions are written and it is ``JOB_STATE_SUCCEEDED``, or ``JOB_STATE_PARTIALLY_SUCCEEDED`` if any line failed.
It is ``JOB_STATE_FAILED`` (with ``error``) when the model is missing or unknown, an input object cannot be read, a
line is not a JSON object with a ``request`` object, the input is empty, or the output cannot be written.

Input lines are ``{"request": <generateContent body>, ...}``; keys beside ``request`` (a ``custom_id``, say) are
carried to the output line unchanged. Output layout, as Vertex writes it::

    <outputUriPrefix>/prediction-model-<createTime, e.g. 2025-01-02T03:04:05.123456Z>/predictions_00001.jsonl
                                                                                    /predictions_00002.jsonl ...

``outputInfo.gcsOutputDirectory`` names that directory. Each file holds up to 1,000 lines, in input order; read
every ``predictions*.jsonl`` in it (Vertex does not promise an order either). Each output line is the input line
plus ``processed_time`` and, on success, ``"status": ""`` and ``response`` (the GenerateContentResponse the online
API gives for that request), or on failure only ``status``, an error string such as ``Bad Request: {"error":
{"code": 400, "message": "...", "status": "INVALID_ARGUMENT"}}``. A line fails when its request is invalid, when
its text contains "fail" (any case), or by the seeded ``fail_rate`` (status ``fail_status``; one draw per line
from an RNG seeded with the seed and the job id). ``completionStats`` counts are strings, as int64s are in JSON.
Each processed line is counted in ``/_sim/stats`` ``by_request_id`` under its ``custom_id`` (or ``key``), else its
0-based line index. A cancelled or expired job writes nothing.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import anyio.to_thread
from starlette.routing import BaseRoute

from providers.simulators.behaviour import InvalidRequest, Reply, respond
from providers.simulators.controls import SimulatorControls
from providers.simulators.edge import Call
from providers.simulators.vertex import FINISH_REASONS, STATUSES, _parts, _usage, prompt_of
from providers.simulators.vertex_gcs import StorageError, read_lines, split_uri, writing
from providers.simulators.vertex_jobs import Code, Job, JobApi, JobState, JobStore, at_path, finish_cancel, timestamp

QUEUED_FOR = 30.0
PENDING_FOR = 60.0
RUN_BASE = 60.0
RUN_PER_LINE = 0.5
SHARD_LINES = 1000
FAIL_WORD = "fail"
CUSTOM_ID_KEYS = ("custom_id", "key")
PUBLISHER_MODEL = re.compile(r"(?:projects/[^/]+/locations/[^/]+/)?publishers/google/models/([^/:@]+)")
TUNED_MODEL = re.compile(r"projects/[^/]+/locations/[^/]+/models/([^/:@]+)(?:@\d+)?")


class BadInput(ValueError):
    """An input line Vertex would refuse to import; the whole job fails."""


@dataclass(kw_only=True)
class BatchJob(Job):
    body: dict[str, Any]  # the create body, echoed back as Vertex echoes its inputs
    model: str
    input_uris: list[str]
    output_prefix: str
    output_dir: str = ""
    lines: int = 0
    run_until: float = 0.0
    counts: tuple[int, int] | None = None  # (successful, failed) once the predictions are written


@dataclass(frozen=True)
class Plan:
    """What decides each line's outcome, fixed when the job runs."""

    model_version: str
    seed: int
    fail_rate: float
    fail_status: int


@dataclass
class Outcome:
    succeeded: int = 0
    failed: int = 0
    by_id: Counter[str] = field(default_factory=Counter)


def create(call: Call, job_id: str, parent: str) -> BatchJob:
    body = call.body
    at_path(body, "displayName", str)
    if at_path(body, "inputConfig.instancesFormat", str) != "jsonl":
        raise InvalidRequest("'inputConfig.instancesFormat' must be 'jsonl' (Cloud Storage input)")
    uris = at_path(body, "inputConfig.gcsSource.uris", list)
    if not uris or not all(isinstance(uri, str) for uri in uris):
        raise InvalidRequest("'inputConfig.gcsSource.uris' must be a non-empty array of gs:// URIs")
    for index, uri in enumerate(uris):
        split_uri(uri, f"inputConfig.gcsSource.uris[{index}]")
    if at_path(body, "outputConfig.predictionsFormat", str) != "jsonl":
        raise InvalidRequest("'outputConfig.predictionsFormat' must be 'jsonl' (Cloud Storage output)")
    prefix = at_path(body, "outputConfig.gcsDestination.outputUriPrefix", str)
    if not prefix.startswith("gs://") or not prefix.removeprefix("gs://").partition("/")[0]:
        raise InvalidRequest(f"'outputConfig.gcsDestination.outputUriPrefix' must be a gs:// URI, got {prefix!r}")
    model = body.get("model")
    now = call.controls.clock.now()
    # A missing model is accepted here and fails the job when it would start, which is what callers must handle.
    return BatchJob(
        id=job_id,
        parent=parent,
        created=now,
        updated=now,
        state=JobState.QUEUED,
        body=body,
        model=model if isinstance(model, str) else "",
        input_uris=uris,
        output_prefix=prefix.rstrip("/"),
    )


async def advance(job: BatchJob, now: float, controls: SimulatorControls, store: JobStore) -> None:
    if finish_cancel(job, now):
        return
    if job.state is JobState.QUEUED and now >= job.created + QUEUED_FOR:
        job.move(JobState.PENDING, job.created + QUEUED_FOR)
    if job.state is JobState.PENDING and now >= job.created + QUEUED_FOR + PENDING_FOR:
        await _start(job, job.created + QUEUED_FOR + PENDING_FOR, store)
    if job.state is JobState.RUNNING and now >= job.run_until:
        await _finish(job, controls, store)


async def _start(job: BatchJob, at: float, store: JobStore) -> None:
    if _model_version(job.model, store) is None:
        message = f"The model {job.model!r} was not found; use publishers/google/models/<model> or a tuned model."
        job.move(JobState.FAILED, at, (Code.NOT_FOUND, message))
        return
    try:
        lines = await anyio.to_thread.run_sync(_count_records, job.input_uris)
    except (StorageError, BadInput) as problem:
        job.move(JobState.FAILED, at, (Code.INVALID_ARGUMENT, f"Failed to import data. {problem}"))
        return
    if lines == 0:
        job.move(JobState.FAILED, at, (Code.INVALID_ARGUMENT, "Failed to import data. The input has no requests."))
        return
    job.lines, job.run_until = lines, at + RUN_BASE + lines * RUN_PER_LINE
    job.output_dir = f"{job.output_prefix}/prediction-model-{timestamp(job.created)}"
    job.move(JobState.RUNNING, at)


async def _finish(job: BatchJob, controls: SimulatorControls, store: JobStore) -> None:
    version = _model_version(job.model, store) or job.model
    plan = Plan(version, controls.seed, controls.fail_rate, controls.fail_status)
    try:
        outcome = await anyio.to_thread.run_sync(_predict, job, plan)
    except (StorageError, BadInput) as problem:
        # The input changed since the import, or the output cannot be written (a missing bucket, say).
        job.move(JobState.FAILED, job.run_until, (Code.FAILED_PRECONDITION, f"Failed to run the batch. {problem}"))
        return
    controls.stats.by_request_id.update(outcome.by_id)
    job.counts = (outcome.succeeded, outcome.failed)
    job.move(JobState.PARTIALLY_SUCCEEDED if outcome.failed else JobState.SUCCEEDED, job.run_until)


def _model_version(model: str, store: JobStore) -> str | None:
    """The modelVersion the predictions report, or None if the simulator does not know the model."""
    if publisher := PUBLISHER_MODEL.fullmatch(model):
        return publisher[1]
    if (tuned := TUNED_MODEL.fullmatch(model)) and tuned[1] in store.tuned_models:
        return store.tuned_models[tuned[1]].base_model
    return None


def _records(uris: Iterable[str]) -> Iterator[dict[str, Any]]:
    for uri in uris:
        for number, line in enumerate(read_lines(uri), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as problem:
                raise BadInput(f"{uri} line {number} is not JSON: {problem}") from problem
            if not isinstance(record, dict) or not isinstance(record.get("request"), dict):
                raise BadInput(f"{uri} line {number} must be an object with a 'request' object")
            yield record


def _count_records(uris: list[str]) -> int:
    return sum(1 for _ in _records(uris))


def _predict(job: BatchJob, plan: Plan) -> Outcome:
    """Write every shard (in a worker thread: the storage client blocks)."""
    rng = random.Random(f"{plan.seed}:{job.id}")
    outcome = Outcome()
    records = enumerate(_records(job.input_uris))
    shard = 0
    # One shard's records at a time, so memory stays flat whatever the input size.
    while batch := list(itertools.islice(records, SHARD_LINES)):
        shard += 1
        with writing(f"{job.output_dir}/predictions_{shard:05d}.jsonl") as out:
            for index, record in batch:
                line = _prediction_line(job, plan, index, record, rng.random())
                out.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
                outcome.by_id[_custom_id(record, index)] += 1
                if line["status"]:
                    outcome.failed += 1
                else:
                    outcome.succeeded += 1
    return outcome


def _prediction_line(job: BatchJob, plan: Plan, index: int, record: dict[str, Any], draw: float) -> dict[str, Any]:
    # Lines complete evenly across the running time, so processed_time is deterministic too.
    started = job.started or job.run_until
    processed = started + (index + 1) * (job.run_until - started) / job.lines
    done = {**record, "processed_time": datetime.fromtimestamp(processed, UTC).isoformat(timespec="milliseconds")}
    try:
        prompt = prompt_of(record["request"])
    except InvalidRequest as problem:
        return {**done, "status": _status(400, str(problem))}
    if any(FAIL_WORD in turn.text.lower() for turn in prompt.turns):
        return {**done, "status": _status(400, f"Simulated failure: the request's text contains {FAIL_WORD!r}.")}
    if draw < plan.fail_rate:
        return {**done, "status": _status(plan.fail_status, "Simulated failure drawn by the seeded fail_rate.")}
    reply = respond(prompt)
    return {**done, "status": "", "response": _response(reply, plan.model_version, f"{job.id}/{index}", processed)}


def _response(reply: Reply, model_version: str, key: str, processed: float) -> dict[str, Any]:
    candidate = {"content": {"role": "model", "parts": _parts(reply)}, "finishReason": FINISH_REASONS[reply.finish]}
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(reply),
        "modelVersion": model_version,
        "createTime": timestamp(processed),
        "responseId": uuid.uuid5(uuid.NAMESPACE_URL, f"portico-sim-vertex-batch/{key}").hex[:22],
    }


def _status(code: int, message: str) -> str:
    """A failed line's ``status``: the HTTP reason, then the Google error body, as Vertex writes it."""
    label = STATUSES.get(code, "INTERNAL" if code >= 500 else "FAILED_PRECONDITION")
    return f"{HTTPStatus(code).phrase}: " + json.dumps({"error": {"code": code, "message": message, "status": label}})


def _custom_id(record: dict[str, Any], index: int) -> str:
    found = (record.get(key) for key in CUSTOM_ID_KEYS)
    return next((value for value in found if isinstance(value, str) and value), str(index))


def render(job: BatchJob) -> dict[str, Any]:
    body = job.body
    resource: dict[str, Any] = {"name": f"{job.parent}/batchPredictionJobs/{job.id}"}
    resource["displayName"] = body["displayName"]
    if job.model:
        resource["model"] = job.model
    resource |= {"inputConfig": body["inputConfig"], "outputConfig": body["outputConfig"], "state": job.state}
    resource |= job.times()
    if isinstance(body.get("labels"), dict):
        resource["labels"] = body["labels"]
    if job.output_dir:
        resource["outputInfo"] = {"gcsOutputDirectory": job.output_dir}
    if job.counts is not None:
        succeeded, failed = job.counts
        resource["completionStats"] = {"successfulCount": str(succeeded), "failedCount": str(failed)}
        resource["completionStats"]["incompleteCount"] = "0"
    if job.error is not None:
        resource["error"] = job.error
    return resource


API = JobApi("batchPredictionJobs", BatchJob, create, advance, render, model_field="model")


def routes() -> list[BaseRoute]:
    return API.routes()
