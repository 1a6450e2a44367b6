"""Vertex AI batch prediction (`batchPredictionJobs`) for Gemini: OpenAI chat lines converted to
`{"custom_id", "request": <generateContent body>}` and staged to Cloud Storage, the job created with the model it
runs, polled, and its `predictions*.jsonl` lines (the input line plus `response` or a `status` error; Vertex keeps
extra keys such as custom_id) converted back to OpenAI output and error lines.

What a batch needs is checked when it is created (`prepare`): the chat endpoint (Gemini batch prediction answers
generateContent requests), the model (`model`, `provider_options.model` or portkey_options
`x-portkey-provider-model`; a job runs one), and a bucket to stage in (portkey_options
`x-portkey-vertex-storage-bucket-name`, the virtual key's `vertexStorageBucketName`, or the bucket of a gs://
`output_data_config`). The project and location go into the URL, so they are validated as strictly as the
inference adapter validates them.

Idempotency: Vertex's create has no request token. The job carries a label derived from the batch id, and a submit
that may have created it before (the row says `creating`) lists jobs to find it before creating another.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from batch.models import CreateBatchInput
from batch.native import gcs
from batch.native.base import NativeJob, ProviderJob, ProviderRefused
from batch.native.calls import Json, call_json, provider_errors
from batch.native.lines import InputConverter
from batch.native.outputs import OutputSink
from batch.native.vertex_records import PredictionRecords
from portico.errors import InvalidRequest
from providers.adapters.vertex import LOCATION, MODEL, PROJECT, access_token
from providers.translate.gemini_request import chat_to_gemini

if TYPE_CHECKING:
    from gateway.targets import ResolvedTarget

CHAT = "/v1/chat/completions"
# A publisher model or a tuned model, optionally with its project and location, as batchPredictionJobs takes it.
MODEL_NAME = re.compile(
    r"(projects/[a-z0-9-]+/locations/[a-z0-9-]+/)?(publishers/[a-z0-9-]+/models/|models/)[A-Za-z0-9][A-Za-z0-9._@-]*"
)
JOB_NAME = re.compile(r"projects/[a-z0-9-]+/locations/[a-z0-9-]+/batchPredictionJobs/\d+")
LABEL = "portico-batch"
RECONCILE_PAGES = 10
STAGING_PREFIX = "portico/batches"


def _checked(value: str, pattern: re.Pattern[str], field: str) -> str:
    if not pattern.fullmatch(value):
        raise InvalidRequest(f"Invalid {field} '{value}'.", param=field, code="invalid_vertex_setting")
    return value


def _model_name(request: CreateBatchInput) -> str:
    model = request.provider_param("model") or (
        request.portkey_options.provider_model if request.portkey_options else None
    )
    if not model:
        raise InvalidRequest(
            "A Vertex batch prediction job runs one model: name it in 'model' (or provider_options.model, or "
            "portkey_options x-portkey-provider-model), e.g. 'gemini-2.0-flash'.",
            param="model",
            code="missing_model",
        )
    if MODEL_NAME.fullmatch(model):
        return model
    return f"publishers/google/models/{_checked(model, MODEL, 'model')}"


def _bucket(request: CreateBatchInput, target: ResolvedTarget, output: gcs.GcsUri | None) -> str:
    options = request.portkey_options
    bucket = (options.vertex_storage_bucket_name if options else None) or target.settings.get("vertexStorageBucketName")
    bucket = bucket or (output.bucket if output else None)
    if not bucket:
        raise InvalidRequest(
            "A Vertex batch prediction job reads its input from Cloud Storage: name a bucket in portkey_options "
            "'x-portkey-vertex-storage-bucket-name', set vertexStorageBucketName on the virtual key, or send a gs:// "
            "'output_data_config'.",
            param="x-portkey-vertex-storage-bucket-name",
            code="missing_gcs_bucket",
        )
    return gcs.check_bucket(str(bucket), "x-portkey-vertex-storage-bucket-name")


def _api_base(target: ResolvedTarget) -> str:
    location = _checked(str(target.settings.get("vertexRegion", "")), LOCATION, "vertexRegion")
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    return f"{target.base_url or f'https://{host}'}/v1"


def _collection(target: ResolvedTarget) -> str:
    location = _checked(str(target.settings.get("vertexRegion", "")), LOCATION, "vertexRegion")
    project = _checked(str(target.settings.get("vertexProjectId", "")), PROJECT, "vertexProjectId")
    return f"{_api_base(target)}/projects/{project}/locations/{location}/batchPredictionJobs"


def _label(batch_id: str) -> str:
    # Label values are lower-case; batch ids are not.
    return hashlib.sha256(batch_id.encode()).hexdigest()[:32]


def _state(resource: Json) -> ProviderJob:
    stats = resource.get("completionStats") or {}
    succeeded, failed = stats.get("successfulCount"), stats.get("failedCount")
    error = resource.get("error") or {}
    return ProviderJob(
        raw_state=str(resource.get("state")),
        completed=int(succeeded) if succeeded is not None else None,
        failed=int(failed) if failed is not None else None,
        message=str(error["message"]) if error.get("message") else None,
    )


class VertexDriver:
    max_requests: int | None = 200_000

    def prepare(self, request: CreateBatchInput, target: ResolvedTarget) -> dict[str, Any]:
        if request.endpoint != CHAT:
            raise InvalidRequest(
                f"Vertex batch prediction runs Gemini's generateContent, so a '24h' batch must call {CHAT}; use "
                "completion_window 'immediate' for other endpoints.",
                param="endpoint",
                code="unsupported_endpoint",
            )
        model_name = _model_name(request)
        _collection(target)
        output = request.provider_param("output_data_config")
        output_uri = gcs.GcsUri.parse(output, "output_data_config") if output else None
        job_name = request.provider_param("job_name")
        if job_name is not None and not 0 < len(job_name) <= 128:
            raise InvalidRequest("A Vertex job's display name is 1 to 128 characters.", param="job_name")
        return {
            "model_name": model_name,
            "bucket": _bucket(request, target, output_uri),
            "output_uri": str(output_uri) if output_uri else None,
            "job_name": job_name,
        }

    async def submit(self, job: NativeJob) -> ProviderJob:
        options, row = job.options, job.row
        display_name = options.get("job_name") or f"portico-{row.id}"
        with provider_errors("Creating the Vertex batch prediction job failed"):
            if options.get("creating"):
                found = await self._find(job, display_name)
                if found is not None:
                    await job.adopt(_job_name(found))
                    return _state(found)
            token = await access_token(job.target)
        staging = gcs.GcsUri(options["bucket"], f"{STAGING_PREFIX}/{row.id}")
        input_uri = staging.child("input.jsonl")
        output_uri = options.get("output_uri") or str(staging.child("output"))
        await self._stage(job, token, input_uri)
        await job.remember(creating=True, input_uri=str(input_uri), output_uri=output_uri)
        body = {
            "displayName": display_name,
            "model": options["model_name"],
            "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [str(input_uri)]}},
            "outputConfig": {"predictionsFormat": "jsonl", "gcsDestination": {"outputUriPrefix": output_uri}},
            "labels": {LABEL: _label(row.id)},
        }
        with provider_errors("Creating the Vertex batch prediction job failed"):
            created = await self._json(job, "POST", _collection(job.target), body)
        await job.adopt(_job_name(created))
        return _state(created)

    async def _stage(self, job: NativeJob, token: str, uri: gcs.GcsUri) -> None:
        def convert(custom_id: str, body: Json) -> Json:
            return {"custom_id": custom_id, "request": chat_to_gemini(body)}

        converter = InputConverter(convert)
        try:
            async for chunk in job.services.blobs.read(job.source.blob_key):
                await asyncio.to_thread(converter.feed, chunk)
            await asyncio.to_thread(converter.finish)
            if converter.errors:
                raise ProviderRefused("Lines of the input cannot be sent to Vertex AI Gemini.", converter.errors)
            project = str(job.target.settings.get("vertexProjectId"))
            await gcs.upload(gcs.gcs_client(project, token), converter.spool, uri)
        finally:
            converter.spool.close()

    async def poll(self, job: NativeJob) -> ProviderJob:
        with provider_errors("Reading the Vertex batch prediction job failed"):
            return _state(await self._json(job, "GET", self._url(job)))

    async def collect(self, job: NativeJob, sink: OutputSink) -> None:
        with provider_errors("Reading the Vertex batch prediction job failed"):
            resource = await self._json(job, "GET", self._url(job))
            token = await access_token(job.target)
        records = PredictionRecords(sink, str(job.options["model_name"]), str(job.row.provider_batch_id))
        directory = (resource.get("outputInfo") or {}).get("gcsOutputDirectory")
        if directory:
            source = gcs.GcsUri.parse(str(directory), "gcsOutputDirectory")
            client = gcs.gcs_client(str(job.target.settings.get("vertexProjectId")), token)

            def run() -> None:
                for line in gcs.prediction_lines(client, source):
                    records.take(line)

            with gcs.gcs_errors(f"Reading the Vertex predictions under {source} failed"):
                await asyncio.to_thread(run)

    async def cancel(self, job: NativeJob) -> None:
        with provider_errors("Cancelling the Vertex batch prediction job failed"):
            await self._json(job, "POST", self._url(job) + ":cancel", {})

    def _url(self, job: NativeJob) -> str:
        return f"{_api_base(job.target)}/{job.row.provider_batch_id}"

    async def _json(self, job: NativeJob, method: str, url: str, body: Json | None = None) -> Json:
        headers = {"authorization": f"Bearer {await access_token(job.target)}"}
        return await call_json(job.services, job.target, method, url, headers=headers, json=body)

    async def _find(self, job: NativeJob, display_name: str) -> Json | None:
        label = _label(job.row.id)
        query = f"?pageSize=100&filter={quote(f'labels.{LABEL}={label}')}"
        token = ""
        for _ in range(RECONCILE_PAGES):
            page_query = query + (f"&pageToken={quote(token)}" if token else "")
            page = await self._json(job, "GET", _collection(job.target) + page_query)
            for resource in page.get("batchPredictionJobs") or []:
                labels = resource.get("labels") or {}
                if labels.get(LABEL) == label and resource.get("displayName") == display_name:
                    return dict(resource)
            token = str(page.get("nextPageToken") or "")
            if not token:
                return None
        return None


def _job_name(resource: Json) -> str:
    name = str(resource.get("name"))
    if not JOB_NAME.fullmatch(name):
        raise ProviderRefused(f"Vertex answered with an unexpected job name {name!r}.")
    return name
