"""OpenAI's own fine-tuning jobs: the training (and validation) files are sent to OpenAI as they are, the job created
with the suffix, method and hyperparameters, and polled; OpenAI's events and checkpoints are mirrored as they are.

Idempotency: OpenAI's create has no request token, so the job carries Portico's id in its metadata, and a submit
that may have created one before (the row says `creating`) finds it with a metadata filter before creating another.
Uploaded file ids are kept on the row, so a re-run does not upload again.

Events are read newest first, page by page, until one already recorded turns up: a multi-day job with thousands of
step events costs one page per poll, not all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from batch.native.calls import Json, call_json, provider_errors
from batch.native.openai_driver import upload_once
from finetune.drivers.base import ProviderTune, TuneJob
from finetune.events import CheckpointDraft, EventDraft, has_event
from providers.adapters.openai import endpoint

if TYPE_CHECKING:
    from finetune.models import CreateFineTuningJobInput
    from gateway.targets import ResolvedTarget

METADATA_KEY = "portico_fine_tuning_job_id"
MAX_CALLER_METADATA = 15
EVENT_PAGES = 20
PAGE = 100


class OpenAIDriver:
    checkpoints_note: str | None = None

    def prepare(self, request: CreateFineTuningJobInput, target: ResolvedTarget) -> dict[str, Any]:
        # OpenAI reads the files and checks the hyperparameters itself.
        return {}

    async def submit(self, job: TuneJob) -> ProviderTune:
        with provider_errors("Creating the OpenAI fine-tuning job failed"):
            if job.options.get("creating"):
                found = await self._find(job)
                if found is not None:
                    await job.adopt(str(found["id"]))
                    return await self.poll(job)
            files = await self._upload_files(job)
            await job.remember(**files, creating=True)
            created = await self._json(job, "POST", "/fine_tuning/jobs", json=_create_body(job, files))
            await job.adopt(str(created["id"]))
        return await self.poll(job)

    async def _upload_files(self, job: TuneJob) -> dict[str, str]:
        files = {
            name: str(job.options[name])
            for name in ("provider_training_file", "provider_validation_file")
            if job.options.get(name)
        }
        pairs = (("provider_training_file", job.training_source()), ("provider_validation_file", job.validation))
        for name, source in pairs:
            if source is None or name in files:
                continue
            # Noted before sending: a later run then looks for the file first, in case this answer is lost.
            sending = f"uploading_{name}"
            maybe_sent = bool(job.options.get(sending))
            await job.remember(**{sending: True})
            filename = f"{job.row.id}-{name.split('_')[1]}.jsonl"
            files[name] = await upload_once(
                job.services, job.target, source.blob_key, source.bytes, filename, "fine-tune", maybe_sent
            )
            await job.remember(**{name: files[name]})
        return files

    async def poll(self, job: TuneJob) -> ProviderTune:
        with provider_errors("Reading the OpenAI fine-tuning job failed"):
            base = f"/fine_tuning/jobs/{job.row.provider_job_id}"
            described = await self._json(job, "GET", base)
            events = await self._events(job, base)
            checkpoints = await self._json(job, "GET", f"{base}/checkpoints?limit={PAGE}")
        return _state(described, events, checkpoints)

    async def cancel(self, job: TuneJob) -> None:
        with provider_errors("Cancelling the OpenAI fine-tuning job failed"):
            await self._json(job, "POST", f"/fine_tuning/jobs/{job.row.provider_job_id}/cancel")

    async def _json(self, job: TuneJob, method: str, path: str, *, json: Json | None = None) -> Json:
        url, headers = endpoint(job.target, path)
        return await call_json(job.services, job.target, method, url, headers=headers, json=json)

    async def _find(self, job: TuneJob) -> Json | None:
        query = f"?limit={PAGE}&{quote(f'metadata[{METADATA_KEY}]')}={quote(job.row.id)}"
        page = await self._json(job, "GET", f"/fine_tuning/jobs{query}")
        for found in page.get("data") or []:
            if isinstance(found, dict) and (found.get("metadata") or {}).get(METADATA_KEY) == job.row.id:
                return found
        return None

    async def _events(self, job: TuneJob, base: str) -> list[Json]:
        """The provider's events not recorded yet, oldest first."""
        fresh: list[Json] = []
        after: str | None = None
        for _ in range(EVENT_PAGES):
            query = f"?limit={PAGE}" + (f"&after={quote(after)}" if after else "")
            page = await self._json(job, "GET", f"{base}/events{query}")
            data = [event for event in page.get("data") or [] if isinstance(event, dict)]
            for event in data:
                if await has_event(job.services, job.row.id, _event_key(event)):
                    return fresh[::-1]
                fresh.append(event)
            if not page.get("has_more") or not data:
                break
            after = str(data[-1]["id"])
        return fresh[::-1]


def _create_body(job: TuneJob, files: dict[str, str]) -> Json:
    row = job.row
    caller = list((row.metadata_ or {}).items())[:MAX_CALLER_METADATA]
    body: Json = {
        "model": row.model,
        "training_file": files["provider_training_file"],
        "method": row.method,
        "seed": row.seed,
        "metadata": {**{str(k): str(v) for k, v in caller}, METADATA_KEY: row.id},
    }
    if files.get("provider_validation_file"):
        body["validation_file"] = files["provider_validation_file"]
    if row.suffix:
        body["suffix"] = row.suffix
    return body


def _event_key(event: Json) -> str:
    return f"openai:{event.get('id')}"


def _state(described: Json, events: list[Json], checkpoints: Json) -> ProviderTune:
    drafts = [
        EventDraft(
            key=_event_key(event),
            created_at=int(event.get("created_at") or 0),
            message=str(event.get("message") or ""),
            level=str(event.get("level") or "info"),
            type=str(event.get("type") or "message"),
            data=event.get("data") or None,
        )
        for event in events
    ]
    saved = [
        CheckpointDraft(
            step_number=int(point["step_number"]),
            created_at=int(point.get("created_at") or 0),
            fine_tuned_model_checkpoint=str(point.get("fine_tuned_model_checkpoint") or ""),
            metrics={k: float(v) for k, v in (point.get("metrics") or {}).items() if isinstance(v, int | float)},
        )
        for point in checkpoints.get("data") or []
        if isinstance(point, dict) and isinstance(point.get("step_number"), int)
    ]
    method = described.get("method") or {}
    settings = method.get(str(method.get("type"))) or {}
    return ProviderTune(
        raw_state=str(described.get("status")),
        fine_tuned_model=described.get("fine_tuned_model"),
        trained_tokens=described.get("trained_tokens"),
        estimated_finish=described.get("estimated_finish"),
        error=described.get("error") or None,
        events=drafts,
        checkpoints=saved,
        progress=_progress(drafts),
        hyperparameters=settings.get("hyperparameters") or described.get("hyperparameters"),
    )


def _progress(events: list[EventDraft]) -> dict[str, Any] | None:
    """The last metrics event's step ("Step k/N: ..." carries the total)."""
    for event in reversed(events):
        if event.type == "metrics" and event.data and "step" in event.data:
            total = event.message.split(":", 1)[0].rpartition("/")[2]
            return {"done": int(event.data["step"]), "total": int(total) if total.isdigit() else None, "unit": "steps"}
    return None
