"""Vertex AI supervised tuning (`tuningJobs`) of Gemini: OpenAI examples converted to Gemini `contents` lines and
staged to Cloud Storage, the job created with `supervisedTuningSpec` (dataset URIs and hyperparameters), polled,
cancelled with `:cancel`. On success `fine_tuned_model` is the tuned model's endpoint
(`projects/<p>/locations/<l>/endpoints/<id>`), which a chat through the same virtual key names to reach it.

What a job needs is checked when it is created (`prepare`): a bucket to stage in (portkey_options
`x-portkey-vertex-storage-bucket-name` or the virtual key's `vertexStorageBucketName`), and the project and location,
validated as strictly as the inference adapter validates them (they go into the URL).

Idempotency: Vertex's create has no request token. The job carries a label derived from the job id, and a submit that
may have created it before (the row says `creating`) lists jobs to find it before creating another.

Events are synthesized from what each poll reports, keyed by what they describe (`state:<state>`, `stats`,
`model`), so the same observation seen again records nothing new. Checkpoints are the tuned model's
`checkpoints` when Vertex reports them.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from batch.native import gcs
from batch.native.calls import Json, call_json, provider_errors
from finetune import data
from finetune.drivers.base import ProviderRefused, ProviderTune, TuneJob, epoch_seconds
from finetune.events import CheckpointDraft, EventDraft
from finetune.training import hyperparameters_for
from portico.errors import InvalidRequest
from portico.ids import now
from providers.adapters.vertex import LOCATION, PROJECT, access_token

if TYPE_CHECKING:
    from finetune.models import CreateFineTuningJobInput
    from gateway.targets import ResolvedTarget

JOB_NAME = re.compile(r"projects/[a-z0-9-]+/locations/[a-z0-9-]+/tuningJobs/\d+")
LABEL = "portico-fine-tune"
RECONCILE_PAGES = 10
STAGING_PREFIX = "portico/fine-tuning"


def _setting(target: ResolvedTarget, name: str, pattern: re.Pattern[str]) -> str:
    value = str(target.settings.get(name, ""))
    if not pattern.fullmatch(value):
        raise InvalidRequest(f"Invalid {name} '{value}'.", param=name, code="invalid_vertex_setting")
    return value


def _api_base(target: ResolvedTarget) -> str:
    location = _setting(target, "vertexRegion", LOCATION)
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    return f"{target.base_url or f'https://{host}'}/v1"


def _collection(target: ResolvedTarget) -> str:
    location = _setting(target, "vertexRegion", LOCATION)
    project = _setting(target, "vertexProjectId", PROJECT)
    return f"{_api_base(target)}/projects/{project}/locations/{location}/tuningJobs"


def _label(job_id: str) -> str:
    return hashlib.sha256(job_id.encode()).hexdigest()[:32]


class VertexDriver:
    checkpoints_note: str | None = "Vertex reported no checkpoints for this tuning job."

    def prepare(self, request: CreateFineTuningJobInput, target: ResolvedTarget) -> dict[str, Any]:
        _collection(target)
        options = request.portkey_options
        bucket = (options.vertex_storage_bucket_name if options else None) or target.settings.get(
            "vertexStorageBucketName"
        )
        if not bucket:
            raise InvalidRequest(
                "A Vertex tuning job reads its data from Cloud Storage: name a bucket in portkey_options "
                "'x-portkey-vertex-storage-bucket-name' or set vertexStorageBucketName on the virtual key.",
                param="x-portkey-vertex-storage-bucket-name",
                code="missing_gcs_bucket",
            )
        return {"bucket": gcs.check_bucket(str(bucket), "x-portkey-vertex-storage-bucket-name")}

    async def submit(self, job: TuneJob) -> ProviderTune:
        options, row = job.options, job.row
        with provider_errors("Creating the Vertex tuning job failed"):
            if options.get("creating"):
                found = await self._find(job)
                if found is not None:
                    await job.adopt(_job_name(found))
                    return _state(found)
            token = await access_token(job.target)
        uris = await self._stage(job, token, gcs.GcsUri(options["bucket"], f"{STAGING_PREFIX}/{row.id}"))
        await job.remember(creating=True, **uris)
        spec: Json = {
            "trainingDatasetUri": uris["training_uri"],
            "hyperParameters": hyperparameters_for("vertex", str(options["family"]), row.hyperparameters or {}),
        }
        if "validation_uri" in uris:
            spec["validationDatasetUri"] = uris["validation_uri"]
        body: Json = {
            "baseModel": row.model,
            "supervisedTuningSpec": spec,
            "tunedModelDisplayName": (row.suffix or row.id)[:128],
            "labels": {LABEL: _label(row.id)},
        }
        with provider_errors("Creating the Vertex tuning job failed"):
            created = await self._json(job, "POST", _collection(job.target), body)
        await job.adopt(_job_name(created))
        return _state(created)

    async def _stage(self, job: TuneJob, token: str, staging: gcs.GcsUri) -> dict[str, str]:
        client = gcs.gcs_client(str(job.target.settings.get("vertexProjectId")), token)
        family, method = str(job.options["family"]), str(job.row.method.get("type", "supervised"))
        uris: dict[str, str] = {}
        for name, source, param in (
            ("training_uri", job.training_source(), "training_file"),
            ("validation_uri", job.validation, "validation_file"),
        ):
            if source is None:
                continue
            uri = staging.child(f"{param.split('_')[0]}.jsonl")
            spool = await data.converted(job.services.blobs, source, "vertex", family, method, param)
            with spool:
                await gcs.upload(client, spool, uri)
            uris[name] = str(uri)
        return uris

    async def poll(self, job: TuneJob) -> ProviderTune:
        with provider_errors("Reading the Vertex tuning job failed"):
            return _state(await self._json(job, "GET", f"{_api_base(job.target)}/{job.row.provider_job_id}"))

    async def cancel(self, job: TuneJob) -> None:
        with provider_errors("Cancelling the Vertex tuning job failed"):
            await self._json(job, "POST", f"{_api_base(job.target)}/{job.row.provider_job_id}:cancel", {})

    async def _json(self, job: TuneJob, method: str, url: str, body: Json | None = None) -> Json:
        headers = {"authorization": f"Bearer {await access_token(job.target)}"}
        return await call_json(job.services, job.target, method, url, headers=headers, json=body)

    async def _find(self, job: TuneJob) -> Json | None:
        label, token = _label(job.row.id), ""
        for _ in range(RECONCILE_PAGES):
            query = "?pageSize=100" + (f"&pageToken={token}" if token else "")
            page = await self._json(job, "GET", _collection(job.target) + query)
            for resource in page.get("tuningJobs") or []:
                if (resource.get("labels") or {}).get(LABEL) == label:
                    return dict(resource)
            token = str(page.get("nextPageToken") or "")
            if not token:
                return None
        return None


def _job_name(resource: Json) -> str:
    name = str(resource.get("name"))
    if not JOB_NAME.fullmatch(name):
        raise ProviderRefused(f"Vertex answered with an unexpected tuning job name {name!r}.")
    return name


def _state(resource: Json) -> ProviderTune:
    state = str(resource.get("state"))
    tuned = resource.get("tunedModel") or {}
    stats = (resource.get("tuningDataStats") or {}).get("supervisedTuningDataStats") or {}
    error = resource.get("error") or {}
    tokens = stats.get("totalBillableTokenCount")
    return ProviderTune(
        raw_state=state,
        fine_tuned_model=str(tuned.get("endpoint") or "") or None,
        trained_tokens=int(tokens) if tokens is not None else None,
        error={"code": "provider_failed", "message": str(error["message"]), "param": None} if error else None,
        events=_events(resource, state, stats),
        checkpoints=_checkpoints(tuned),
    )


def _events(resource: Json, state: str, stats: Json) -> list[EventDraft]:
    when = epoch_seconds(resource.get("updateTime") or resource.get("createTime"), now())
    level = "error" if state == "JOB_STATE_FAILED" else "info"
    detail = f": {(resource.get('error') or {}).get('message')}" if resource.get("error") else ""
    drafts = [EventDraft(f"state:{state}", when, f"Vertex tuning job is {state}{detail}", level=level)]
    if stats:
        started = epoch_seconds(resource.get("startTime"), when)
        summary = ", ".join(f"{key}={value}" for key, value in sorted(stats.items()))
        drafts.append(EventDraft("stats", started, f"Training data: {summary}", type="metrics", data=dict(stats)))
    endpoint = (resource.get("tunedModel") or {}).get("endpoint")
    if endpoint:
        drafts.append(EventDraft("model", when, f"New fine-tuned model created: {endpoint}"))
    return drafts


def _checkpoints(tuned: Json) -> list[CheckpointDraft]:
    return [
        CheckpointDraft(
            step_number=int(point.get("step") or 0),
            created_at=now(),
            fine_tuned_model_checkpoint=str(point.get("endpoint") or point.get("checkpointId") or ""),
            metrics={"epoch": float(point.get("epoch") or 0)},
        )
        for point in tuned.get("checkpoints") or []
        if isinstance(point, dict)
    ]
