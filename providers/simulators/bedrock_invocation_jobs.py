"""Bedrock batch inference on the simulator: Create/Get/List/StopModelInvocationJob (boto3 client ``bedrock``).

A job reads JSONL input (``{"recordId", "modelInput"}`` lines; the s3Uri names one file or a folder of ``.jsonl``
files) from the S3 stand-in and writes, under ``<output s3Uri>/<jobId>/``, one ``<input file name>.out`` per input
file (``{"recordId", "modelInput", "modelOutput" | "error": {"errorCode", "errorMessage"}}`` lines, see
`bedrock_batch_records`) and ``manifest.json.out`` with the record and token counts. On the simulator's clock:

    Submitted (20 s) -> Validating (60 s; input read and checked, output bucket probed) -> Scheduled (120 s)
    -> InProgress (2 s a record) -> Completed, or PartiallyCompleted when any record failed
    Failed: input unreadable or not {"recordId": string, "modelInput": object} lines, or output unwritable
    StopModelInvocationJob: Stopping (30 s) -> Stopped;  POST /_sim/bedrock/model-invocation-job/{id}/expire: Expired

Records are answered, failed on purpose and counted as `bedrock_batch_records` says. Stopped and expired jobs
write the records processed so far. Deviations, for speed: no 100-record minimum, and a job expires only through
the control above.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from providers.simulators import bedrock_control as kit
from providers.simulators.bedrock import DIALECT
from providers.simulators.bedrock_batch_records import Answerer, BadInput, Tally, numbered, parse_record
from providers.simulators.behaviour import InvalidRequest
from providers.simulators.controls import SimulatorControls, controls_of
from providers.simulators.edge import Call, endpoint, require
from providers.simulators.s3_access import S3Access, S3Unreadable, S3Uri, spooled

PHASE_SECONDS = {"Submitted": 20.0, "Validating": 60.0, "Scheduled": 120.0}
RECORD_SECONDS = 2.0
STOPPING_SECONDS = 30.0
# Real seconds the expire control waits for the job to settle (an output upload may be under way).
EXPIRE_WAIT = 10.0
# Patterns of botocore's bedrock service model.
JOB_NAME = re.compile(r"[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}")
TOKEN = re.compile(r"[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}")


class Status(StrEnum):
    SUBMITTED = "Submitted"
    VALIDATING = "Validating"
    SCHEDULED = "Scheduled"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    PARTIALLY_COMPLETED = "PartiallyCompleted"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    EXPIRED = "Expired"


TERMINAL = frozenset({Status.COMPLETED, Status.PARTIALLY_COMPLETED, Status.FAILED, Status.STOPPED, Status.EXPIRED})


@dataclass
class InvocationJob:
    job_id: str
    name: str
    arn: str
    token: str | None
    fingerprint: dict[str, Any]
    created: float
    modified: float
    status: Status = Status.SUBMITTED
    message: str | None = None
    ended: float | None = None
    total: int | None = None
    tally: Tally = field(default_factory=Tally)
    # What a caller asked for (Stopped or Expired); `wake` cuts the current wait short.
    interrupt: Status | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def move(self, status: Status, now: float, message: str | None = None) -> None:
        if self.status in TERMINAL:
            return  # a finished job never moves again
        self.status, self.modified, self.message = status, now, message or self.message
        if status in TERMINAL:
            self.ended = now
            self.done.set()

    def describe(self) -> dict[str, Any]:
        body = self.fingerprint
        hours = body.get("timeoutDurationInHours", 24)
        counts = {} if self.total is None else {"totalRecordCount": self.total, **self.tally.counts()}
        return kit.compact(
            {
                "jobArn": self.arn,
                "jobName": self.name,
                "modelId": body["modelId"],
                "clientRequestToken": self.token,
                "roleArn": body["roleArn"],
                "status": self.status.value,
                "message": self.message,
                "submitTime": kit.iso(self.created),
                "lastModifiedTime": kit.iso(self.modified),
                "endTime": kit.iso(self.ended),
                "inputDataConfig": body["inputDataConfig"],
                "outputDataConfig": body["outputDataConfig"],
                "vpcConfig": body.get("vpcConfig"),
                "timeoutDurationInHours": hours,
                "jobExpirationTime": kit.iso(self.created + hours * 3600),
                "modelInvocationType": body.get("modelInvocationType"),
                **counts,
            }
        )


def _book(request: Request) -> kit.JobBook[InvocationJob]:
    return kit.app_state(request.app.state, "bedrock_invocation_jobs", lambda: kit.JobBook("model invocation job"))


def _validated(body: dict[str, Any], request: Request) -> tuple[S3Uri, S3Uri]:
    kit.matching(body.get("jobName"), JOB_NAME, "jobName")
    kit.matching(body.get("roleArn"), kit.ROLE_ARN, "roleArn")
    kit.optional(body.get("clientRequestToken"), TOKEN, "clientRequestToken")
    model_id = require(body, "modelId", str)
    if not kit.servable(request, model_id):
        raise InvalidRequest(f"The provided model identifier is invalid: {model_id!r}")
    source = S3Uri.parse(kit.nested(body, "inputDataConfig", "s3InputDataConfig", "s3Uri"), "inputDataConfig.s3Uri")
    if kit.nested(body, "inputDataConfig", "s3InputDataConfig", "s3InputFormat") not in (None, "JSONL"):
        raise InvalidRequest("inputDataConfig.s3InputDataConfig.s3InputFormat must be JSONL")
    target = S3Uri.parse(kit.nested(body, "outputDataConfig", "s3OutputDataConfig", "s3Uri"), "outputDataConfig.s3Uri")
    if body.get("modelInvocationType") not in (None, "InvokeModel", "Converse"):
        raise InvalidRequest("modelInvocationType must be InvokeModel or Converse")
    hours = body.get("timeoutDurationInHours", 24)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 24 <= hours <= 168:
        raise InvalidRequest("timeoutDurationInHours must be an integer from 24 to 168")
    return source, target


async def create(call: Call) -> Response:
    body, book = call.body, _book(call.request)
    source, target = _validated(body, call.request)
    token = body.get("clientRequestToken")
    job = book.replay(token, body)
    if job is None:
        s3 = kit.require_s3(call.request)
        job_id, now = kit.new_job_id(), call.controls.clock.now()
        resource_arn = kit.arn(kit.region_of(call.request), f"model-invocation-job/{job_id}")
        job = InvocationJob(job_id, body["jobName"], resource_arn, token, body, now, now)
        book.add(job)
        run = _Run(job, s3, call.controls, source, target)
        kit.spawn(call.request.app.state, run.run(), f"bedrock-invocation-{job_id}")
    return kit.answer(call, {"jobArn": job.arn})


async def get(call: Call) -> Response:
    return kit.answer(call, _book(call.request).find(call.request.path_params["job"]).describe())


async def listing(call: Call) -> Response:
    query = kit.ListQuery.parse(call.request.query_params, "submitTime", [status.value for status in Status])
    jobs, next_token = query.page(_book(call.request), lambda job: job.status.value)
    summaries = [job.describe() for job in jobs]
    return kit.answer(call, kit.compact({"invocationJobSummaries": summaries, "nextToken": next_token}))


async def stop(call: Call) -> Response:
    job = _book(call.request).find(call.request.path_params["job"])
    _interrupt(job, Status.STOPPED, call.controls)
    return kit.answer(call, {})


async def _expire(request: Request) -> Response:
    """Simulator control: the job times out now. Answers once the job has written what it processed and settled."""
    try:
        job = _book(request).find(request.path_params["job"])
        _interrupt(job, Status.EXPIRED, controls_of(request))
    except kit.ApiError as error:
        return kit.error_response(error)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(job.done.wait(), EXPIRE_WAIT)
    return JSONResponse(job.describe())


def _interrupt(job: InvocationJob, outcome: Status, controls: SimulatorControls) -> None:
    if job.status == Status.STOPPING and outcome == Status.STOPPED:
        return  # stopping twice is harmless
    if job.status in TERMINAL or job.interrupt is not None:
        raise kit.conflict(f"The job {job.name!r} is {job.status.value} and cannot be {outcome.value.lower()}.")
    job.interrupt = outcome
    if outcome == Status.STOPPED:
        job.move(Status.STOPPING, controls.clock.now())
    job.wake.set()


class _Run:
    """One job's life in the background: each phase waits on the clock, then does its work."""

    def __init__(self, job: InvocationJob, s3: S3Access, controls: SimulatorControls, source: S3Uri, target: S3Uri):
        self.job, self.s3, self.controls, self.source, self.target = job, s3, controls, source, target
        self.clock = controls.clock
        self.started = job.created
        body = job.fingerprint
        self.answerer = Answerer(body["modelId"], body.get("modelInvocationType"), job.name, controls, job.tally)

    async def run(self) -> None:
        job = self.job
        try:
            finished = await self._advance()
        except (S3Unreadable, BadInput) as error:
            job.move(Status.FAILED, self.clock.now(), str(error))
            return
        if not finished:
            await self._halt()
        else:
            job.move(Status.PARTIALLY_COMPLETED if job.tally.failed else Status.COMPLETED, self.clock.now())

    async def _advance(self) -> bool:
        """Walk the phases up to writing the manifest; False once a caller has interrupted the job."""
        job, clock = self.job, self.clock
        if await kit.wait_until(clock, job.created + PHASE_SECONDS["Submitted"], job.wake):
            return False
        validating_since = clock.now()
        job.move(Status.VALIDATING, validating_since)
        files = await self._validate()
        if await kit.wait_until(clock, validating_since + PHASE_SECONDS["Validating"], job.wake):
            return False
        job.move(Status.SCHEDULED, clock.now())
        if await kit.wait_until(clock, clock.now() + PHASE_SECONDS["Scheduled"], job.wake):
            return False
        self.started = clock.now()
        job.move(Status.IN_PROGRESS, self.started)
        for source in files:
            if not await self._process(source):
                break
        manifest = job.tally.manifest(job.total or 0)
        await self.s3.put(json.dumps(manifest).encode(), self.target.child(job.job_id, "manifest.json.out"))
        return job.interrupt is None

    async def _halt(self) -> None:
        if self.job.interrupt == Status.STOPPED:
            await kit.wait_until(self.clock, self.clock.now() + STOPPING_SECONDS)
        self.job.move(self.job.interrupt or Status.STOPPED, self.clock.now())

    async def _validate(self) -> list[S3Uri]:
        files = await self.s3.input_files(self.source)
        await self.s3.check_bucket(self.target)
        total = 0
        for source in files:
            async with contextlib.aclosing(self.s3.lines(source)) as lines:
                async for number, line in numbered(lines):
                    parse_record(line, source, number)
                    total += 1
        if total == 0:
            raise BadInput(f"no records in {self.source}")
        self.job.total = total
        return files

    async def _process(self, source: S3Uri) -> bool:
        """Answer one input file's records into its .out file; False if interrupted part way."""
        job = self.job
        with spooled() as spool:
            async with contextlib.aclosing(self.s3.lines(source)) as lines:
                async for number, line in numbered(lines):
                    output = self.answerer.answer(*parse_record(line, source, number))
                    spool.write(json.dumps(output, ensure_ascii=False).encode() + b"\n")
                    # Each record takes RECORD_SECONDS of simulated time, counted from the start of InProgress.
                    if await kit.wait_until(self.clock, self.started + job.tally.processed * RECORD_SECONDS, job.wake):
                        break
            await self.s3.upload(spool, self.target.child(job.job_id, source.name + ".out"))
        return job.interrupt is None


def routes() -> list[BaseRoute]:
    def model_of(_: Request, body: dict[str, Any]) -> str:
        return str(body.get("modelId") or "")

    operations = [
        ("/model-invocation-job", "POST", "CreateModelInvocationJob", create),
        ("/model-invocation-jobs", "GET", "ListModelInvocationJobs", listing),
        ("/model-invocation-job/{job:path}/stop", "POST", "StopModelInvocationJob", stop),
        ("/model-invocation-job/{job:path}", "GET", "GetModelInvocationJob", get),
    ]
    served = [
        Route(path, endpoint(DIALECT, name, kit.guarded(handler), model_of), methods=[method])
        for path, method, name, handler in operations
    ]
    return [*served, Route("/_sim/bedrock/model-invocation-job/{job:path}/expire", _expire, methods=["POST"])]
