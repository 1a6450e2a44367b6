"""OpenAI's batch API, simulated: create, list, retrieve, cancel, progressing on the simulator's clock.

A batch is ``validating`` for `JobSettings.batch_validating` seconds, then either ``failed`` (the input has bad lines:
``errors.data`` names each with its line number) or ``in_progress``, where one line is processed every
``batch_per_line`` seconds; after the last one it is ``finalizing`` for ``batch_finalizing`` seconds, then
``completed``. Cancelling makes it ``cancelling`` for ``batch_cancelling`` seconds, then ``cancelled``. One still
validating or in progress when its window ends (``completion_window``, or ``batch_window`` if set) is ``expired``.

How one line is run, and when it fails, is `openai_batch_lines`. Succeeded lines go to the output file, the others
to the error file (both purpose ``batch_output``, written when the batch ends, absent when empty); ``request_counts``
count the same lines. A cancelled or expired batch keeps what it processed before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from providers.simulators.behaviour import InvalidRequest
from providers.simulators.edge import Call, endpoint, model_in_body, require
from providers.simulators.openai import DIALECT
from providers.simulators.openai_batch_lines import ENDPOINTS, EXPIRED, Line, output, parse_lines, run_line
from providers.simulators.openai_job_state import (
    Job,
    conflict,
    jsonl_bytes,
    metadata_of,
    new_id,
    not_found,
    page,
    settle,
    store_of,
)

WINDOWS = {"24h": 24 * 3600.0}
ACTIVE = ("validating", "in_progress", "finalizing")


@dataclass(kw_only=True, eq=False)
class Batch(Job):
    endpoint: str
    input_file_id: str
    completion_window: str
    window: float
    metadata: dict[str, str] | None
    source: bytes
    status: str = "validating"
    model: str | None = None
    lines: list[Line] = field(default_factory=list)
    succeeded: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] | None = None
    # in_progress_at, finalizing_at, completed_at, failed_at, expired_at, cancelling_at, cancelled_at
    stamps: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0

    def enter(self, status: str, when: float) -> None:
        self.status = status
        self.stamps[f"{status}_at"] = int(when)

    async def validate(self, when: float, call: Call) -> None:
        self.lines, errors = parse_lines(self.source, self.endpoint)
        if errors:
            self.errors = errors
            self.enter("failed", when)
            self.timeline.clear()
            return
        self.model = model_in_body(call.request, self.lines[0].body) or None
        self.enter("in_progress", when)
        self.timeline.at(when + self.settings.batch_per_line, self.process)

    async def process(self, when: float, call: Call) -> None:
        line = self.lines[len(self.succeeded) + len(self.failed)]
        outcome = await run_line(line, self.endpoint, call)
        body = outcome["response"]["body"]
        if outcome["response"]["status_code"] == 200:
            usage = body.get("usage") or {}
            self.input_tokens += usage.get("prompt_tokens", 0)
            self.output_tokens += usage.get("completion_tokens", 0)
        (self.succeeded if outcome["response"]["status_code"] == 200 else self.failed).append(outcome)
        if len(self.succeeded) + len(self.failed) < len(self.lines):
            self.timeline.at(when + self.settings.batch_per_line, self.process)
            return
        self.enter("finalizing", when)
        self.timeline.at(when + self.settings.batch_finalizing, self.complete)

    async def complete(self, when: float, call: Call) -> None:
        self.finish("completed", when, call)

    async def expire(self, when: float, call: Call) -> None:
        if self.status not in ("validating", "in_progress"):
            return
        done = len(self.succeeded) + len(self.failed)
        self.failed += [output(line, line_error=EXPIRED) for line in self.lines[done:]]
        self.finish("expired", when, call)

    def cancel(self, now: float) -> None:
        self.enter("cancelling", now)
        self.timeline.clear()
        self.timeline.at(now + self.settings.batch_cancelling, self.cancelled)

    async def cancelled(self, when: float, call: Call) -> None:
        self.finish("cancelled", when, call)

    def finish(self, status: str, when: float, call: Call) -> None:
        """Write what was processed to the output and error files and end the batch."""
        store = store_of(call.request)
        if self.succeeded:
            name = f"{self.id}_output.jsonl"
            self.output_file_id = store.add_file(jsonl_bytes(self.succeeded), name, "batch_output", int(when)).id
        if self.failed:
            name = f"{self.id}_error.jsonl"
            self.error_file_id = store.add_file(jsonl_bytes(self.failed), name, "batch_output", int(when)).id
        self.enter(status, when)
        self.timeline.clear()

    def as_json(self) -> dict[str, Any]:
        stamps = ("in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
        counts = {"total": len(self.lines), "completed": len(self.succeeded), "failed": len(self.failed)}
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": None if self.errors is None else {"object": "list", "data": self.errors},
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": int(self.created_at + self.window),
            **{f"{name}_at": self.stamps.get(f"{name}_at") for name in stamps},
            "request_counts": counts,
            "usage": _usage(self.input_tokens, self.output_tokens),
            "metadata": self.metadata,
        }


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


async def create_batch(call: Call) -> Response:
    store = await settle(call)
    input_file_id = require(call.body, "input_file_id", str)
    endpoint_path = require(call.body, "endpoint", str)
    window = require(call.body, "completion_window", str)
    if endpoint_path not in ENDPOINTS:
        raise InvalidRequest(f"'endpoint' must be one of {', '.join(ENDPOINTS)}")
    if window not in WINDOWS:
        raise InvalidRequest(f"'completion_window' must be one of {', '.join(WINDOWS)}")
    metadata = metadata_of(call.body)
    source = store.files.get(input_file_id)
    if source is None:
        return not_found("file", input_file_id, param="input_file_id")
    if source.purpose != "batch":
        raise InvalidRequest(f"The input file {input_file_id} has purpose {source.purpose!r}; it must be 'batch'.")
    now = call.controls.clock.now()
    settings = dataclasses.replace(store.settings)
    batch = Batch(
        id=new_id("batch_"),
        created_at=int(now),
        settings=settings,
        endpoint=endpoint_path,
        input_file_id=input_file_id,
        completion_window=window,
        window=WINDOWS[window] if settings.batch_window is None else settings.batch_window,
        metadata=metadata,
        source=source.data,
    )
    batch.timeline.at(now + settings.batch_validating, batch.validate)
    batch.timeline.at(now + batch.window, batch.expire)
    store.jobs[batch.id] = batch
    return JSONResponse(batch.as_json())


async def list_batches(call: Call) -> Response:
    store = await settle(call)
    return page(call, [batch.as_json() for batch in store.of_kind(Batch)[::-1]], (20, 100))


def _batch_id(call: Call) -> str:
    return str(call.request.path_params["batch_id"])


async def retrieve_batch(call: Call) -> Response:
    batch = (await settle(call)).find(Batch, _batch_id(call))
    return JSONResponse(batch.as_json()) if batch else not_found("batch", _batch_id(call))


async def cancel_batch(call: Call) -> Response:
    batch = (await settle(call)).find(Batch, _batch_id(call))
    if batch is None:
        return not_found("batch", _batch_id(call))
    if batch.status in ACTIVE:
        batch.cancel(call.controls.clock.now())
    elif batch.status not in ("cancelling", "cancelled"):
        return conflict("batch", batch.status)
    return JSONResponse(batch.as_json())


def routes() -> list[BaseRoute]:
    by_id = "/v1/batches/{batch_id}"
    return [
        Route("/v1/batches", endpoint(DIALECT, "batches.create", create_batch), methods=["POST"]),
        Route("/v1/batches", endpoint(DIALECT, "batches.list", list_batches), methods=["GET"]),
        Route(by_id, endpoint(DIALECT, "batches.retrieve", retrieve_batch), methods=["GET"]),
        Route(by_id + "/cancel", endpoint(DIALECT, "batches.cancel", cancel_batch), methods=["POST"]),
    ]
