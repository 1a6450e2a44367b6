"""Running one request through a routing tree: strategies at the nodes, retries and timeouts at the leaves.

- single: the first target.
- fallback: targets in order; an upstream error moves on (only for `on_status_codes` when given), and so does a
  target whose provider lacks the capability (Bedrock asked for images). Errors of the request itself (an unknown
  virtual key, a malformed body) are not retried elsewhere: they would fail anywhere.
- loadbalance: one target drawn by weight.
- retry: up to `attempts` more tries on the listed statuses, waiting for the provider's Retry-After when it sends
  one, otherwise an exponential backoff with jitter.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.config_model import Retry, Target
from gateway.targets import ResolvedTarget, resolve
from portico.context import CallContext
from portico.errors import UpstreamError
from providers.adapters.base import UnsupportedCapability

log = logging.getLogger(__name__)

T = TypeVar("T")
# One attempt at one resolved target, with a timeout in seconds (None: the client's default).
Attempt = Callable[[ResolvedTarget, float | None], Awaitable[T]]

# The retry policy of a route that names none (read only: one instance rather than a pydantic model per request).
NO_RETRY = Retry()
BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 60.0


@dataclass(frozen=True)
class Inherited:
    """Settings flowing down the tree; a nearer node's value wins."""

    retry: Retry | None = None
    timeout_ms: int | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def below(self, node: Target) -> Inherited:
        return Inherited(
            retry=node.retry or self.retry,
            timeout_ms=node.request_timeout or self.timeout_ms,
            overrides={**self.overrides, **node.override_params},
        )


async def execute(ctx: CallContext, plan: Target, attempt: Attempt[T]) -> T:
    return await _run(ctx, plan, Inherited(), attempt)


async def _run(ctx: CallContext, node: Target, inherited: Inherited, attempt: Attempt[T]) -> T:
    settings = inherited.below(node)
    if node.is_leaf:
        return await _with_retries(ctx, node, settings, attempt)
    assert node.strategy is not None and node.targets
    return await STRATEGIES[node.strategy.mode](ctx, node, settings, attempt)


async def _single(ctx: CallContext, node: Target, settings: Inherited, attempt: Attempt[T]) -> T:
    assert node.targets
    return await _run(ctx, node.targets[0], settings, attempt)


async def _fallback(ctx: CallContext, node: Target, settings: Inherited, attempt: Attempt[T]) -> T:
    assert node.targets and node.strategy
    codes = node.strategy.on_status_codes
    last: UpstreamError | UnsupportedCapability | None = None
    for index, target in enumerate(node.targets):
        try:
            return await _run(ctx, target, settings, attempt)
        except UnsupportedCapability as error:
            # A target that cannot serve this kind of request at all is skipped, whatever the status list says.
            log.info("fallback: target %d cannot serve it (%s), trying the next", index, error.message)
            last = error
        except UpstreamError as error:
            if codes is not None and error.status not in codes:
                raise
            log.info("fallback: target %d answered %d (%s), trying the next", index, error.status, error.provider)
            last = error
    assert last is not None
    raise last


async def _loadbalance(ctx: CallContext, node: Target, settings: Inherited, attempt: Attempt[T]) -> T:
    assert node.targets
    weighted = [t for t in node.targets if t.weight > 0] or node.targets
    chosen = random.choices(weighted, weights=[t.weight or 1.0 for t in weighted])[0]
    return await _run(ctx, chosen, settings, attempt)


STRATEGIES = {"single": _single, "fallback": _fallback, "loadbalance": _loadbalance}


def _delay(retry: Retry, error: UpstreamError, attempt_number: int) -> float:
    if retry.use_retry_after_header and error.retry_after is not None:
        return min(max(error.retry_after, 0.0), RETRY_AFTER_CAP)
    backoff = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt_number)
    return backoff * (0.5 + random.random() / 2)


async def _with_retries(ctx: CallContext, leaf: Target, settings: Inherited, attempt: Attempt[T]) -> T:
    target = await resolve(ctx, leaf, settings.overrides)
    retry = settings.retry or NO_RETRY
    timeout = settings.timeout_ms / 1000 if settings.timeout_ms else None
    for number in range(retry.attempts + 1):
        try:
            return await _timed(attempt, target, timeout)
        except UpstreamError as error:
            if number == retry.attempts or error.status not in retry.on_status_codes:
                raise
            wait = _delay(retry, error, number)
            log.info(
                "retry %d/%d after %.2fs: %s answered %d",
                number + 1,
                retry.attempts,
                wait,
                error.provider,
                error.status,
            )
            await asyncio.sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


async def _timed(attempt: Attempt[T], target: ResolvedTarget, seconds: float | None) -> T:
    if seconds is None:
        return await attempt(target, None)
    try:
        async with asyncio.timeout(seconds):
            return await attempt(target, seconds)
    except TimeoutError:
        raise UpstreamError(
            f"{target.provider} did not answer within {seconds * 1000:.0f} ms (request_timeout).",
            status=408,
            provider=target.provider,
            code="request_timeout",
        ) from None
