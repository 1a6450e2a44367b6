"""`headers_of` (portico/request_headers.py) answers as Starlette's `request.headers.get` does, from one dict."""

from __future__ import annotations

from starlette.requests import Request

from portico.request_headers import headers_of


def test_the_dict_agrees_with_starlette_and_is_built_once() -> None:
    raw = [(b"x-portkey-virtual-key", b"vk-one"), (b"x-dup", b"first"), (b"x-dup", b"second"), (b"host", b"a:1")]
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": raw})
    headers = headers_of(request)
    for name in ("x-portkey-virtual-key", "x-dup", "host", "absent"):
        assert headers.get(name) == request.headers.get(name)
    assert headers["x-dup"] == "first"
    assert headers_of(request) is headers
