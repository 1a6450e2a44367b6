"""Relaying the OpenAI endpoints an OpenAI-compatible upstream serves as is (`ProviderAdapter.forward`), routed
exactly like chat: the plan from `plan_for`, fallback and retries from `execute`, each attempt's provider checked
with `require`, every call in the request log.

A JSON answer is read whole inside the attempt, so a body that breaks off can still fall back, and comes back as a
dict. Any other answer (speech audio, a text transcript, server-sent events) streams back as it arrives, with the
upstream's content type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Self, TypeVar

from pydantic import BaseModel, PrivateAttr, ValidationError
from starlette.requests import Request

from gateway.cache import CacheHeaders
from gateway.executor import Attempt, execute
from gateway.forms import FormBody
from gateway.inference import InferenceCall, cached_execute, with_overrides
from gateway.observe import Observation, Trace, observed
from gateway.route import Route, plan_for
from gateway.targets import ResolvedTarget
from portico.context import CallContext
from portico.dispatch import invalid_arguments
from portico.errors import PorticoError, UpstreamError
from portico.json_body import json_object
from portico.streaming import StreamedContent
from providers.adapters.base import Forward, Forwarded, Json, require
from providers.adapters.registry import adapter_for

DATA_SCOPE = "completions.write"
Build = Callable[[ResolvedTarget], Forward]
Relayed = Json | StreamedContent
M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", bound="RoutedInput")


def opening(
    ctx: CallContext, observation: Observation, capability: str, build: Build, form: FormBody | None = None
) -> Attempt[Forwarded]:
    """One attempt: check the target's provider offers `capability`, then open the upstream's answer."""

    async def attempt(target: ResolvedTarget, timeout_s: float | None) -> Forwarded:
        observation.served_by(target)
        adapter = adapter_for(target.spec)
        require(adapter, capability, target.provider)
        try:
            return await adapter.forward(ctx.services.upstream, target, build(target), timeout_s)
        except UpstreamError:
            # The caller's form went over the cap or broke off while it streamed upstream: that, not the upstream's
            # view of a cut connection, is the answer (and it is not worth retrying anywhere).
            if form is not None and form.failure is not None:
                raise form.failure from None
            raise
        finally:
            if form is not None and form.model:
                observation.model = form.model

    return attempt


def posting(path: str, call: InferenceCall) -> Build:
    return lambda target: Forward("POST", path, json=with_overrides(call.body, target))


async def relay(
    ctx: CallContext, route: Route, observation: Observation, capability: str, build: Build, form: FormBody | None
) -> Relayed:
    open_answer = opening(ctx, observation, capability, build, form)

    async def attempt(target: ResolvedTarget, timeout_s: float | None) -> Relayed:
        answer = await open_answer(target, timeout_s)
        # A streamed answer is recorded when it ends, not when it starts (`observed` leaves it alone).
        observation.stream = not answer.is_json
        if answer.is_json:
            return await answer.json()
        chunks = observed_bytes(ctx, observation, answer.iter_chunks())
        return StreamedContent(chunks, media_type=answer.content_type, length=answer.content_length)

    async def run() -> Relayed:
        return await execute(ctx, await plan_for(ctx, route), attempt)

    return await observed(ctx, observation, run)


async def forward_json(
    ctx: CallContext,
    call: InferenceCall,
    observation: Observation,
    capability: str,
    build: Build,
    *,
    cached: bool = False,
) -> Json:
    """Send `build`'s request along the call's route and read the JSON answer; with `cached`, a config's simple
    cache answers repeats of the same body."""
    open_answer = opening(ctx, observation, capability, build)

    async def attempt(target: ResolvedTarget, timeout_s: float | None) -> Json:
        return await (await open_answer(target, timeout_s)).json()

    async def run() -> Json:
        if cached:
            return await cached_execute(ctx, call, observation, observation.operation, attempt)
        return await execute(ctx, await plan_for(ctx, call.route), attempt)

    return await observed(ctx, observation, run)


async def observed_bytes(
    ctx: CallContext, observation: Observation, chunks: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    except PorticoError as error:
        observation.record(ctx, error.status, error)
        raise
    observation.record(ctx, 200)


def shaped(model: type[M], answer: Json, provider: str | None) -> M:
    """An upstream answer as an output model; one that does not fit is the upstream's fault (502), not ours."""
    try:
        return model.model_validate(answer)
    except ValidationError as error:
        raise UpstreamError(
            f"{provider or 'The upstream'} answered in an unexpected shape: {invalid_arguments(error).message}",
            status=502,
            provider=provider or "upstream",
            code="upstream_bad_response",
        ) from None


class RoutedInput(Route):
    """Arguments that carry their route: MCP passes it as arguments, and over REST `routed_reader` takes it from
    Portkey's headers. One declaration then serves both projections."""

    _trace: Trace = PrivateAttr(default_factory=Trace)
    _cache: CacheHeaders = PrivateAttr(default_factory=CacheHeaders)

    @property
    def route(self) -> Route:
        return Route(**{name: getattr(self, name) for name in Route.model_fields})

    def traced(self, headers: Mapping[str, str]) -> Self:
        self._trace = Trace.from_headers(headers)
        self._cache = CacheHeaders.from_headers(headers)
        return self

    def inference_call(self, *, exclude: frozenset[str] = frozenset()) -> InferenceCall:
        """The OpenAI body (every field but the route's and `exclude`), with the route and the trace."""
        body = self.model_dump(exclude_none=True, exclude=set(Route.model_fields) | exclude)
        return InferenceCall(body=body, route=self.route, trace=self._trace, cache=self._cache)


def routed_reader(model: type[R]) -> Callable[[Request, CallContext], Awaitable[R]]:
    """Reads `model` from the query, the JSON body and the path, with the route from the headers (which win)."""

    async def read(request: Request, _: CallContext) -> R:
        arguments: dict[str, Any] = dict(request.query_params)
        if request.method in ("POST", "PUT", "PATCH"):
            arguments.update(await json_object(request))
        arguments.update(request.path_params)
        arguments.update(Route.from_headers(request.headers).model_dump(exclude_none=True))
        try:
            value = model.model_validate(arguments)
        except ValidationError as error:
            raise invalid_arguments(error) from None
        return value.traced(request.headers)

    return read
