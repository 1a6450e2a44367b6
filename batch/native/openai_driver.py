"""OpenAI's own Batch API: the input file is sent to OpenAI as is, the batch created and polled, and its output and
error files brought back as Portico files.

Idempotency: OpenAI's create has no request token, so the batch carries Portico's batch id in its metadata, and a
submit that may have created one before (the row says `creating`) looks for it by listing before creating another.
The uploaded input file's id is kept on the row, so a re-run does not upload it again.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from batch.models import BatchError, CreateBatchInput
from batch.native.base import NativeJob, ProviderJob
from batch.native.calls import Json, call_json, provider_errors
from batch.native.lines import LineSplitter
from batch.native.outputs import OutputSink
from providers.adapters.base import open_answer
from providers.adapters.openai import endpoint

if TYPE_CHECKING:
    from gateway.targets import ResolvedTarget
    from portico.context import Services

METADATA_KEY = "portico_batch_id"
# OpenAI allows 16 metadata pairs; Portico's own takes one of them.
MAX_CALLER_METADATA = 15
# Batches listed (newest first, 100 a page) when looking for one this batch may have created already.
RECONCILE_PAGES = 10
DOWNLOAD_TIMEOUT = 300.0


class OpenAIDriver:
    max_requests: int | None = 50_000

    def prepare(self, request: CreateBatchInput, target: ResolvedTarget) -> dict[str, Any]:
        # The lines go to OpenAI unchanged and name their own models: there is nothing to check beyond the file.
        return {}

    async def submit(self, job: NativeJob) -> ProviderJob:
        with provider_errors("Creating the OpenAI batch failed"):
            if job.options.get("creating"):
                found = await self._find(job)
                if found is not None:
                    await job.adopt(found["id"])
                    return _state(found)
            file_id = job.options.get("provider_input_file_id") or await self._upload_once(job)
            await job.remember(provider_input_file_id=file_id, creating=True)
            body = {
                "input_file_id": file_id,
                "endpoint": job.row.endpoint,
                "completion_window": "24h",
                "metadata": _metadata(job),
            }
            created = await self._json(job, "POST", "/batches", json=body)
            await job.adopt(created["id"])
            return _state(created)

    async def poll(self, job: NativeJob) -> ProviderJob:
        with provider_errors("Reading the OpenAI batch failed"):
            return _state(await self._json(job, "GET", f"/batches/{job.row.provider_batch_id}"))

    async def collect(self, job: NativeJob, sink: OutputSink) -> None:
        with provider_errors("Downloading the OpenAI batch's results failed"):
            batch = await self._json(job, "GET", f"/batches/{job.row.provider_batch_id}")
            for file_id, failed in ((batch.get("output_file_id"), False), (batch.get("error_file_id"), True)):
                if file_id:
                    await self._download(job, str(file_id), sink, failed=failed)

    async def cancel(self, job: NativeJob) -> None:
        with provider_errors("Cancelling the OpenAI batch failed"):
            await self._json(job, "POST", f"/batches/{job.row.provider_batch_id}/cancel")

    async def _json(self, job: NativeJob, method: str, path: str, *, json: Json | None = None) -> Json:
        url, headers = endpoint(job.target, path)
        return await call_json(job.services, job.target, method, url, headers=headers, json=json)

    async def _find(self, job: NativeJob) -> Json | None:
        after: str | None = None
        for _ in range(RECONCILE_PAGES):
            query = "?limit=100" + (f"&after={after}" if after else "")
            page = await self._json(job, "GET", f"/batches{query}")
            batches = [batch for batch in page.get("data") or [] if isinstance(batch, dict)]
            for batch in batches:
                if (batch.get("metadata") or {}).get(METADATA_KEY) == job.row.id:
                    return batch
            if not page.get("has_more") or not batches:
                return None
            after = str(batches[-1]["id"])
        return None

    async def _upload_once(self, job: NativeJob) -> str:
        maybe_sent = bool(job.options.get("uploading"))
        await job.remember(uploading=True)
        source = job.source
        return await upload_once(
            job.services, job.target, source.blob_key, source.bytes, f"{job.row.id}.jsonl", "batch", maybe_sent
        )

    async def _download(self, job: NativeJob, file_id: str, sink: OutputSink, *, failed: bool) -> None:
        url, headers = endpoint(job.target, f"/files/{file_id}/content")
        answer = await open_answer(
            job.services.upstream, job.target, "GET", url, headers=headers, timeout_s=DOWNLOAD_TIMEOUT
        )
        splitter = LineSplitter()

        def take(lines: list[bytes]) -> None:
            for line in lines:
                sink.passthrough(line, failed=failed)

        async for chunk in answer.iter_chunks():
            await asyncio.to_thread(take, list(splitter.feed(chunk)))
        take(list(splitter.finish()))


async def upload_blob(
    services: Services, target: ResolvedTarget, blob_key: str, size: int, filename: str, purpose: str
) -> str:
    """Send a stored blob to the provider's `/files` as a multipart upload, streamed with its length known; returns
    the provider's file id. (Fine-tuning uploads its training files through this too.)"""
    boundary = secrets.token_hex(16)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n{purpose}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for chunk in services.blobs.read(blob_key):
            yield chunk
        yield tail

    url, headers = endpoint(target, "/files")
    headers = {
        **headers,
        "content-type": f"multipart/form-data; boundary={boundary}",
        "content-length": str(len(head) + size + len(tail)),
    }
    uploaded = await call_json(services, target, "POST", url, headers=headers, data=body())
    return str(uploaded["id"])


async def upload_once(
    services: Services, target: ResolvedTarget, blob_key: str, size: int, filename: str, purpose: str, maybe_sent: bool
) -> str:
    """`upload_blob`, unless `maybe_sent` (an earlier run started this upload and its answer never came back) and
    the provider has the file: then that file's id. The caller names files uniquely (after the batch or job id)."""
    if maybe_sent:
        found = await _find_file(services, target, filename, size, purpose)
        if found is not None:
            return found
    return await upload_blob(services, target, blob_key, size, filename, purpose)


async def _find_file(services: Services, target: ResolvedTarget, filename: str, size: int, purpose: str) -> str | None:
    """The file of that name and size among the newest page of the provider's files of that purpose (up to
    10,000: the upload is recent)."""
    url, headers = endpoint(target, f"/files?purpose={quote(purpose)}&order=desc&limit=10000")
    page = await call_json(services, target, "GET", url, headers=headers)
    for stored in page.get("data") or []:
        if isinstance(stored, dict) and stored.get("filename") == filename and stored.get("bytes") == size:
            return str(stored["id"])
    return None


def _metadata(job: NativeJob) -> dict[str, str]:
    caller = list((job.row.metadata_ or {}).items())[:MAX_CALLER_METADATA]
    return {**{str(k): str(v) for k, v in caller}, METADATA_KEY: job.row.id}


def _state(batch: Json) -> ProviderJob:
    counts = batch.get("request_counts") or {}
    errors = [
        BatchError(
            code=str(error.get("code") or "invalid_request"),
            message=str(error.get("message") or "OpenAI refused the batch."),
            param=error.get("param"),
            line=error.get("line"),
        )
        for error in ((batch.get("errors") or {}).get("data") or [])
        if isinstance(error, dict)
    ]
    return ProviderJob(
        raw_state=str(batch.get("status")),
        total=counts.get("total"),
        completed=counts.get("completed"),
        failed=counts.get("failed"),
        message=errors[0].message if errors else None,
        errors=errors,
    )
