"""A REST request's headers as a plain dict, built once per request.

Starlette's `request.headers` finds a header by scanning every raw header and decoding as it goes; a chat request
looks up about fifteen (auth, workspace, idempotency, route, trace, cache), which bench/gateway.py's profile put at
~5% of the gateway's CPU. ASGI gives names lower-cased; where a name repeats, the first value wins, as with
`request.headers.get`.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

_SCOPE_KEY = "portico.headers"


def headers_of(request: HTTPConnection) -> dict[str, str]:
    found: dict[str, str] | None = request.scope.get(_SCOPE_KEY)
    if found is None:
        pairs = reversed(request.scope["headers"])
        found = request.scope[_SCOPE_KEY] = {name.decode("latin-1"): value.decode("latin-1") for name, value in pairs}
    return found
