"""What Vertex's two job APIs share: job states, the job record and its terminal guard, the per-server job store,
and the REST surface (create, get, list with page tokens, ``:cancel``) built from a `JobApi` per collection.

Jobs advance lazily: each read first moves the job along its schedule on the simulated clock, running whatever
work (reading inputs, writing outputs) the elapsed time covers. Every timestamp the job reports is the scheduled
one (or the moment a cancel or expiry was asked for), never the time of the read that noticed it, so a job's
history does not depend on how often it is polled.
A control route, ``POST /_sim/vertex/{collection}/{id}:expire``, expires a job that has not finished (the state
Vertex gives a job left queued too long); like ``/_sim/stats`` it bypasses auth and failure injection.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any, Generic, TypeVar, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from providers.simulators.behaviour import InvalidRequest
from providers.simulators.controls import SimulatorControls, controls_of
from providers.simulators.edge import Call, endpoint
from providers.simulators.vertex import DIALECT, error

# Simulated seconds a cancelled job spends in JOB_STATE_CANCELLING before it is JOB_STATE_CANCELLED.
CANCELLING_FOR = 10.0
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Vertex job ids are 19-digit decimal numbers; the simulator counts up from here.
FIRST_ID = 1_000_000_000_000_000_001
# Project ids, project numbers and region names: anything else in the path is refused, as Vertex refuses it.
PATH_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class JobState(StrEnum):
    QUEUED = "JOB_STATE_QUEUED"
    PENDING = "JOB_STATE_PENDING"
    RUNNING = "JOB_STATE_RUNNING"
    SUCCEEDED = "JOB_STATE_SUCCEEDED"
    PARTIALLY_SUCCEEDED = "JOB_STATE_PARTIALLY_SUCCEEDED"
    FAILED = "JOB_STATE_FAILED"
    CANCELLING = "JOB_STATE_CANCELLING"
    CANCELLED = "JOB_STATE_CANCELLED"
    EXPIRED = "JOB_STATE_EXPIRED"


TERMINAL = frozenset(
    {JobState.SUCCEEDED, JobState.PARTIALLY_SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED}
)


class Code(IntEnum):
    """google.rpc.Code values, as a job's ``error.code`` carries them."""

    CANCELLED = 1
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    FAILED_PRECONDITION = 9


def timestamp(seconds: float) -> str:
    """RFC 3339 in UTC with microseconds, as Vertex writes createTime and friends."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(kw_only=True)
class Job:
    id: str
    parent: str  # projects/{project}/locations/{location}
    created: float  # simulated seconds since the epoch, like every time below
    state: JobState
    updated: float = 0.0
    started: float | None = None
    ended: float | None = None
    error: dict[str, Any] | None = None
    cancelling_until: float | None = None
    # One reader at a time moves a job along, so its work (reading inputs, writing outputs) runs exactly once.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def move(self, state: JobState, at: float, error: tuple[Code, str] | None = None) -> None:
        if self.state in TERMINAL:
            raise RuntimeError(f"job {self.id} is {self.state} and cannot become {state}")
        self.state, self.updated = state, at
        if state is JobState.RUNNING:
            self.started = at
        if state in TERMINAL:
            self.ended = at
        if error is not None:
            self.error = {"code": int(error[0]), "message": error[1]}

    def times(self) -> dict[str, str]:
        stamps: dict[str, float | None] = {"createTime": self.created, "updateTime": self.updated or self.created}
        stamps |= {"startTime": self.started, "endTime": self.ended}
        return {key: timestamp(value) for key, value in stamps.items() if value is not None}


@dataclass
class TunedModel:
    base_model: str
    endpoint_id: str


@dataclass
class JobStore:
    """Every job a simulator serves, and the models its tuning jobs produced (batch jobs may name them)."""

    jobs: dict[str, Job] = field(default_factory=dict)
    tuned_models: dict[str, TunedModel] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(FIRST_ID))

    def new_id(self) -> str:
        return str(next(self._ids))


def store_of(request: Request) -> JobStore:
    state = request.app.state
    store = getattr(state, "vertex_jobs", None)
    if store is None:
        store = state.vertex_jobs = JobStore()
    return cast(JobStore, store)


def at_path(body: dict[str, Any], path: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    """The field at a dotted path, of the given JSON type, or a 400 naming the path."""
    value: Any = body
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):  # JSON true is no number
        raise InvalidRequest(f"'{path}' is required and must be {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", list: "an array", dict: "an object", int: "an integer", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in (kind if isinstance(kind, tuple) else (kind,)))


J = TypeVar("J", bound=Job)


@dataclass(frozen=True)
class JobApi(Generic[J]):
    """One job collection: how to create, advance and render its jobs. The REST routes come from here."""

    collection: str  # the URL segment and the list response's key: batchPredictionJobs, tuningJobs
    job_type: type[J]
    # Builds a job from a validated create body (raises InvalidRequest otherwise); id and parent are given.
    create: Callable[[Call, str, str], J]
    # Moves a job along its schedule up to `now` (simulated); called with the job's lock held.
    advance: Callable[[J, float, SimulatorControls, JobStore], Awaitable[None]]
    render: Callable[[J], dict[str, Any]]
    model_field: str  # the create body's model field, counted in stats

    def routes(self) -> list[BaseRoute]:
        base = "/v1/projects/{project}/locations/{location}/" + self.collection
        route = f"{self.collection}.{{}}"

        def model_of(_: Request, body: dict[str, Any]) -> str:
            return str(body.get(self.model_field) or "")

        collection = {
            "POST": endpoint(DIALECT, route.format("create"), self._create, model_of),
            "GET": endpoint(DIALECT, route.format("list"), self._list),
        }
        item = {
            "GET": endpoint(DIALECT, route.format("get"), self._get),
            "POST": endpoint(DIALECT, route.format("cancel"), self._cancel),
        }
        return [
            Route(base, _by_method(collection), methods=list(collection)),
            Route(base + "/{job}", _by_method(item), methods=list(item)),
            Route(f"/_sim/vertex/{self.collection}/{{job}}", self._expire, methods=["POST"]),
        ]

    async def _create(self, call: Call) -> Response:
        store = store_of(call.request)
        job = self.create(call, store.new_id(), parent_of(call.request))
        store.jobs[job.id] = job
        return JSONResponse(self.render(job))

    async def _list(self, call: Call) -> Response:
        parent, store, query = parent_of(call.request), store_of(call.request), call.request.query_params
        mine = [job for job in store.jobs.values() if isinstance(job, self.job_type) and job.parent == parent]
        mine.sort(key=lambda job: int(job.id), reverse=True)  # newest first, as Vertex lists
        size = _page_size(query.get("pageSize"))
        token = query.get("pageToken") or ""
        if token and not token.isdigit():
            raise InvalidRequest(f"Invalid pageToken {token!r}")
        page = [job for job in mine if not token or int(job.id) <= int(token)][: size + 1]
        for job in page[:size]:
            await self._advance(job, call.controls, store)
        body: dict[str, Any] = {}
        if page:  # proto JSON leaves out empty repeated fields
            body[self.collection] = [self.render(job) for job in page[:size]]
        if len(page) > size:
            body["nextPageToken"] = page[size].id
        return JSONResponse(body)

    async def _get(self, call: Call) -> Response:
        job_id, action = _job_and_action(call.request)
        job = self._find(call.request, job_id)
        if job is None or action:
            return _not_found(self.collection, job_id, action)
        await self._advance(job, call.controls, store_of(call.request))
        return JSONResponse(self.render(job))

    async def _cancel(self, call: Call) -> Response:
        job_id, action = _job_and_action(call.request)
        job = self._find(call.request, job_id)
        if job is None or action != "cancel":
            return _not_found(self.collection, job_id, action)
        async with job.lock:
            now = call.controls.clock.now()
            await self.advance(job, now, call.controls, store_of(call.request))
            if job.state in TERMINAL or job.state is JobState.CANCELLING:
                return _failed_precondition(f"Cannot cancel {self.collection} {job.id} in state {job.state}.")
            job.move(JobState.CANCELLING, now)
            job.cancelling_until = now + CANCELLING_FOR
        return JSONResponse({})  # google.protobuf.Empty

    async def _expire(self, request: Request) -> Response:
        job_id, action = str(request.path_params["job"]).partition(":")[::2]
        job = self._find(request, job_id, any_parent=True)
        if job is None or action != "expire":
            return _not_found(self.collection, job_id, action)
        controls = controls_of(request)
        async with job.lock:
            now = controls.clock.now()
            await self.advance(job, now, controls, store_of(request))
            if job.state in TERMINAL:
                return _failed_precondition(f"{self.collection} {job.id} already ended in state {job.state}.")
            job.move(JobState.EXPIRED, now, (Code.DEADLINE_EXCEEDED, "The job expired before it could finish."))
        return JSONResponse(self.render(job))

    async def _advance(self, job: J, controls: SimulatorControls, store: JobStore) -> None:
        async with job.lock:
            await self.advance(job, controls.clock.now(), controls, store)

    def _find(self, request: Request, job_id: str, *, any_parent: bool = False) -> J | None:
        job = store_of(request).jobs.get(job_id)
        if not isinstance(job, self.job_type) or not (any_parent or job.parent == parent_of(request)):
            return None  # another project's or location's job is as unknown as a missing one
        return job


def finish_cancel(job: Job, now: float) -> bool:
    """Complete a requested cancel once its time has come; True if the job is cancelling (so must not advance)."""
    if job.state is not JobState.CANCELLING or job.cancelling_until is None:
        return False
    if now >= job.cancelling_until:
        job.move(JobState.CANCELLED, job.cancelling_until, (Code.CANCELLED, "CANCELED"))
    return True


def _by_method(handlers: dict[str, Callable[[Request], Awaitable[Response]]]) -> Callable[..., Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return await handlers[request.method](request)

    return serve


def parent_of(request: Request) -> str:
    project, location = request.path_params["project"], request.path_params["location"]
    for label, value in (("project", project), ("location", location)):
        if not PATH_NAME.fullmatch(value):
            raise InvalidRequest(f"Invalid {label} {value!r} in the resource name")
    return f"projects/{project}/locations/{location}"


def _job_and_action(request: Request) -> tuple[str, str]:
    job_id, _, action = str(request.path_params["job"]).partition(":")
    return job_id, action


def _page_size(raw: str | None) -> int:
    if raw is None or raw == "0":
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit():
        raise InvalidRequest(f"pageSize must be a non-negative integer, got {raw!r}")
    return min(int(raw), MAX_PAGE_SIZE)


def _not_found(collection: str, job_id: str, action: str) -> Response:
    if action:
        return error(404, f"Unknown method '{action}' on {collection}; the simulator serves :cancel.")
    return error(404, f"The {collection} resource {job_id!r} was not found.")


def _failed_precondition(message: str) -> Response:
    # Google sends FAILED_PRECONDITION with HTTP 400, which the status table would call INVALID_ARGUMENT.
    return JSONResponse({"error": {"code": 400, "message": message, "status": "FAILED_PRECONDITION"}}, status_code=400)
