"""Bedrock batch inference (model invocation jobs): OpenAI lines converted to `{"recordId", "modelInput"}` for the
model's family and staged to S3, `CreateModelInvocationJob`, polling, and `<output>/<jobId>/<input file>.out` lines
converted back to OpenAI output lines (recordId = custom_id), failed records to the error file.

What a batch needs is checked when it is created (`prepare`): the model (a family Portico converts, serving the
batch's endpoint), the IAM role Bedrock assumes (the body's `role_arn`, `provider_options.role_arn`, or the
virtual key's `awsRoleArn`), and a bucket to stage in (`portkey_options` `x-portkey-aws-s3-bucket`, the virtual
key's `awsS3Bucket`, or the bucket of an s3:// `output_data_config`).

Idempotency: the create carries a `clientRequestToken` derived from the batch id, so Bedrock answers a repeated
create with the first job; and a submit that may have created the job before (the row says `creating`) finds it by
its name first. Staging writes to a key derived from the batch id, so a re-run overwrites rather than duplicates.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from batch.models import CreateBatchInput
from batch.native import s3
from batch.native.base import NativeJob, ProviderJob, ProviderRefused
from batch.native.bedrock_control import BedrockControl, region_of
from batch.native.bedrock_params import role_arn, staging_bucket
from batch.native.calls import provider_errors
from batch.native.lines import InputConverter, Json, failure_line, success_line
from batch.native.outputs import OutputSink
from portico.errors import InvalidRequest
from portico.ids import now
from providers.translate.bedrock_invoke import InvokeFamily, convertible_prefixes, invoke_family

if TYPE_CHECKING:
    from gateway.targets import ResolvedTarget

# botocore's patterns for CreateModelInvocationJob's jobName and clientRequestToken.
JOB_NAME = re.compile(r"[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}")
STAGING_PREFIX = "portico/batches"


def _required_family(model: str | None, endpoint: str) -> InvokeFamily:
    if not model:
        raise InvalidRequest(
            "A Bedrock batch job runs one model: name it in 'model' (or provider_options.model, or portkey_options "
            "x-portkey-provider-model).",
            param="model",
            code="missing_model",
        )
    family = invoke_family(model)
    if family is None:
        raise InvalidRequest(
            f"Portico converts OpenAI requests for Bedrock batch jobs to the native bodies of {convertible_prefixes()} "
            f"models; '{model}' is not one of them. Use completion_window 'immediate' to run it through Converse.",
            param="model",
            code="unsupported_model",
        )
    if family.endpoint != endpoint:
        raise InvalidRequest(
            f"{family.name} models serve {family.endpoint}, but this batch's endpoint is {endpoint}.",
            param="endpoint",
            code="unsupported_endpoint",
        )
    return family


def _job_name(request: CreateBatchInput) -> str | None:
    name = request.provider_param("job_name")
    if name is not None and not JOB_NAME.fullmatch(name):
        raise InvalidRequest(
            "A Bedrock job name is letters, digits, '+', '-' and '.', starting with a letter or digit, 63 at most.",
            param="job_name",
            code="invalid_job_name",
        )
    return name


def _token(batch_id: str) -> str:
    return "portico-" + batch_id.replace("_", "-")


class BedrockDriver:
    max_requests: int | None = 50_000

    def prepare(self, request: CreateBatchInput, target: ResolvedTarget) -> dict[str, Any]:
        model = request.provider_param("model") or (
            request.portkey_options.provider_model if request.portkey_options else None
        )
        _required_family(model, request.endpoint)
        region_of(target)
        output = request.provider_param("output_data_config")
        output_uri = s3.S3Uri.parse(output, "output_data_config") if output else None
        return {
            "model_id": model,
            "role_arn": role_arn(request, target, "batch job"),
            "bucket": staging_bucket(request, target, output_uri, "batch job", "output_data_config"),
            "output_uri": str(output_uri) if output_uri else None,
            "job_name": _job_name(request),
        }

    async def submit(self, job: NativeJob) -> ProviderJob:
        options, row = job.options, job.row
        control = BedrockControl(job.services, job.target)
        name = options.get("job_name") or _token(row.id)
        if options.get("creating"):
            with provider_errors("Looking for the Bedrock batch job failed"):
                found = await control.find(name, _token(row.id))
            if found is not None:
                await job.adopt(found)
                return await self.poll(job)
        staging = s3.S3Uri(options["bucket"], f"{STAGING_PREFIX}/{row.id}")
        input_uri = staging.child("input", f"{row.id}.jsonl")
        output_uri = options.get("output_uri") or str(staging.child("output")) + "/"
        await self._stage(job, input_uri)
        await job.remember(creating=True, job_name=name, input_uri=str(input_uri), output_uri=output_uri)
        body = {
            "jobName": name,
            "roleArn": options["role_arn"],
            "clientRequestToken": _token(row.id),
            "modelId": options["model_id"],
            "inputDataConfig": {"s3InputDataConfig": {"s3Uri": str(input_uri), "s3InputFormat": "JSONL"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": output_uri}},
        }
        with provider_errors("Creating the Bedrock batch job failed"):
            await job.adopt(await control.create(body))
        return await self.poll(job)

    async def _stage(self, job: NativeJob, uri: s3.S3Uri) -> None:
        model = str(job.options["model_id"])
        family = _required_family(model, job.row.endpoint)

        def convert(custom_id: str, body: Json) -> Json:
            return {"recordId": custom_id, "modelInput": family.request({**body, "model": model})}

        converter = InputConverter(convert)
        try:
            async for chunk in job.services.blobs.read(job.source.blob_key):
                await asyncio.to_thread(converter.feed, chunk)
            await asyncio.to_thread(converter.finish)
            if converter.errors:
                raise ProviderRefused(f"Lines of the input cannot be sent to {family.name}.", converter.errors)
            await s3.upload(s3.s3_client(job.target, job.services.settings), converter.spool, uri)
        finally:
            converter.spool.close()

    async def poll(self, job: NativeJob) -> ProviderJob:
        with provider_errors("Reading the Bedrock batch job failed"):
            described = await BedrockControl(job.services, job.target).get(str(job.row.provider_batch_id))
        return ProviderJob(
            raw_state=str(described.get("status")),
            total=described.get("totalRecordCount"),
            completed=described.get("successRecordCount"),
            failed=described.get("errorRecordCount"),
            message=described.get("message"),
        )

    async def collect(self, job: NativeJob, sink: OutputSink) -> None:
        options, row = job.options, job.row
        job_id = str(row.provider_batch_id).rsplit("/", 1)[-1]
        source = s3.S3Uri.parse(str(options["output_uri"]), "output_uri").child(job_id, f"{row.id}.jsonl.out")
        records = _Records(sink, str(options["model_id"]), job_id)
        client = s3.s3_client(job.target, job.services.settings)

        def run() -> None:
            for line in s3.read_lines(client, source):
                records.take(line)

        with s3.s3_errors(f"Reading the Bedrock output {source} failed"):
            await asyncio.to_thread(run)

    async def cancel(self, job: NativeJob) -> None:
        with provider_errors("Stopping the Bedrock batch job failed"):
            await BedrockControl(job.services, job.target).stop(str(job.row.provider_batch_id))


class _Records:
    """Bedrock output records → OpenAI output and error lines."""

    def __init__(self, sink: OutputSink, model: str, job_id: str) -> None:
        family = invoke_family(model)
        assert family is not None  # checked when the batch was created
        self.family, self.sink, self.model, self.job_id = family, sink, model, job_id
        self.batch_id = sink.batch_id
        self.created = now()

    def take(self, raw: bytes) -> None:
        record = json.loads(raw)
        custom_id = str(record.get("recordId"))
        if "modelOutput" not in record:
            error = record.get("error") or {}
            code = error.get("errorCode")
            status = code if isinstance(code, int) and 400 <= code <= 599 else 500
            message = str(error.get("errorMessage") or "Bedrock gave no answer for this record.")
            self.sink.failure(failure_line(self.batch_id, custom_id, status, message, self.job_id))
            return
        completion_id = "chatcmpl-" + hashlib.sha256(f"{self.batch_id}\n{custom_id}".encode()).hexdigest()[:24]
        try:
            body = self.family.response(
                record["modelOutput"], model=self.model, completion_id=completion_id, created=self.created
            )
        except (KeyError, TypeError, ValueError) as error:
            message = f"Portico could not read the model's answer as {self.family.name} output: {error!r}"
            self.sink.failure(failure_line(self.batch_id, custom_id, 502, message, self.job_id))
            return
        self.sink.success(success_line(self.batch_id, custom_id, body, self.job_id))
