"""Calling a provider's job API: one JSON request through Portico's upstream client, and its errors sorted into the
two a driver may raise (`ProviderRefused`, `ProviderUnavailable`).

Throttling and server errors are transient (the next poll retries); any other refusal is final. Errors Portico
raises itself on the way out (an invalid region, a Vertex key without credentials) are final too: they will not
fix themselves by waiting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from batch.native.base import ProviderRefused, ProviderUnavailable
from portico.errors import PorticoError, UpstreamError
from providers.adapters.base import open_answer

if TYPE_CHECKING:
    from gateway.targets import ResolvedTarget
    from portico.context import Services

Json = dict[str, Any]
TIMEOUT_SECONDS = 60.0
# Statuses worth another try later: timeouts, throttling, and (checked separately) every 5xx.
TRANSIENT_STATUSES = frozenset({408, 425, 429})


@contextmanager
def provider_errors(action: str) -> Iterator[None]:
    """Sort what a provider call raises: `action` says what was being done, for the batch's error message."""
    try:
        yield
    except UpstreamError as error:
        if error.status in TRANSIENT_STATUSES or error.status >= 500:
            raise ProviderUnavailable(f"{action}: {error.message}") from error
        raise ProviderRefused(f"{action}: {error.message}") from error
    except PorticoError as error:
        raise ProviderRefused(f"{action}: {error.message}") from error


async def call_json(
    services: Services,
    target: ResolvedTarget,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    json: Json | None = None,
    data: Any = None,
) -> Json:
    """One call whose 2xx answer is a JSON object (a non-2xx one raises `UpstreamError`, for `provider_errors`)."""
    answer = await open_answer(
        services.upstream, target, method, url, headers=headers, json=json, data=data, timeout_s=TIMEOUT_SECONDS
    )
    return await answer.json()
