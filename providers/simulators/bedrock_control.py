"""What the Bedrock control-plane simulators (boto3 client ``bedrock``, REST-JSON) share.

ARNs in the caller's region (read from the SigV4 credential scope), ISO-8601 timestamps, errors named the way
botocore reads them, per-server job books (lookup by ARN, id or name; ``clientRequestToken`` idempotency), list
filters and pagination, clock-driven waits for the jobs' background runs, the S3 stand-in, and the custom models
that completed customization jobs leave behind for the runtime routes.

Simulator-only endpoint (no auth, latency or failures, like ``/_sim/stats``):

- ``GET|POST /_sim/bedrock/s3`` with ``{"endpoint_url", "region", "access_key_id", "secret_access_key"}`` (all
  optional): the S3 endpoint job input is read from and output written to. Without one, boto3's own
  ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` are used; with neither, creating a job is refused rather than
  sent to real AWS.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar, cast

from starlette.datastructures import QueryParams, State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from providers.simulators.behaviour import InvalidRequest
from providers.simulators.controls import Clock
from providers.simulators.edge import Call, Handler
from providers.simulators.s3_access import S3Access, S3Settings

logger = logging.getLogger(__name__)

# The account in AWS's documentation examples; the region comes from each request's credential scope.
ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
# Real seconds a waiting job sleeps at most before re-reading the clock, so a speed change takes effect promptly.
WAIT_SLICE = 0.25
DEFAULT_PAGE = 100
ROLE_ARN = re.compile(r"arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+")
_CREDENTIAL_REGION = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")

T = TypeVar("T")


class ApiError(Exception):
    """A Bedrock error other than a plain ValidationException (those are `InvalidRequest`, answered by the edge)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def not_found(noun: str, identifier: str) -> ApiError:
    return ApiError(404, "ResourceNotFoundException", f"Could not find the {noun} {identifier!r}.")


def conflict(message: str) -> ApiError:
    # Bedrock's service model gives ConflictException HTTP 400, as ValidationException: only the name differs.
    return ApiError(400, "ConflictException", message)


def error_response(error: ApiError) -> Response:
    headers = {"x-amzn-ErrorType": error.kind}
    return JSONResponse({"message": str(error)}, status_code=error.status, headers=headers)


def guarded(handler: Handler) -> Handler:
    async def serve(call: Call) -> Response:
        try:
            return await handler(call)
        except ApiError as error:
            return error_response(error)

    return serve


def answer(call: Call, body: dict[str, Any], status: int = 200) -> JSONResponse:
    request_id = f"sim-{call.sequence:08d}-0000-0000-0000-000000000000"
    return JSONResponse(body, status_code=status, headers={"x-amzn-RequestId": request_id})


def region_of(request: Request) -> str:
    match = _CREDENTIAL_REGION.search(request.headers.get("authorization", ""))
    return match[1] if match else DEFAULT_REGION


def arn(region: str, resource: str) -> str:
    return f"arn:aws:bedrock:{region}:{ACCOUNT}:{resource}"


def new_job_id() -> str:
    # The service model's ARN patterns end in 12 lower-case alphanumerics.
    return uuid.uuid4().hex[:12]


def iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def compact(members: dict[str, Any]) -> dict[str, Any]:
    """Absent members left out, as Bedrock does (botocore would read a JSON null as absent anyway)."""
    return {name: value for name, value in members.items() if value is not None}


def matching(value: object, pattern: re.Pattern[str], field: str) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise InvalidRequest(f"{field} must be a string matching {pattern.pattern}, got {value!r}")
    return value


def optional(value: object, pattern: re.Pattern[str], field: str) -> str | None:
    return None if value is None else matching(value, pattern, field)


def nested(body: dict[str, Any], *path: str) -> object:
    """The member at `path`, or None when any step is missing or not an object."""
    value: object = body
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    return value


class BookedJob(Protocol):
    @property
    def job_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def arn(self) -> str: ...
    @property
    def token(self) -> str | None: ...
    @property
    def fingerprint(self) -> dict[str, Any]: ...
    @property
    def created(self) -> float: ...


J = TypeVar("J", bound=BookedJob)


class JobBook(Generic[J]):
    """One kind of job on one server."""

    def __init__(self, noun: str) -> None:
        self.noun = noun
        self._jobs: dict[str, J] = {}

    def __iter__(self) -> Iterator[J]:
        return iter(self._jobs.values())

    def find(self, identifier: str) -> J:
        """By ARN or id, as Bedrock accepts, or by name: Bedrock's customization APIs take names; for invocation
        jobs it is the simulator's convenience."""
        job = self._jobs.get(identifier.rsplit("/", 1)[-1])
        if job is not None and identifier in (job.job_id, job.arn):
            return job
        named = self.named(identifier)
        if named is None:
            raise not_found(self.noun, identifier)
        return named

    def named(self, name: str) -> J | None:
        return next((job for job in self._jobs.values() if job.name == name), None)

    def replay(self, token: str | None, fingerprint: dict[str, Any]) -> J | None:
        """The job an earlier create with this clientRequestToken made: the same request gets the same job."""
        job = next((job for job in self._jobs.values() if token is not None and job.token == token), None)
        if job is not None and job.fingerprint != fingerprint:
            raise conflict(f"clientRequestToken {token!r} was already used for a different request.")
        return job

    def add(self, job: J) -> None:
        # Names are unique per kind, which is what makes a lookup by name well defined.
        if self.named(job.name) is not None:
            raise conflict(f"A {self.noun} named {job.name!r} already exists.")
        self._jobs[job.job_id] = job


@dataclass(frozen=True)
class ListQuery:
    """The filters and page every List*Jobs operation takes, from its query string."""

    after: float | None
    before: float | None
    status: str | None
    name_contains: str | None
    max_results: int
    offset: int
    descending: bool

    @classmethod
    def parse(cls, query: QueryParams, time_member: str, statuses: Iterable[str]) -> ListQuery:
        status = query.get("statusEquals")
        if status is not None and status not in set(statuses):
            raise InvalidRequest(f"statusEquals must be one of {', '.join(statuses)}, got {status!r}")
        order = query.get("sortOrder", "Descending")
        if order not in ("Ascending", "Descending") or query.get("sortBy", "CreationTime") != "CreationTime":
            raise InvalidRequest("sortBy must be CreationTime and sortOrder Ascending or Descending")
        return cls(
            after=_query_time(query, time_member + "After"),
            before=_query_time(query, time_member + "Before"),
            status=status,
            name_contains=query.get("nameContains"),
            max_results=_query_int(query, "maxResults", DEFAULT_PAGE, 1, 1000),
            offset=_query_int(query, "nextToken", 0, 0, None),
            descending=order == "Descending",
        )

    def page(self, jobs: Iterable[J], status_of: Callable[[J], str]) -> tuple[list[J], str | None]:
        kept = [job for job in jobs if self._keeps(job, status_of(job))]
        kept.sort(key=lambda job: job.created, reverse=self.descending)
        end = self.offset + self.max_results
        return kept[self.offset : end], (str(end) if end < len(kept) else None)

    def _keeps(self, job: BookedJob, status: str) -> bool:
        return (
            (self.status is None or status == self.status)
            and (self.name_contains is None or self.name_contains in job.name)
            and (self.after is None or job.created > self.after)
            and (self.before is None or job.created < self.before)
        )


def _query_time(query: QueryParams, name: str) -> float | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO-8601 timestamp, got {raw!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _query_int(query: QueryParams, name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        raise InvalidRequest(f"{name} is not valid here: {raw!r}")
    return int(raw)


async def wait_until(clock: Clock, deadline: float, interrupted: asyncio.Event | None = None) -> bool:
    """Wait for the simulated moment `deadline`; True as soon as `interrupted` is set (at once if it already is)."""
    event = interrupted or asyncio.Event()
    while not event.is_set() and (remaining := deadline - clock.now()) > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), min(remaining / clock.speed, WAIT_SLICE))
    return event.is_set()


def app_state(state: State, key: str, factory: Callable[[], T]) -> T:
    """A per-server object kept on the app's state, made on first use (the simulator's whole memory)."""
    value = getattr(state, key, None)
    if value is None:
        value = factory()
        setattr(state, key, value)
    return cast(T, value)


def spawn(state: State, run: Coroutine[Any, Any, None], name: str) -> None:
    """Run a job in the background on the server's loop; it ends with the server."""
    tasks: set[asyncio.Task[None]] = app_state(state, "bedrock_job_tasks", set)
    task = asyncio.create_task(run, name=name)
    tasks.add(task)  # the loop itself keeps only a weak reference

    def finished(done: asyncio.Task[None]) -> None:
        tasks.discard(done)
        if not done.cancelled() and done.exception() is not None:
            logger.error("simulated job %s crashed", name, exc_info=done.exception())

    task.add_done_callback(finished)


def custom_models(state: State) -> dict[str, str]:
    """Custom model ARN -> the customization job that made it."""
    return app_state(state, "bedrock_custom_models", dict)


def servable(request: Request, model_id: str) -> bool:
    """Model ids are served as named, except a custom model, which exists once a customization job completed it."""
    return ":custom-model/" not in model_id or model_id in custom_models(request.app.state)


def s3_of(request: Request) -> S3Access:
    return app_state(request.app.state, "bedrock_s3", lambda: S3Access(S3Settings()))


def require_s3(request: Request) -> S3Access:
    s3 = s3_of(request)
    if not s3.settings.configured():
        raise InvalidRequest(
            "The Bedrock simulator has no S3 endpoint: POST /_sim/bedrock/s3 {'endpoint_url': ...} "
            "or set AWS_ENDPOINT_URL_S3."
        )
    return s3


async def _s3_settings(request: Request) -> Response:
    if request.method == "POST":
        names = {field.name for field in dataclasses.fields(S3Settings)}
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not all(k in names and isinstance(v, str | None) for k, v in body.items()):
            message = f"the body must be an object with string members among {', '.join(sorted(names))}"
            headers = {"x-amzn-ErrorType": "ValidationException"}
            return JSONResponse({"message": message}, status_code=400, headers=headers)
        request.app.state.bedrock_s3 = S3Access(S3Settings(**body))
    settings = s3_of(request).settings
    return JSONResponse({"endpoint_url": settings.endpoint_url, "region": settings.region})


def routes() -> list[BaseRoute]:
    return [Route("/_sim/bedrock/s3", _s3_settings, methods=["GET", "POST"])]
