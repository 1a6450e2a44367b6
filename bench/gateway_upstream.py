"""The upstream of bench/gateway.py: the fixed chat request and answers (~1 KB each) and nginx serving them.

One port answers POST /v1/chat/completions; the bearer key picks the variant: `sk-bench-fast` at once,
`sk-bench-slow` after 50 ms (nginx's echo module, or a tiny aiohttp server behind nginx when that module does not
load), `sk-bench-stream` an SSE stream.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.gateway_processes import child, pinned, wait_for_http
from tests.support.object_stores import LOOPBACK, free_port

ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")

MODES = ("fast", "slow", "stream")
UPSTREAM_KEYS = {mode: f"sk-bench-{mode}" for mode in MODES}
SLOW_SECONDS = 0.05


# --- the fixed request and answers (~1 KB each) ---------------------------------------------------------------

WORDS = ["the", "order", "arrived", "late", "and", "the", "box", "was", "damaged", "so", "please"]
WORDS += ["refund", "my", "card", "or", "send", "a", "replacement", "soon"]


def _text(length: int) -> str:
    """Plain words up to `length` characters: no quote, backslash or dollar, so it is safe inside nginx strings."""
    words, size, index = [], 0, 0
    while size < length:
        word = WORDS[index % len(WORDS)]
        words.append(word)
        size += len(word) + 1
        index += 1
    return " ".join(words)[:length]


def request_body(mode: str) -> bytes:
    body = {
        "model": f"bench-{mode}",
        "messages": [
            {"role": "system", "content": "You are a support assistant. " + _text(250)},
            {"role": "user", "content": _text(560)},
        ],
        "max_tokens": 256,
        "temperature": 0.2,
        "stream": mode == "stream",
    }
    return json.dumps(body, separators=(",", ":")).encode()


def completion_body() -> str:
    answer = {
        "id": "chatcmpl-bench0000000000000000000001",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": _text(700), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 231, "completion_tokens": 158, "total_tokens": 389},
        "system_fingerprint": "fp_bench",
    }
    return json.dumps(answer, separators=(",", ":"))


def stream_body() -> str:
    """An SSE answer: a role chunk, four content chunks, a finish chunk and [DONE] (~1.5 KB)."""
    head = {"id": "chatcmpl-bench-stream", "object": "chat.completion.chunk", "created": 1767225600}
    head["model"] = "gpt-4o-mini-2024-07-18"
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": _text(40) + " "} for _ in range(4)]
    events = []
    for delta in deltas:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        events.append({**head, "choices": [choice]})
    events.append({**head, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]})
    lines = [f"data: {json.dumps(event, separators=(',', ':'))}\n\n" for event in events]
    return "".join(lines) + "data: [DONE]\n\n"


# --- the upstream: nginx --------------------------------------------------------------------------------------


def echo_module_loads(work: Path) -> bool:
    """Whether this nginx can load the echo module (`nginx -t` on a one-line config that loads it)."""
    if not ECHO_MODULE.exists():
        return False
    probe = work / "probe.conf"
    probe.write_text(
        f"load_module {ECHO_MODULE};\npid {work}/probe.pid;\nerror_log {work}/probe.log;\nevents {{}}\n"
        "http { server { listen 127.0.0.1:1; location / { echo_sleep 0.01; echo ok; } } }\n"
    )
    result = subprocess.run(["nginx", "-t", "-p", str(work), "-c", str(probe)], capture_output=True, check=False)
    return result.returncode == 0


def nginx_config(work: Path, port: int, *, echo: bool, slow_port: int | None, slow_seconds: float) -> str:
    slow = (
        f"echo_sleep {slow_seconds}; echo -n '{completion_body()}';"
        if echo
        else "proxy_pass http://slow_upstream; proxy_http_version 1.1; proxy_set_header Connection '';"
    )
    slow_upstream = f"upstream slow_upstream {{ server 127.0.0.1:{slow_port}; keepalive 128; }}" if slow_port else ""
    temp = "\n".join(
        f"  {kind}_temp_path {work}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return textwrap.dedent(f"""\
        {f"load_module {ECHO_MODULE};" if echo else ""}
        worker_processes 1;
        pid {work}/nginx.pid;
        error_log {work}/nginx-error.log warn;
        events {{ worker_connections 4096; }}
        http {{
          access_log off;
        {temp}
          keepalive_requests 10000000;
          keepalive_timeout 300s;
          client_body_buffer_size 64k;
          map $http_authorization $bench_mode {{
            default fast;
            "Bearer {UPSTREAM_KEYS["slow"]}" slow;
            "Bearer {UPSTREAM_KEYS["stream"]}" stream;
          }}
          {slow_upstream}
          server {{
            listen 127.0.0.1:{port} backlog=4096;
            location = / {{ return 204; }}
            location = /v1/chat/completions {{ rewrite ^ /_bench_$bench_mode last; }}
            location = /_bench_fast {{ internal; default_type application/json; return 200 '{completion_body()}'; }}
            location = /_bench_slow {{ internal; default_type application/json; {slow} }}
            location = /_bench_stream {{ internal; default_type text/event-stream; return 200 '{stream_body()}'; }}
          }}
        }}
        """)


SLOW_SERVER = """
import asyncio, sys
from aiohttp import web
BODY = open(sys.argv[2], "rb").read()
async def answer(request):
    await request.read()
    await asyncio.sleep(float(sys.argv[3]))
    return web.Response(body=BODY, content_type="application/json")
app = web.Application()
app.router.add_post("/_bench_slow", answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


@contextlib.contextmanager
def upstream(work: Path, cpu: int | None, slow_seconds: float = SLOW_SECONDS) -> Iterator[tuple[str, str, list[int]]]:
    """nginx on a free loopback port; yields (base URL ending in /v1, how the slow answer is made, its pids)."""
    stack = contextlib.ExitStack()
    with stack:
        echo = echo_module_loads(work)
        slow_port = None
        how = "nginx echo_sleep"
        pids = []
        if not echo:
            slow_port = free_port()
            body = work / "completion.json"
            body.write_text(completion_body())
            command = [sys.executable, "-c", SLOW_SERVER, str(slow_port), str(body), str(slow_seconds)]
            slow = stack.enter_context(child("slow-upstream", pinned(command, cpu), work))
            wait_for_http(slow, f"http://{LOOPBACK}:{slow_port}/", 30)
            pids.append(slow.pid)
            how = "aiohttp behind nginx (the echo module did not load)"
        port = free_port()
        conf = work / "nginx.conf"
        conf.write_text(nginx_config(work, port, echo=echo, slow_port=slow_port, slow_seconds=slow_seconds))
        command = ["nginx", "-p", str(work), "-c", str(conf), "-e", str(work / "nginx-error.log"), "-g", "daemon off;"]
        nginx = stack.enter_context(child("nginx", pinned(command, cpu), work))
        wait_for_http(nginx, f"http://{LOOPBACK}:{port}/", 15)
        pids.append(nginx.pid)
        yield f"http://{LOOPBACK}:{port}/v1", how, pids


def nginx_version() -> str:
    result = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
    return result.stderr.strip().rpartition("/")[2]
