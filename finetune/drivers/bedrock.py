"""Bedrock model customization (`CreateModelCustomizationJob`, FINE_TUNING): OpenAI examples converted to the base
model family's format and staged to S3, the job created with the role, the base model, the S3 URIs and the
hyperparameters as strings, polled with GetModelCustomizationJob, stopped with StopModelCustomizationJob.

What a job needs is checked when it is created (`prepare`): the IAM role Bedrock assumes (`role_arn`,
`provider_options.role_arn`, or the virtual key's `awsRoleArn`), a bucket to stage in (portkey_options
`x-portkey-aws-s3-bucket`, the key's `awsS3Bucket`, or the bucket of an s3:// `output_file`), the region. The
output location is `output_file`, else derived beside the staged data.

Idempotency: the create carries a `clientRequestToken` derived from the job id, so Bedrock answers a repeated create
with the first job; and a submit that may have created the job before (the row says `creating`) finds it by name.

Bedrock has no events or checkpoints API. Events are synthesized from what each poll reports, keyed by what they
describe — the job's status (`state:<status>`), each stage's progress (`stage:<stage>:<status>`), the final metrics
and the model — so the same observation seen again, by any worker after any restart, records nothing new.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from batch.native import s3
from batch.native.bedrock_control import BedrockControl, region_of
from batch.native.bedrock_driver import JOB_NAME
from batch.native.bedrock_params import role_arn, staging_bucket
from batch.native.calls import Json, provider_errors
from finetune import data
from finetune.drivers.base import ProviderTune, TuneJob, epoch_seconds
from finetune.events import EventDraft
from finetune.training import hyperparameters_for
from portico.errors import InvalidRequest
from portico.ids import now

if TYPE_CHECKING:
    from finetune.models import CreateFineTuningJobInput
    from gateway.targets import ResolvedTarget

STAGING_PREFIX = "portico/fine-tuning"
STAGES = {"validationDetails": "Validation", "dataProcessingDetails": "Data processing", "trainingDetails": "Training"}


class CustomizationControl(BedrockControl):
    """The customization-job half of Bedrock's control plane, signed and sent as the batch half is."""

    async def create(self, body: Json) -> str:
        return str((await self._call("POST", "/model-customization-jobs", body))["jobArn"])

    async def get(self, job_arn: str) -> Json:
        return await self._call("GET", f"/model-customization-jobs/{quote(job_arn, safe='')}")

    async def stop(self, job_arn: str) -> None:
        await self._call("POST", f"/model-customization-jobs/{quote(job_arn, safe='')}/stop")

    async def find(self, job_name: str, token: str) -> str | None:
        listing = await self._call("GET", f"/model-customization-jobs?nameContains={quote(job_name, safe='')}")
        for summary in listing.get("modelCustomizationJobSummaries") or []:
            if isinstance(summary, dict) and summary.get("jobName") == job_name:
                return str(summary["jobArn"])
        return None


def _token(job_id: str) -> str:
    return "portico-" + job_id


def _model_name(job: TuneJob) -> str:
    """A name Bedrock accepts (`([0-9a-zA-Z][_-]?){1,63}`): the suffix, then the job's own id."""
    suffix = re.sub(r"[^0-9a-zA-Z]+", "-", job.row.suffix or "").strip("-")
    unique = job.row.id.removeprefix("ftjob-")
    return "-".join(part for part in (suffix[:30], unique) if part)[:63].strip("-")


class BedrockDriver:
    checkpoints_note: str | None = (
        "Bedrock model customization jobs keep no intermediate checkpoints: the custom model is the only artifact."
    )

    def prepare(self, request: CreateFineTuningJobInput, target: ResolvedTarget) -> dict[str, Any]:
        region_of(target)
        output = request.provider_param("output_file")
        output_uri = s3.S3Uri.parse(output, "output_file") if output else None
        name = request.provider_param("job_name")
        if name is not None and not JOB_NAME.fullmatch(name):
            raise InvalidRequest(
                "A Bedrock job name is letters, digits, '+', '-' and '.', starting with a letter or digit.",
                param="job_name",
                code="invalid_job_name",
            )
        return {
            "role_arn": role_arn(request, target, "fine-tuning job"),
            "bucket": staging_bucket(request, target, output_uri, "fine-tuning job", "output_file"),
            "output_uri": str(output_uri) if output_uri else None,
            "job_name": name,
        }

    async def submit(self, job: TuneJob) -> ProviderTune:
        options, row = job.options, job.row
        control = CustomizationControl(job.services, job.target)
        name = options.get("job_name") or _token(row.id)
        if options.get("creating"):
            with provider_errors("Looking for the Bedrock customization job failed"):
                found = await control.find(name, _token(row.id))
            if found is not None:
                await job.adopt(found)
                return await self.poll(job)
        staging = s3.S3Uri(options["bucket"], f"{STAGING_PREFIX}/{row.id}")
        uris = await self._stage(job, staging)
        output_uri = options.get("output_uri") or str(staging.child("output")) + "/"
        await job.remember(creating=True, job_name=name, output_uri=output_uri, **uris)
        family = str(options["family"])
        body: Json = {
            "jobName": name,
            "customModelName": _model_name(job),
            "roleArn": options["role_arn"],
            "clientRequestToken": _token(row.id),
            "baseModelIdentifier": row.model,
            "customizationType": "FINE_TUNING",
            "trainingDataConfig": {"s3Uri": uris["training_uri"]},
            "outputDataConfig": {"s3Uri": output_uri},
            "hyperParameters": hyperparameters_for("bedrock", family, row.hyperparameters or {}),
        }
        if "validation_uri" in uris:
            body["validationDataConfig"] = {"validators": [{"s3Uri": uris["validation_uri"]}]}
        with provider_errors("Creating the Bedrock customization job failed"):
            await job.adopt(await control.create(body))
        return await self.poll(job)

    async def _stage(self, job: TuneJob, staging: s3.S3Uri) -> dict[str, str]:
        row, options = job.row, job.options
        client = s3.s3_client(job.target, job.services.settings)
        method = str(row.method.get("type", "supervised"))
        uris: dict[str, str] = {}
        for name, source, param in (
            ("training_uri", job.training_source(), "training_file"),
            ("validation_uri", job.validation, "validation_file"),
        ):
            if source is None:
                continue
            uri = staging.child(f"{param.split('_')[0]}.jsonl")
            spool = await data.converted(job.services.blobs, source, "bedrock", str(options["family"]), method, param)
            with spool:
                await s3.upload(client, spool, uri)
            uris[name] = str(uri)
        return uris

    async def poll(self, job: TuneJob) -> ProviderTune:
        with provider_errors("Reading the Bedrock customization job failed"):
            described = await CustomizationControl(job.services, job.target).get(str(job.row.provider_job_id))
        status = str(described.get("status"))
        completed = status == "Completed"
        failure = described.get("failureMessage")
        return ProviderTune(
            raw_state=status,
            fine_tuned_model=str(described.get("outputModelArn") or "") or None if completed else None,
            error={"code": "provider_failed", "message": str(failure), "param": None} if failure else None,
            events=_events(described),
            progress=_progress(described),
        )

    async def cancel(self, job: TuneJob) -> None:
        with provider_errors("Stopping the Bedrock customization job failed"):
            await CustomizationControl(job.services, job.target).stop(str(job.row.provider_job_id))


def _events(described: Json) -> list[EventDraft]:
    status = str(described.get("status"))
    changed = epoch_seconds(described.get("lastModifiedTime"), now())
    drafts: list[EventDraft] = []
    for stage, label in STAGES.items():
        detail = (described.get("statusDetails") or {}).get(stage) or {}
        stage_status = str(detail.get("status") or "NotStarted")
        if stage_status != "NotStarted":
            when = epoch_seconds(detail.get("lastModifiedTime") or detail.get("creationTime"), changed)
            message = f"{label}: {stage_status}"
            drafts.append(EventDraft(f"stage:{stage}:{stage_status}", when, message))
    level = "error" if status == "Failed" else "info"
    message = f"Bedrock customization job is {status}" + (
        f": {described['failureMessage']}" if described.get("failureMessage") else ""
    )
    drafts.append(EventDraft(f"state:{status}", epoch_seconds(described.get("endTime"), changed), message, level=level))
    if status == "Completed":
        drafts += _final(described, changed)
    return drafts


def _final(described: Json, when: int) -> list[EventDraft]:
    drafts: list[EventDraft] = []
    loss = (described.get("trainingMetrics") or {}).get("trainingLoss")
    if loss is not None:
        drafts.append(
            EventDraft("metrics:training", when, f"Training loss={loss}", type="metrics", data={"train_loss": loss})
        )
    for index, metrics in enumerate(described.get("validationMetrics") or []):
        value = (metrics or {}).get("validationLoss")
        message = f"Validation {index + 1} loss={value}"
        drafts.append(
            EventDraft(f"metrics:validation:{index}", when, message, type="metrics", data={"valid_loss": value})
        )
    model = described.get("outputModelArn")
    if model:
        drafts.append(EventDraft("model", when, f"New fine-tuned model created: {model}"))
    return drafts


def _progress(described: Json) -> dict[str, Any]:
    details = described.get("statusDetails") or {}
    done = sum(1 for stage in STAGES if (details.get(stage) or {}).get("status") == "Completed")
    return {"done": done, "total": len(STAGES), "unit": "stages"}
