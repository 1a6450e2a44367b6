"""The knobs every simulator has: latency, error injection, request counters, a clock tests can speed up.

Per-request headers let a test steer one call without reconfiguring the server:

- ``x-sim-latency-ms: N``: answer after N ms instead of the configured latency;
- ``x-sim-fail: STATUS``: answer with that error status (and Retry-After on 429/503);
- ``x-sim-fail-times: N`` with ``x-sim-key: K``: the first N requests carrying key K fail (with ``x-sim-fail``'s
  status if given, else the configured one), later ones succeed: a retry or fallback sees exactly N failures;
- ``x-sim-request-id: ID``: counted under ``by_request_id`` in ``GET /_sim/stats``; so is
  ``x-client-request-id`` (OpenAI's client request id, which Portico sends for every managed batch line), which is
  how tests count re-sent lines.

Random failures (``fail_rate``) draw from an RNG seeded with ``seed``, so a run is reproducible request by request.

``POST /_sim/fail-after {"route": R, "status": S, "times": N}`` makes the next N requests to route R (the names
``_sim/stats`` counts them under, e.g. ``batches.create``) do their work and then answer status S anyway: the answer
to a create that did create is lost, which is what a caller's idempotency has to survive.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# Statuses whose responses carry Retry-After: the ones a client is expected to retry after waiting.
RETRY_AFTER_STATUSES = frozenset({429, 503})


class Clock:
    """Simulated time that advances `speed` times as fast as real time, for job APIs that progress over hours."""

    def __init__(self, speed: float = 1.0, *, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self._speed = speed
        self._anchor_real = time.monotonic()
        self._anchor_sim = time.time() if start is None else start

    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        # Re-anchor so simulated time never jumps when the speed changes.
        self._anchor_sim, self._anchor_real = self.now(), time.monotonic()
        self._speed = speed

    def now(self) -> float:
        """Simulated seconds since the epoch."""
        return self._anchor_sim + (time.monotonic() - self._anchor_real) * self._speed

    async def sleep(self, simulated_seconds: float) -> None:
        await asyncio.sleep(max(simulated_seconds, 0.0) / self._speed)


@dataclass(frozen=True)
class Failure:
    """An injected error: the vendor module renders it in its own error shape, with these headers."""

    status: int
    retry_after: float

    def headers(self) -> dict[str, str]:
        if self.status not in RETRY_AFTER_STATUSES:
            return {}
        # Retry-After is whole seconds; retry-after-ms (read by the openai SDK) keeps the precision.
        return {"retry-after": str(math.ceil(self.retry_after)), "retry-after-ms": str(round(self.retry_after * 1000))}

    @property
    def message(self) -> str:
        return f"Simulated failure (status {self.status}) injected by the Portico simulator"


@dataclass
class Stats:
    total: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    by_request_id: Counter[str] = field(default_factory=Counter)
    injected_failures: int = 0
    failures_by_status: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_route": dict(self.by_route),
            "by_model": dict(self.by_model),
            "by_request_id": dict(self.by_request_id),
            "injected_failures": self.injected_failures,
            "failures_by_status": dict(self.failures_by_status),
        }


@dataclass
class SimulatorControls:
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    fail_status: int = 429
    retry_after: float = 1.0
    seed: int = 0
    clock_speed: float = 1.0
    stats: Stats = field(default_factory=Stats, init=False)
    clock: Clock = field(init=False)
    _rng: random.Random = field(init=False, repr=False)
    _seen_by_key: Counter[str] = field(default_factory=Counter, init=False, repr=False)
    # route -> (requests left to answer with an error after serving them, that error's status)
    _fail_after: dict[str, tuple[int, int]] = field(default_factory=dict, init=False, repr=False)
    _sequence: Iterator[int] = field(default_factory=lambda: itertools.count(1), init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail_rate must be between 0 and 1, got {self.fail_rate}")
        if not 400 <= self.fail_status <= 599:
            raise ValueError(f"fail_status must be an HTTP error status, got {self.fail_status}")
        if self.latency_ms < 0 or self.retry_after < 0:
            raise ValueError("latency_ms and retry_after cannot be negative")
        self.clock = Clock(self.clock_speed)
        self._rng = random.Random(self.seed)

    def next_sequence(self) -> int:
        return next(self._sequence)

    def reset(self) -> None:
        """Forget counters and fail-times keys and reseed the RNG: the server behaves as if just started."""
        self.stats = Stats()
        self._seen_by_key.clear()
        self._fail_after.clear()
        self._rng = random.Random(self.seed)

    async def admit(self, request: Request, route: str, model: str, request_id: str | None = None) -> Failure | None:
        """Count the request, wait out its latency, and say whether it should fail instead of being served."""
        stats = self.stats
        stats.total += 1
        stats.by_route[route] += 1
        if model:
            stats.by_model[model] += 1
        for caller_id in _caller_ids(request, request_id):
            stats.by_request_id[caller_id] += 1
        latency = _number_header(request, "x-sim-latency-ms")
        delay_ms = self.latency_ms if latency is None else latency
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        failure = self._failure_for(request)
        if failure is not None:
            stats.injected_failures += 1
            stats.failures_by_status[str(failure.status)] += 1
        return failure

    def fail_after_serving(self, route: str, status: int, times: int) -> None:
        if not 400 <= status <= 599 or times < 0:
            raise ValueError("status must be an HTTP error status and times a non-negative count")
        self._fail_after[route] = (times, status)

    def failure_after_serving(self, route: str) -> Failure | None:
        """The error to answer instead of a response already made for `route`, if one is still owed."""
        left, status = self._fail_after.get(route, (0, 0))
        if left <= 0:
            return None
        self._fail_after[route] = (left - 1, status)
        self.stats.injected_failures += 1
        self.stats.failures_by_status[str(status)] += 1
        return Failure(status, self.retry_after)

    def _failure_for(self, request: Request) -> Failure | None:
        forced = _status_header(request, "x-sim-fail")
        status = forced or self.fail_status
        times = _number_header(request, "x-sim-fail-times")
        if times is not None:
            key = request.headers.get("x-sim-key", "")
            self._seen_by_key[key] += 1
            return Failure(status, self.retry_after) if self._seen_by_key[key] <= times else None
        if forced is not None:
            return Failure(forced, self.retry_after)
        # Draw on every request, so the failure pattern depends only on the seed and the request order.
        if self._rng.random() < self.fail_rate:
            return Failure(self.fail_status, self.retry_after)
        return None


# Headers whose value names the request for `by_request_id`.
CALLER_ID_HEADERS = ("x-sim-request-id", "x-client-request-id")


def _caller_ids(request: Request, request_id: str | None) -> set[str]:
    """The ids a request is counted under: the handler's own, else its id headers (each distinct value once)."""
    if request_id:
        return {request_id}
    return {value for header in CALLER_ID_HEADERS if (value := request.headers.get(header))}


def _number_header(request: Request, name: str) -> float | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _status_header(request: Request, name: str) -> int | None:
    value = _number_header(request, name)
    return int(value) if value is not None and 400 <= value <= 599 else None


def controls_of(request: Request) -> SimulatorControls:
    return cast(SimulatorControls, request.app.state.controls)


async def _stats(request: Request) -> JSONResponse:
    return JSONResponse(controls_of(request).stats.as_json())


async def _fail_after(request: Request) -> JSONResponse:
    body = await request.json()
    try:
        route, status, times = str(body["route"]), int(body.get("status", 500)), int(body.get("times", 1))
        controls_of(request).fail_after_serving(route, status, times)
    except (KeyError, TypeError, ValueError) as error:
        return JSONResponse({"error": f"expected {{route, status, times}}: {error}"}, status_code=400)
    return JSONResponse({"route": route, "status": status, "times": times})


async def _reset(request: Request) -> JSONResponse:
    controls_of(request).reset()
    return JSONResponse({"reset": True})


def control_routes() -> list[Route]:
    """Endpoints every simulator serves beside its vendor API (they bypass auth, latency and failures)."""
    endpoints: list[tuple[str, str, Callable[[Request], Any]]] = [
        ("/_sim/stats", "GET", _stats),
        ("/_sim/reset", "POST", _reset),
        ("/_sim/fail-after", "POST", _fail_after),
    ]
    return [Route(path, endpoint, methods=[method]) for path, method, endpoint in endpoints]
