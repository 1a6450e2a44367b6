"""Bedrock model customization (fine-tuning) on the simulator: Create/Get/List/StopModelCustomizationJob.

A job is InProgress through three stages, reported in ``statusDetails``, on the simulator's clock:

    validation (60 s; training and validation files read from S3 and checked) -> data processing (120 s)
    -> training (300 s + 1 s a record an epoch) -> Completed, with outputModelArn, trainingMetrics, validationMetrics
    Failed: a dataset unreadable or not in a fine-tuning format (the failed stage is marked too)
    StopModelCustomizationJob: Stopping (30 s) -> Stopped, and no model

Only FINE_TUNING is simulated. Datasets, hyperparameters and the metrics (trainingMetrics, validationMetrics, and
CSVs under ``<output s3Uri>/model-customization-job-<jobId>/``, where Bedrock writes them) are as
`bedrock_training_data` says. The completed model's ARN is then answered by the runtime routes, on demand: the
simulator does not ask for the Provisioned Throughput real Bedrock may require.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from providers.simulators import bedrock_control as kit
from providers.simulators.bedrock import DIALECT
from providers.simulators.bedrock_training_data import (
    TRAINING_CSV,
    VALIDATION_CSV,
    BadData,
    Curve,
    check_record,
    hyper_parameters,
)
from providers.simulators.behaviour import InvalidRequest
from providers.simulators.controls import Clock
from providers.simulators.edge import Call, endpoint, require
from providers.simulators.s3_access import S3Access, S3Unreadable, S3Uri, spooled

VALIDATION_SECONDS = 60.0
DATA_PROCESSING_SECONDS = 120.0
TRAINING_SECONDS = 300.0
SECONDS_PER_RECORD_EPOCH = 1.0
STOPPING_SECONDS = 30.0
STAGES = ("validationDetails", "dataProcessingDetails", "trainingDetails")
# Patterns of botocore's bedrock service model.
JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.]){0,62}")
MODEL_NAME = re.compile(r"([0-9a-zA-Z][_-]?){1,63}")
TOKEN = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?")


class Status(StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.STOPPED})


@dataclass
class Stage:
    status: str = "NotStarted"
    created: float | None = None
    modified: float | None = None

    def describe(self) -> dict[str, Any]:
        return kit.compact(
            {"status": self.status, "creationTime": kit.iso(self.created), "lastModifiedTime": kit.iso(self.modified)}
        )


@dataclass
class CustomizationJob:
    job_id: str
    name: str
    arn: str
    token: str | None
    fingerprint: dict[str, Any]
    created: float
    modified: float
    base_model_arn: str
    # Reserved at create, shown (and served by the runtime) once the job completes.
    model_arn: str
    status: Status = Status.IN_PROGRESS
    failure: str | None = None
    ended: float | None = None
    stages: dict[str, Stage] = field(default_factory=lambda: {name: Stage() for name in STAGES})
    training_loss: float | None = None
    validation_losses: list[float] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def enter(self, stage: str, now: float) -> None:
        """Complete the running stage and start `stage`."""
        self._settle_running("Completed", now)
        self.stages[stage] = Stage("InProgress", now, now)
        self.modified = now

    def move(self, status: Status, now: float, failure: str | None = None) -> None:
        if self.status in TERMINAL:
            return  # a finished job never moves again
        self._settle_running(status.value, now)
        self.status, self.modified, self.failure = status, now, failure
        if status in TERMINAL:
            self.ended = now

    def _settle_running(self, status: str, now: float) -> None:
        for stage in self.stages.values():
            if stage.status in ("InProgress", "Stopping"):
                stage.status, stage.modified = status, now

    def describe(self) -> dict[str, Any]:
        body, done = self.fingerprint, self.status == Status.COMPLETED
        training = {"trainingLoss": self.training_loss} if self.training_loss is not None else None
        return kit.compact(
            {
                **self.summary(),
                "outputModelName": body["customModelName"],
                "outputModelArn": self.model_arn if done else None,
                "clientRequestToken": self.token,
                "roleArn": body["roleArn"],
                "failureMessage": self.failure,
                "hyperParameters": body.get("hyperParameters", {}),
                "trainingDataConfig": body["trainingDataConfig"],
                "validationDataConfig": body.get("validationDataConfig", {"validators": []}),
                "outputDataConfig": body["outputDataConfig"],
                "trainingMetrics": training,
                "validationMetrics": [{"validationLoss": loss} for loss in self.validation_losses] if done else None,
                "vpcConfig": body.get("vpcConfig"),
            }
        )

    def summary(self) -> dict[str, Any]:
        return kit.compact(
            {
                "jobArn": self.arn,
                "baseModelArn": self.base_model_arn,
                "jobName": self.name,
                "status": self.status.value,
                "statusDetails": {name: stage.describe() for name, stage in self.stages.items()},
                "lastModifiedTime": kit.iso(self.modified),
                "creationTime": kit.iso(self.created),
                "endTime": kit.iso(self.ended),
                "customModelArn": self.model_arn if self.status == Status.COMPLETED else None,
                "customModelName": self.fingerprint["customModelName"],
                "customizationType": self.fingerprint.get("customizationType", "FINE_TUNING"),
            }
        )


def _book(request: Request) -> kit.JobBook[CustomizationJob]:
    return kit.app_state(request.app.state, "bedrock_customization_jobs", lambda: kit.JobBook("customization job"))


def _datasets(body: dict[str, Any]) -> tuple[S3Uri, list[S3Uri], S3Uri]:
    training = S3Uri.parse(kit.nested(body, "trainingDataConfig", "s3Uri"), "trainingDataConfig.s3Uri")
    validators = kit.nested(body, "validationDataConfig", "validators") or []
    if not isinstance(validators, list):
        raise InvalidRequest("validationDataConfig.validators must be a list")
    validation = [
        S3Uri.parse(kit.nested(item, "s3Uri") if isinstance(item, dict) else None, f"validators.{index}.s3Uri")
        for index, item in enumerate(validators)
    ]
    return training, validation, S3Uri.parse(kit.nested(body, "outputDataConfig", "s3Uri"), "outputDataConfig.s3Uri")


def _validated(body: dict[str, Any], request: Request) -> None:
    kit.matching(body.get("jobName"), JOB_NAME, "jobName")
    kit.matching(body.get("customModelName"), MODEL_NAME, "customModelName")
    kit.matching(body.get("roleArn"), kit.ROLE_ARN, "roleArn")
    kit.optional(body.get("clientRequestToken"), TOKEN, "clientRequestToken")
    base = require(body, "baseModelIdentifier", str)
    if not kit.servable(request, base):
        raise InvalidRequest(f"The provided model identifier is invalid: {base!r}")
    if body.get("customizationType", "FINE_TUNING") != "FINE_TUNING":
        raise InvalidRequest("customizationType: the simulator runs FINE_TUNING jobs only")
    _datasets(body)
    hyper_parameters(body)


def _base_model(identifier: str, region: str) -> tuple[str, str]:
    """The base model's ARN and the model id a custom model's ARN embeds."""
    model_id = identifier.rsplit(":foundation-model/", 1)[-1].rsplit(":custom-model/", 1)[-1].split("/", 1)[0]
    if identifier.startswith("arn:"):
        return identifier, model_id
    return f"arn:aws:bedrock:{region}::foundation-model/{identifier}", model_id


async def create(call: Call) -> Response:
    body, book, request = call.body, _book(call.request), call.request
    _validated(body, request)
    token = body.get("clientRequestToken")
    job = book.replay(token, body)
    if job is None:
        _claim_model_name(book, body["customModelName"])
        s3 = kit.require_s3(request)
        job_id, now, region = kit.new_job_id(), call.controls.clock.now(), kit.region_of(request)
        base_arn, base_id = _base_model(body["baseModelIdentifier"], region)
        job_arn = kit.arn(region, f"model-customization-job/{base_id}/{job_id}")
        model_arn = kit.arn(region, f"custom-model/{base_id}/{kit.new_job_id()}")
        job = CustomizationJob(job_id, body["jobName"], job_arn, token, body, now, now, base_arn, model_arn)
        book.add(job)
        job.enter("validationDetails", now)
        run = _Run(job, s3, call.controls.clock, kit.custom_models(request.app.state))
        kit.spawn(request.app.state, run.run(), f"bedrock-customization-{job_id}")
    return kit.answer(call, {"jobArn": job.arn}, status=201)


def _claim_model_name(book: kit.JobBook[CustomizationJob], name: str) -> None:
    for other in book:
        if other.fingerprint["customModelName"] == name and other.status not in (Status.FAILED, Status.STOPPED):
            raise kit.conflict(f"A custom model named {name!r} already exists or is being made.")


async def get(call: Call) -> Response:
    return kit.answer(call, _book(call.request).find(call.request.path_params["job"]).describe())


async def listing(call: Call) -> Response:
    query = kit.ListQuery.parse(call.request.query_params, "creationTime", [status.value for status in Status])
    jobs, next_token = query.page(_book(call.request), lambda job: job.status.value)
    summaries = [job.summary() for job in jobs]
    return kit.answer(call, kit.compact({"modelCustomizationJobSummaries": summaries, "nextToken": next_token}))


async def stop(call: Call) -> Response:
    job = _book(call.request).find(call.request.path_params["job"])
    if job.status in TERMINAL:
        raise kit.conflict(f"The job {job.name!r} is {job.status.value} and cannot be stopped.")
    if job.status != Status.STOPPING:
        job.move(Status.STOPPING, call.controls.clock.now())
        job.wake.set()
    return kit.answer(call, {})


class _Run:
    """One job's life in the background: each stage waits on the clock, then the next begins."""

    def __init__(self, job: CustomizationJob, s3: S3Access, clock: Clock, models: dict[str, str]) -> None:
        self.job, self.s3, self.clock, self.models = job, s3, clock, models
        self.training, self.validation, self.output = _datasets(job.fingerprint)
        self.hyper = hyper_parameters(job.fingerprint)

    async def run(self) -> None:
        job = self.job
        try:
            finished = await self._advance()
        except (S3Unreadable, BadData) as error:
            job.move(Status.FAILED, self.clock.now(), str(error))
            return
        if not finished:
            await kit.wait_until(self.clock, self.clock.now() + STOPPING_SECONDS)
            job.move(Status.STOPPED, self.clock.now())

    async def _advance(self) -> bool:
        """Walk the stages to a completed model; False once the job is being stopped."""
        job, clock = self.job, self.clock
        records = await self._count(self.training)
        for uri in self.validation:
            await self._count(uri)
        curve = Curve.of(records, len(self.validation), self.hyper)
        await self.s3.check_bucket(self.output)
        if await kit.wait_until(clock, job.created + VALIDATION_SECONDS, job.wake):
            return False
        since = clock.now()
        job.enter("dataProcessingDetails", since)
        if await kit.wait_until(clock, since + DATA_PROCESSING_SECONDS, job.wake):
            return False
        since = clock.now()
        job.enter("trainingDetails", since)
        training_time = TRAINING_SECONDS + curve.epochs * records * SECONDS_PER_RECORD_EPOCH
        if await kit.wait_until(clock, since + training_time, job.wake):
            return False
        await self._write_metrics(curve)
        if job.status == Status.STOPPING:
            return False
        job.training_loss, job.validation_losses = curve.training_loss, curve.validation_losses
        job.move(Status.COMPLETED, clock.now())
        self.models[job.model_arn] = job.arn
        return True

    async def _count(self, uri: S3Uri) -> int:
        count = 0
        async with contextlib.aclosing(self.s3.lines(uri)) as lines:
            async for line in lines:
                count += 1
                check_record(line, uri, count)
        if count == 0:
            raise BadData(f"no records in {uri}")
        return count

    async def _write_metrics(self, curve: Curve) -> None:
        folder = self.output.child(f"model-customization-job-{self.job.job_id}")
        with spooled() as spool:
            spool.writelines(curve.training_rows())
            await self.s3.upload(spool, folder.child(*TRAINING_CSV))
        if curve.validators:
            await self.s3.put(b"".join(curve.validation_rows()), folder.child(*VALIDATION_CSV))


def routes() -> list[BaseRoute]:
    def model_of(_: Request, body: dict[str, Any]) -> str:
        return str(body.get("baseModelIdentifier") or "")

    operations = [
        ("/model-customization-jobs", "POST", "CreateModelCustomizationJob", create),
        ("/model-customization-jobs", "GET", "ListModelCustomizationJobs", listing),
        ("/model-customization-jobs/{job:path}/stop", "POST", "StopModelCustomizationJob", stop),
        ("/model-customization-jobs/{job:path}", "GET", "GetModelCustomizationJob", get),
    ]
    return [
        Route(path, endpoint(DIALECT, name, kit.guarded(handler), model_of), methods=[method])
        for path, method, name, handler in operations
    ]
