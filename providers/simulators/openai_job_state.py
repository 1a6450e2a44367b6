"""The state the OpenAI job APIs (files, batches, fine-tuning) of one simulator share: stored files, jobs, the
timeline on which jobs progress, cursor pagination, and the ``/_sim/jobs`` control.

Jobs progress lazily. Each job keeps a timeline of milestones in simulated time (the controls' `Clock`), and every
job-API request (and ``GET /v1/models``) first runs the milestones that are due. Nothing runs in the background, so a
job's history depends only on the clock and on the requests that steer it (cancel), never on task scheduling; a
milestone stamps the simulated time it was due, not the time a request happened to observe it.

Durations are simulated seconds (`JobSettings`); ``GET /_sim/jobs`` shows them and ``POST /_sim/jobs`` with a JSON
object of fields changes them for jobs created afterwards. Tests also speed the clock up (``clock_speed``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import json
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from providers.simulators.behaviour import InvalidRequest
from providers.simulators.edge import Call
from providers.simulators.openai import error


@dataclass
class JobSettings:
    """How long each phase lasts, in simulated seconds."""

    batch_validating: float = 60.0
    batch_per_line: float = 2.0
    batch_finalizing: float = 30.0
    batch_cancelling: float = 10.0
    # A batch still validating or in progress this long after creation expires; None: its completion_window (24h).
    batch_window: float | None = None
    tune_validating: float = 60.0
    tune_queued: float = 60.0
    tune_per_step: float = 10.0

    def update(self, changes: dict[str, Any]) -> None:
        names = {f.name for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in names:
                raise InvalidRequest(f"unknown job setting {name!r}; known: {', '.join(sorted(names))}")
            if value is None and name == "batch_window":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidRequest(f"job setting {name!r} must be a non-negative number of seconds")
        for name, value in changes.items():
            setattr(self, name, value)


def new_id(prefix: str) -> str:
    """Random ids as OpenAI's look, so a restarted simulator never reissues one a gateway still remembers."""
    return prefix + secrets.token_hex(12)


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int
    expires_at: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": self.expires_at,
        }


Milestone = Callable[[float, Call], Awaitable[None]]


class Timeline:
    """A job's pending milestones in simulated time; equal times run in the order they were scheduled."""

    def __init__(self) -> None:
        self._pending: list[tuple[float, int, Milestone]] = []
        self._order = itertools.count()

    def at(self, when: float, milestone: Milestone) -> None:
        heapq.heappush(self._pending, (when, next(self._order), milestone))

    def clear(self) -> None:
        self._pending.clear()

    async def run_due(self, now: float, call: Call) -> None:
        # A milestone may schedule the next one; it runs in this same pass if that one is due too.
        while self._pending and self._pending[0][0] <= now:
            when, _, milestone = heapq.heappop(self._pending)
            await milestone(when, call)


@dataclass(kw_only=True, eq=False)
class Job:
    id: str
    created_at: int
    # The durations in force when the job was created: a later POST /_sim/jobs does not reshape running jobs.
    settings: JobSettings
    timeline: Timeline = field(default_factory=Timeline)


J = TypeVar("J", bound=Job)


@dataclass
class Store:
    settings: JobSettings = field(default_factory=JobSettings)
    files: dict[str, StoredFile] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    # Fine-tuned models produced here: served by chat (which serves any model) and listed by /v1/models.
    models: list[str] = field(default_factory=list)
    # Milestones await handlers; the lock keeps two requests from running the same milestone twice.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def add_file(self, data: bytes, filename: str, purpose: str, created_at: int) -> StoredFile:
        stored = StoredFile(new_id("file-"), filename, purpose, data, created_at)
        self.files[stored.id] = stored
        return stored

    def of_kind(self, kind: type[J]) -> list[J]:
        return [job for job in self.jobs.values() if isinstance(job, kind)]

    def find(self, kind: type[J], job_id: str) -> J | None:
        job = self.jobs.get(job_id)
        return job if isinstance(job, kind) else None


def store_of(request: Request) -> Store:
    state = request.app.state
    if not hasattr(state, "openai_jobs"):
        state.openai_jobs = Store()
    store: Store = state.openai_jobs
    return store


async def settle(call: Call) -> Store:
    """Run every job's due milestones, so what the caller reads reflects the current simulated time."""
    store = store_of(call.request)
    now = call.controls.clock.now()
    async with store.lock:
        for job in list(store.jobs.values()):
            await job.timeline.run_due(now, call)
    return store


async def job_models(call: Call) -> list[str]:
    """Fine-tuned models that this server's jobs have produced so far."""
    return list((await settle(call)).models)


def not_found(kind: str, object_id: str, param: str = "id") -> Response:
    return error(404, f"No {kind} found with id '{object_id}'.", param=param)


def conflict(kind: str, status: str) -> Response:
    return error(409, f"Cannot cancel a {kind} with status '{status}'.")


def page(call: Call, rows: Sequence[dict[str, Any]], limit: tuple[int, int]) -> Response:
    """One page of `rows` (objects as rendered, already in list order) after the ``after`` cursor, as OpenAI's
    cursor lists are; `limit` is (default, maximum)."""
    query = call.request.query_params
    size = _limit(query.get("limit"), *limit)
    start = 0
    if after := query.get("after"):
        position = next((index for index, row in enumerate(rows) if row["id"] == after), None)
        if position is None:
            raise InvalidRequest(f"'after' names no object in this list: {after!r}")
        start = position + 1
    data = list(rows[start : start + size])
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    has_more = start + size < len(rows)
    return JSONResponse({"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": has_more})


def _limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise InvalidRequest(f"'limit' must be an integer between 1 and {maximum}")
    return int(raw)


def jsonl(data: bytes) -> Iterator[tuple[int, object]]:
    """(line number from 1, parsed value or the `BAD_LINE` marker) for each non-blank line of a JSONL file."""
    text = data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError:
            yield number, BAD_LINE


BAD_LINE = object()


def jsonl_bytes(lines: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)


def metadata_of(body: dict[str, Any]) -> dict[str, str] | None:
    """OpenAI's metadata: up to 16 string values under keys of up to 64 characters."""
    metadata = body.get("metadata")
    if metadata is None:
        return None
    valid = isinstance(metadata, dict) and len(metadata) <= 16
    if not valid or not all(isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in metadata.items()):
        raise InvalidRequest("'metadata' must be an object of up to 16 string values (keys ≤64, values ≤512 chars)")
    return dict(metadata)


async def _settings(request: Request) -> Response:
    settings = store_of(request).settings
    if request.method == "POST":
        try:
            changes = json.loads(await request.body() or b"{}")
            if not isinstance(changes, dict):
                raise InvalidRequest("send a JSON object of settings")
            settings.update(changes)
        except ValueError as problem:  # bad JSON, or InvalidRequest
            return error(400, str(problem))
    return JSONResponse(dataclasses.asdict(settings))


def control_routes() -> list[BaseRoute]:
    """The job-timing control; like ``/_sim/stats`` it bypasses auth, latency and failures."""
    return [Route("/_sim/jobs", _settings, methods=["GET", "POST"])]
