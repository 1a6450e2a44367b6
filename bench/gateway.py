"""Gateway overhead, side by side in one run against one fast upstream: direct, Portico, LiteLLM's proxy, Portkey's.

Non-streaming chat completions (~1 KB request, ~1 KB response) go to the same upstream four ways:

- direct: the load generator talks to the upstream itself (the floor every gateway adds to);
- portico: `portico serve` (a subprocess, SQLite in a temp data dir, PORTICO_PROVIDER_ENDPOINTS naming the upstream,
  `--no-access-log`, PORTICO_LOG_LEVEL=WARNING), routed by openai virtual keys created through REST first;
- litellm: LiteLLM's proxy (`litellm[proxy]` 1.108.7 in its own venv under bench/.peers/), one model per upstream
  mode, a strong master key, no database, no callbacks, num_retries 0;
- portkey: Portkey's open-source gateway (npm `@portkey-ai/gateway`), forced onto 127.0.0.1 by a `node --require`
  preload (by itself it binds every interface), warmed up ~5 s before it is measured; `x-portkey-provider: openai`
  and `x-portkey-custom-host` name the upstream.

Optional: `portico-fast`, the same Portico with `--http httptools --loop uvloop` (needs `bench/peers.sh accel`,
which installs the two packages beside the project venv, never into it).

The upstream is Debian nginx, a non-daemon child with its config, pid file and error log in a temp dir. One port
answers POST /v1/chat/completions with a fixed chat.completion (`return 200`); the bearer key picks the variant
(`map $http_authorization`), so every gateway and the direct client reach the same server the same way:
`sk-bench-fast` answers at once, `sk-bench-slow` after 50 ms (`echo_sleep 0.05` from libnginx-mod-http-echo; if
that module does not load, nginx proxies those requests to a tiny aiohttp server that sleeps 50 ms instead), and
`sk-bench-stream` answers an SSE stream (`text/event-stream`, fixed body).

Load: wrk (Debian `wrk`, one thread, N connections = N requests in flight, a Lua script for the POST body and
headers; latencies are wrk's, in microseconds). Placement: every gateway process is pinned to one core, wrk and
nginx to the other (`taskset`), so a gateway's requests/s at high concurrency is its capacity per core. The gateway
CPU time per request (user + system of its whole process tree, from /proc) is printed too: it is the per-core
figure least disturbed by other load on a shared machine.

Measured: concurrency 1, 16, 64 with the 0 ms upstream and 64 with the 50 ms upstream, each after a warm-up at the
same concurrency; at concurrency 1 each gateway's added latency over direct (p50, p99). Streaming: time to the
first SSE event at concurrency 1 (an aiohttp client on the load core), Portico against direct. It prints one table
and the goal checks; it asserts nothing.

    bench/peers.sh                      # once: nginx, echo module, wrk, LiteLLM, Portkey (idempotent)
    python bench/gateway.py             # everything, ~4-5 minutes
    python bench/gateway.py --targets direct,portico --duration 5

Every process it starts is stopped on exit, on error and on Ctrl-C (each runs in its own session and is stopped by
its process group id).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if not __package__:  # run as `python bench/gateway.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.upload import ADMIN_KEY, clean_environment, portico_executable
from tests.support.object_stores import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / ".peers"
LITELLM_BIN = PEERS / "litellm-venv" / "bin" / "litellm"
PORTKEY_SERVER = PEERS / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
ACCEL_DIR = PEERS / "portico-accel"
PY_SPY = PEERS / "tools" / "bin" / "py-spy"
ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")

GATEWAYS = ("portico", "litellm", "portkey", "portico-fast")
TARGETS = ("direct", *GATEWAYS)
DEFAULT_TARGETS = "direct,portico,litellm,portkey"
MODES = ("fast", "slow", "stream")
UPSTREAM_KEYS = {mode: f"sk-bench-{mode}" for mode in MODES}
SLOW_SECONDS = 0.05
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
USABLE_CPUS = sorted(os.sched_getaffinity(0))

GOAL_ADDED_P50_MS = 1.0
GOAL_ADDED_P99_MS = 5.0
GOAL_SLOW_RATIO = 0.95


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


# --- processes ------------------------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, limit: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


def pinned(command: list[str], cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if cpu is not None else command


def stop_group(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM to the child's own process group (it leads one: start_new_session), SIGKILL after `grace`."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def child(
    name: str, command: list[str], logs: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[Child]:
    """Run `command` in its own session with output to `logs/<name>.log`; stop its process group on exit."""
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield Child(name, process, log_path)
    finally:
        stop_group(process)


def wait_for_http(proc: Child, url: str, timeout: float, *, headers: dict[str, str] | None = None) -> None:
    """Until any HTTP answer comes from `url` (an error status counts: the server is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.process.returncode}:\n{proc.tail()}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout:.0f} s:\n{proc.tail()}")


def process_tree_cpu_seconds(root: int) -> float:
    """utime + stime of `root` and every descendant (all threads), from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack.extend(p for p, parent in parents.items() if parent == pid)
    return total


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on `port`, from /proc/net/tcp and tcp6 (hex, as the kernel writes)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1


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


def nginx_config(work: Path, port: int, *, echo: bool, slow_port: int | None) -> str:
    slow = (
        f"echo_sleep {SLOW_SECONDS}; echo -n '{completion_body()}';"
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
def upstream(work: Path, cpu: int | None) -> Iterator[tuple[str, str]]:
    """nginx on a free loopback port; yields (base URL ending in /v1, how the 50 ms answer is made)."""
    stack = contextlib.ExitStack()
    with stack:
        echo = echo_module_loads(work)
        slow_port = None
        how = "nginx echo_sleep"
        if not echo:
            slow_port = free_port()
            body = work / "completion.json"
            body.write_text(completion_body())
            command = [sys.executable, "-c", SLOW_SERVER, str(slow_port), str(body), str(SLOW_SECONDS)]
            slow = stack.enter_context(child("slow-upstream", pinned(command, cpu), work))
            wait_for_http(slow, f"http://{LOOPBACK}:{slow_port}/", 30)
            how = "aiohttp behind nginx (the echo module did not load)"
        port = free_port()
        conf = work / "nginx.conf"
        conf.write_text(nginx_config(work, port, echo=echo, slow_port=slow_port))
        command = ["nginx", "-p", str(work), "-c", str(conf), "-e", str(work / "nginx-error.log"), "-g", "daemon off;"]
        nginx = stack.enter_context(child("nginx", pinned(command, cpu), work))
        wait_for_http(nginx, f"http://{LOOPBACK}:{port}/", 15)
        yield f"http://{LOOPBACK}:{port}/v1", how


# --- the targets ----------------------------------------------------------------------------------------------


@dataclass
class Target:
    """How to send a chat completion to one target, per upstream mode; `pid` is the gateway's (None: direct)."""

    name: str
    url: str
    headers: dict[str, dict[str, str]]
    pid: int | None = None
    version: str = ""


def direct_target(base: str) -> Target:
    headers = {mode: {"Authorization": f"Bearer {UPSTREAM_KEYS[mode]}"} for mode in MODES}
    return Target("direct", f"{base}/chat/completions", headers, version="nginx " + nginx_version())


def nginx_version() -> str:
    result = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
    return result.stderr.strip().rpartition("/")[2]


def create_virtual_key(url: str, mode: str) -> str:
    body = {"name": f"bench {mode}", "provider": "openai", "key": UPSTREAM_KEYS[mode]}
    request = urllib.request.Request(
        f"{url}/v1/virtual-keys",
        data=json.dumps(body).encode(),
        headers={"x-portkey-api-key": ADMIN_KEY, "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["data"]["slug"])


@contextlib.contextmanager
def portico_target(name: str, base: str, work: Path, logs: Path, cpu: int | None) -> Iterator[Target]:
    data_dir = work / f"data-{name}"
    data_dir.mkdir()
    port = free_port()
    command = [str(portico_executable()), "serve", "--host", LOOPBACK, "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--no-access-log"]
    settings = {
        "PORTICO_ADMIN_API_KEY": ADMIN_KEY,
        "PORTICO_PROVIDER_ENDPOINTS": json.dumps({"openai": base}),
        "PORTICO_LOG_LEVEL": "WARNING",
    }
    env = clean_environment(settings)
    version = "uvicorn h11, asyncio"
    if name == "portico-fast":
        command += ["--http", "httptools", "--loop", "uvloop"]
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(ACCEL_DIR)])
        version = "uvicorn httptools, uvloop"
    # cwd is the data directory, so a developer's `.env` in the repository is not read.
    with child(name, pinned(command, cpu), logs, env=env, cwd=data_dir) as proc:
        url = f"http://{LOOPBACK}:{port}"
        wait_for_http(proc, f"{url}/health", 60)
        slugs = {mode: create_virtual_key(url, mode) for mode in MODES}
        headers = {
            mode: {"x-portkey-api-key": ADMIN_KEY, "x-portkey-virtual-key": slugs[mode]} for mode in MODES
        }  # fmt: skip
        yield Target(name, f"{url}/v1/chat/completions", headers, proc.pid, version)


def litellm_version() -> str:
    python = LITELLM_BIN.parent / "python"
    script = "import importlib.metadata as m; print(m.version('litellm'))"
    return subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True).stdout.strip()


@contextlib.contextmanager
def litellm_target(base: str, work: Path, logs: Path, cpu: int | None) -> Iterator[Target]:
    version = litellm_version()
    if version == "1.107.0":  # known-compromised release: never run it
        raise RuntimeError("bench/.peers/litellm-venv holds litellm 1.107.0, a compromised release: remove it")
    master_key = "sk-" + secrets.token_hex(24)
    models = [
        {
            "model_name": f"bench-{mode}",
            "litellm_params": {
                "model": f"openai/bench-{mode}",
                "api_base": base,
                "api_key": UPSTREAM_KEYS[mode],
                "num_retries": 0,
            },
        }
        for mode in MODES
    ]
    config = {
        "model_list": models,
        "litellm_settings": {
            "num_retries": 0,
            "request_timeout": 30,
            "telemetry": False,
            "callbacks": [],
            "success_callback": [],
            "failure_callback": [],
        },
        "router_settings": {"num_retries": 0},
        "general_settings": {"master_key": master_key},
    }
    config_path = work / "litellm.yaml"  # JSON is YAML
    config_path.write_text(json.dumps(config, indent=2))
    port = free_port()
    command = [str(LITELLM_BIN), "--config", str(config_path), "--host", LOOPBACK, "--port", str(port)]
    command += ["--num_workers", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM", "DATABASE_URL", "OPENAI", "PORTICO"))}
    env |= {
        "LITELLM_LOG": "ERROR",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "NO_DOCS": "True",
        "DISABLE_ADMIN_UI": "True",
    }
    with child("litellm", pinned(command, cpu), logs, env=env, cwd=work) as proc:
        url = f"http://{LOOPBACK}:{port}"
        wait_for_http(proc, f"{url}/health/liveliness", 180)
        headers = {mode: {"Authorization": f"Bearer {master_key}"} for mode in MODES}
        yield Target("litellm", f"{url}/v1/chat/completions", headers, proc.pid, f"litellm {version}")


PORTKEY_PRELOAD = """\
// Preloaded with `node --require`: every listen() on a port binds 127.0.0.1, whatever host the caller gave.
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (first !== null && typeof first === "object") {
    args[0] = { ...first, host: "127.0.0.1" };
  } else if (typeof first === "number" || (typeof first === "string" && /^[0-9]+$/.test(first))) {
    if (args.length === 1 || typeof args[1] === "function" || typeof args[1] === "number") {
      args.splice(1, 0, "127.0.0.1");
    } else {
      args[1] = "127.0.0.1";
    }
  }
  return listen.apply(this, args);
};
"""


def portkey_version() -> str:
    package = PORTKEY_SERVER.parent.parent / "package.json"
    return str(json.loads(package.read_text())["version"])


@contextlib.contextmanager
def portkey_target(base: str, work: Path, logs: Path, cpu: int | None) -> Iterator[Target]:
    preload = work / "listen-loopback.cjs"
    preload.write_text(PORTKEY_PRELOAD)
    port = free_port()
    command = ["node", "--require", str(preload), str(PORTKEY_SERVER), f"--port={port}", "--headless"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTICO", "OPENAI"))}
    env["NODE_ENV"] = "production"
    with child("portkey", pinned(command, cpu), logs, env=env, cwd=work) as proc:
        url = f"http://{LOOPBACK}:{port}"
        wait_for_http(proc, f"{url}/", 60)
        exposed = listening_addresses(port) - LOOPBACK_HEX
        if exposed:
            raise RuntimeError(f"Portkey's gateway listens beyond loopback on port {port}: {sorted(exposed)}")
        headers = {
            mode: {
                "x-portkey-provider": "openai",
                "x-portkey-custom-host": base,
                "Authorization": f"Bearer {UPSTREAM_KEYS[mode]}",
            }
            for mode in MODES
        }
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
        yield Target("portkey", f"{url}/v1/chat/completions", headers, proc.pid, f"{portkey_version()}, node {node}")


# --- checking a target answers right --------------------------------------------------------------------------


def check_target(target: Target) -> None:
    """One request per mode: 200, the upstream's answer (so the request reached the right variant), the delay."""
    expected = json.loads(completion_body())["choices"][0]["message"]["content"]
    for mode in MODES:
        headers = {"content-type": "application/json", **target.headers[mode]}
        request = urllib.request.Request(target.url, data=request_body(mode), headers=headers, method="POST")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{target.name} {mode}: HTTP {error.code}: {error.read()[:500]!r}") from None
        elapsed = time.perf_counter() - started
        if mode == "stream":
            ok = b"data: [DONE]" in raw and b"chat.completion.chunk" in raw
        else:
            ok = json.loads(raw)["choices"][0]["message"]["content"] == expected
        if not ok:
            raise RuntimeError(f"{target.name} {mode}: unexpected answer {raw[:300]!r}")
        if mode == "slow" and elapsed < SLOW_SECONDS * 0.8:  # nginx timers may fire a millisecond early
            raise RuntimeError(f"{target.name} slow: answered in {elapsed * 1000:.1f} ms, under the upstream delay")


# --- load: wrk --------------------------------------------------------------------------------------------------

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_RESULT %d %d %d %d %d %d %d %d %d %.1f %d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass
class Load:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    cpu_ms_per_request: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def wrk_script(work: Path, target: Target, mode: str) -> Path:
    headers = {"Content-Type": "application/json", **target.headers[mode]}
    lines = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
    path = work / f"wrk-{target.name}-{mode}.lua"
    path.write_text(WRK_SCRIPT.format(body=request_body(mode).decode(), headers=lines))
    return path


def run_wrk(script: Path, url: str, concurrency: int, seconds: float, cpu: int | None) -> Load:
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script)]
    process = subprocess.Popen(
        pinned([*command, url], cpu), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=seconds + 30)
    finally:
        stop_group(process, grace=2)
    text = output.decode(errors="replace")
    line = next((line for line in text.splitlines() if line.startswith("WRK_RESULT")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{text[-2000:]}")
    values = line.split()[1:]
    requests, duration_us = int(values[0]), int(values[1])
    errors = sum(int(v) for v in values[2:7])
    p50, p99, mean = int(values[7]) / 1000, int(values[8]) / 1000, float(values[9]) / 1000
    return Load(requests, duration_us / 1e6, errors, p50, p99, mean)


def measure_load(
    target: Target, mode: str, concurrency: int, args: argparse.Namespace, work: Path, warmup: float | None = None
) -> Load:
    script = wrk_script(work, target, mode)
    warm = args.warmup if warmup is None else warmup
    if warm > 0:
        run_wrk(script, target.url, concurrency, warm, args.load_cpu)
    cpu_before = process_tree_cpu_seconds(target.pid) if target.pid else 0.0
    load = run_wrk(script, target.url, concurrency, args.duration, args.load_cpu)
    if target.pid and load.requests:
        load.cpu_ms_per_request = (process_tree_cpu_seconds(target.pid) - cpu_before) / load.requests * 1000
    return load


# --- streaming: time to the first SSE event -------------------------------------------------------------------


@dataclass
class Ttfb:
    first_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    errors: int = 0

    def pct(self, values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


async def _ttfb(target: Target, seconds: float, warmup: float) -> Ttfb:
    result = Ttfb()
    headers = {"content-type": "application/json", **target.headers["stream"]}
    body = request_body("stream")
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        for phase, length in (("warm-up", warmup), ("measure", seconds)):
            deadline = time.perf_counter() + length
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.post(target.url, data=body, headers=headers) as response:
                    first = await response.content.readuntil(b"\n\n")
                    first_at = time.perf_counter()
                    rest = await response.read()
                ended = time.perf_counter()
                good = response.status == 200 and first.startswith(b"data: {") and b"[DONE]" in first + rest
                if phase == "measure":
                    result.errors += not good
                    result.first_ms.append((first_at - started) * 1000)
                    result.total_ms.append((ended - started) * 1000)
    return result


def measure_ttfb(target: Target, args: argparse.Namespace) -> Ttfb:
    return asyncio.run(_ttfb(target, args.ttfb_seconds, min(args.warmup, 2.0)))


# --- output -----------------------------------------------------------------------------------------------------


def scenarios(args: argparse.Namespace) -> list[tuple[str, int]]:
    return [("fast", c) for c in args.concurrency] + [("slow", c) for c in args.slow_concurrency]


def print_table(targets: list[Target], loads: dict[tuple[str, str, int], Load], ttfb: dict[str, Ttfb]) -> None:
    header = ("target", "upstream", "conc", "req/s", "p50 ms", "p99 ms", "mean ms", "gw CPU ms/req", "errors")
    rows = []
    for (name, mode, concurrency), load in loads.items():
        cpu = f"{load.cpu_ms_per_request:.3f}" if load.cpu_ms_per_request is not None else "-"
        upstream_label = "0 ms" if mode == "fast" else f"{SLOW_SECONDS * 1000:.0f} ms"
        rows.append(
            (
                name,
                upstream_label,
                str(concurrency),
                f"{load.rps:,.0f}",
                f"{load.p50_ms:.3f}",
                f"{load.p99_ms:.3f}",
                f"{load.mean_ms:.3f}",
                cpu,
                str(load.errors),
            )
        )
    for name, result in ttfb.items():
        rows.append(
            (
                name,
                "SSE",
                "1",
                f"{len(result.first_ms) / max(1e-9, sum(result.total_ms) / 1000):,.0f}",
                f"{result.pct(result.first_ms, 0.5):.3f}",
                f"{result.pct(result.first_ms, 0.99):.3f}",
                f"{statistics.fmean(result.first_ms):.3f}" if result.first_ms else "nan",
                "-",
                str(result.errors),
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for index, row in enumerate([header, *rows]):
        print(
            "  ".join(
                cell.rjust(width) if i else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print("(SSE rows: time to the first SSE event, ms; req/s there is sequential, one stream at a time)")


def best_capacity(loads: dict[tuple[str, str, int], Load], name: str) -> float | None:
    """A gateway's requests/s per core: its best with the 0 ms upstream at concurrency > 1 (it is pinned to one)."""
    figures = [load.rps for (n, mode, c), load in loads.items() if n == name and mode == "fast" and c > 1]
    return max(figures) if figures else None


def cpu_capacity(loads: dict[tuple[str, str, int], Load], name: str) -> float | None:
    """Requests/s one core could serve from the gateway's CPU time per request (best over the 0 ms runs)."""
    figures = [
        1000 / load.cpu_ms_per_request
        for (n, mode, c), load in loads.items()
        if n == name and mode == "fast" and c > 1 and load.cpu_ms_per_request
    ]
    return max(figures) if figures else None


def print_added_latency(targets: list[Target], loads: dict[tuple[str, str, int], Load]) -> None:
    direct = loads.get(("direct", "fast", 1))
    if direct is None:
        return
    print("\nAdded latency over direct at concurrency 1 (0 ms upstream):")
    for target in targets:
        load = loads.get((target.name, "fast", 1))
        if target.name == "direct" or load is None:
            continue
        print(
            f"  {target.name:13} p50 +{load.p50_ms - direct.p50_ms:.3f} ms   p99 +{load.p99_ms - direct.p99_ms:.3f} ms"
            f"   (gateway CPU {load.cpu_ms_per_request or 0:.3f} ms/request)"
        )


def print_ttfb_overhead(ttfb: dict[str, Ttfb]) -> None:
    direct = ttfb.get("direct")
    if direct is None or not direct.first_ms:
        return
    print("\nStreaming: time to the first SSE event at concurrency 1, over direct:")
    for name, result in ttfb.items():
        if name == "direct" or not result.first_ms:
            continue
        p50 = result.pct(result.first_ms, 0.5) - direct.pct(direct.first_ms, 0.5)
        p99 = result.pct(result.first_ms, 0.99) - direct.pct(direct.first_ms, 0.99)
        print(f"  {name:13} p50 +{p50:.3f} ms   p99 +{p99:.3f} ms   ({len(result.first_ms)} streams)")


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("MET " if ok else "MISSED")


def print_goals(loads: dict[tuple[str, str, int], Load], slow_concurrency: list[int]) -> None:
    print("\nGoals (Portico):")
    direct, portico = loads.get(("direct", "fast", 1)), loads.get(("portico", "fast", 1))
    if direct and portico:
        p50, p99 = portico.p50_ms - direct.p50_ms, portico.p99_ms - direct.p99_ms
        print(
            f"  [{verdict(p50 <= GOAL_ADDED_P50_MS)}] added latency at c=1, p50 {p50:.3f} ms <= {GOAL_ADDED_P50_MS} ms"
        )
        print(
            f"  [{verdict(p99 <= GOAL_ADDED_P99_MS)}] added latency at c=1, p99 {p99:.3f} ms <= {GOAL_ADDED_P99_MS} ms"
        )
    else:
        print("  [n/a ] added latency: needs direct and portico at concurrency 1")
    ours = best_capacity(loads, "portico")
    for peer in ("litellm", "portkey"):
        theirs = best_capacity(loads, peer)
        ok = None if ours is None or theirs is None else ours > theirs
        figures = f"{ours or 0:,.0f} vs {theirs or 0:,.0f} req/s" if ok is not None else "not measured"
        by_cpu = cpu_capacity(loads, "portico"), cpu_capacity(loads, peer)
        cpu_note = f"; by CPU time {by_cpu[0]:,.0f} vs {by_cpu[1]:,.0f}" if all(by_cpu) else ""
        print(f"  [{verdict(ok)}] more requests/s per core than {peer}: {figures}{cpu_note}")
    for concurrency in slow_concurrency:
        direct_slow, portico_slow = (
            loads.get(("direct", "slow", concurrency)),
            loads.get(("portico", "slow", concurrency)),
        )
        if direct_slow and portico_slow:
            ratio = portico_slow.rps / direct_slow.rps
            print(
                f"  [{verdict(ratio >= GOAL_SLOW_RATIO)}] 50 ms upstream at c={concurrency}: {ratio:.1%} of direct "
                f"({portico_slow.rps:,.0f} vs {direct_slow.rps:,.0f} req/s) >= {GOAL_SLOW_RATIO:.0%}"
            )


def machine_notes(args: argparse.Namespace) -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    placement = f"gateways on CPU {args.gateway_cpu}, wrk + nginx on CPU {args.load_cpu}" if args.pin else "unpinned"
    git = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
    )
    return (
        f"machine: {model}, {os.cpu_count()} CPUs ({len(USABLE_CPUS)} usable), load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; {placement}; Python {platform.python_version()}; "
        f"portico {git.stdout.strip() or '?'}"
    )


# --- the run ----------------------------------------------------------------------------------------------------


def start_targets(
    names: list[str], base: str, work: Path, stack: contextlib.ExitStack, cpu: int | None
) -> list[Target]:
    logs = work
    targets = []
    for name in names:
        print(f"starting {name} ...", flush=True)
        if name == "direct":
            targets.append(direct_target(base))
        elif name in ("portico", "portico-fast"):
            targets.append(stack.enter_context(portico_target(name, base, work, logs, cpu)))
        elif name == "litellm":
            targets.append(stack.enter_context(litellm_target(base, work, logs, cpu)))
        elif name == "portkey":
            targets.append(stack.enter_context(portkey_target(base, work, logs, cpu)))
    for target in targets:
        check_target(target)
    return targets


def run(args: argparse.Namespace, work: Path) -> None:
    print(machine_notes(args), flush=True)
    loads: dict[tuple[str, str, int], Load] = {}
    ttfb: dict[str, Ttfb] = {}
    with contextlib.ExitStack() as stack:
        base, slow_how = stack.enter_context(upstream(work, args.load_cpu))
        print(f"upstream: nginx at {base} (50 ms answers: {slow_how})", flush=True)
        targets = start_targets(args.targets, base, work, stack, args.gateway_cpu)
        for target in targets:
            print(f"  {target.name}: {target.version or 'ready'}", flush=True)
        portkey = next((t for t in targets if t.name == "portkey"), None)
        if portkey is not None and args.portkey_warmup > 0:
            print(f"warming Portkey's gateway up for {args.portkey_warmup:.0f} s ...", flush=True)
            run_wrk(wrk_script(work, portkey, "fast"), portkey.url, 16, args.portkey_warmup, args.load_cpu)
        for index, (mode, concurrency) in enumerate(scenarios(args)):
            order = targets[index % len(targets) :] + targets[: index % len(targets)]  # rotate: drift hits all alike
            for target in order:
                print(f"measuring {target.name:12} {mode} upstream, concurrency {concurrency} ...", flush=True)
                loads[(target.name, mode, concurrency)] = measure_load(target, mode, concurrency, args, work)
        for target in targets:
            if target.name in args.ttfb_targets:
                print(f"measuring {target.name:12} streaming time to first event ...", flush=True)
                ttfb[target.name] = measure_ttfb(target, args)
        if args.profile:
            profile_portico(targets, args, work)
        # Sort the rows for the table: by scenario, then target, in the order given.
        position = {t.name: i for i, t in enumerate(targets)}
        keyed = sorted(loads.items(), key=lambda item: (item[0][1] != "fast", item[0][2], position[item[0][0]]))
        loads = dict(keyed)
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print_table(targets, loads, {name: ttfb[name] for name in sorted(ttfb, key=lambda n: n != "direct")})
    print_added_latency(targets, loads)
    print_ttfb_overhead(ttfb)
    print_goals(loads, args.slow_concurrency)


def profile_portico(targets: list[Target], args: argparse.Namespace, work: Path) -> None:
    """After the measured runs: py-spy records each Portico under concurrency-64 load (0 ms upstream)."""
    for target in targets:
        if not target.name.startswith("portico") or target.pid is None:
            continue
        out = Path(args.profile) / f"{target.name}.svg"
        raw = Path(args.profile) / f"{target.name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        print(f"profiling {target.name} (py-spy, {args.duration:.0f} s at concurrency 64) ...", flush=True)
        seconds = str(max(1, round(args.duration)))
        spy = [str(PY_SPY), "record", "--pid", str(target.pid), "--duration", seconds, "--rate", "250"]
        with contextlib.ExitStack() as stack:
            flame = stack.enter_context(child(f"py-spy-{target.name}", [*spy, "-o", str(out)], work))
            collapsed = stack.enter_context(
                child(f"py-spy-raw-{target.name}", [*spy, "--format", "raw", "-o", str(raw)], work)
            )
            time.sleep(1)
            run_wrk(wrk_script(work, target, "fast"), target.url, 64, args.duration, args.load_cpu)
            for spy_process in (flame, collapsed):
                spy_process.process.wait(timeout=args.duration + 30)
        print(f"  flame graph {out}, collapsed stacks {raw}")


def parse_list(value: str, parser: argparse.ArgumentParser, what: str) -> list[int]:
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        parser.error(f"{what} takes comma-separated integers")
    if any(n < 1 for n in numbers):
        parser.error(f"{what} must be positive")
    return numbers


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Measure non-streaming chat completions (~1 KB each way) through Portico, LiteLLM's proxy and Portkey's "
            "gateway against direct, side by side in one run against the same nginx upstream, with wrk as the load. "
            "Each gateway is pinned to one core, wrk and nginx to the other. Prints req/s, p50/p99 latency, gateway "
            "CPU per request, the added latency at concurrency 1, streaming time to first event, and the goals. "
            "Install the peers first: bench/peers.sh"
        ),
        epilog="Example: python bench/gateway.py --targets direct,portico,portkey --duration 5",
    )
    parser.add_argument(
        "--targets",
        default=DEFAULT_TARGETS,
        help=f"comma-separated, of: {', '.join(TARGETS)} (default {DEFAULT_TARGETS}; portico-fast = httptools+uvloop)",
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each measurement (default 2)")
    parser.add_argument("--concurrency", default="1,16,64", help="concurrencies with the 0 ms upstream (1,16,64)")
    parser.add_argument("--slow-concurrency", default="64", help="concurrencies with the 50 ms upstream (64)")
    parser.add_argument("--ttfb-seconds", type=float, default=5.0, help="seconds of streaming per target (default 5)")
    parser.add_argument(
        "--ttfb-targets", default="direct,portico,portico-fast", help="targets whose streaming TTFB is measured"
    )
    parser.add_argument("--portkey-warmup", type=float, default=5.0, help="Portkey's extra warm-up seconds (5)")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=len(USABLE_CPUS) >= 2,
        help="gateways on one CPU, wrk and nginx on another (default: on with 2+ usable CPUs)",
    )
    parser.add_argument("--profile", metavar="DIR", help="afterwards, py-spy each Portico at c=64 into DIR (svg + raw)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs) and print its path")
    args = parser.parse_args()
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown or not args.targets:
        parser.error(f"unknown targets {unknown}; choose from {', '.join(TARGETS)}")
    args.ttfb_targets = {t.strip() for t in args.ttfb_targets.split(",") if t.strip()}
    args.concurrency = parse_list(args.concurrency, parser, "--concurrency")
    args.slow_concurrency = parse_list(args.slow_concurrency, parser, "--slow-concurrency")
    if args.duration < 1 or args.warmup < 0 or args.ttfb_seconds <= 0:
        parser.error("--duration must be >= 1 s, --warmup >= 0, --ttfb-seconds > 0")
    if args.pin and len(USABLE_CPUS) < 2:
        parser.error("--pin needs two usable CPUs (use --no-pin)")
    args.gateway_cpu, args.load_cpu = (USABLE_CPUS[0], USABLE_CPUS[1]) if args.pin else (None, None)
    check_prerequisites(parser, args)
    return args


def check_prerequisites(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    needs = {
        "nginx": lambda: subprocess.run(["which", "nginx"], capture_output=True, check=False).returncode == 0,
        "wrk": lambda: subprocess.run(["which", "wrk"], capture_output=True, check=False).returncode == 0,
    }
    missing = [name for name, present in needs.items() if not present()]
    if "litellm" in args.targets and not LITELLM_BIN.exists():
        missing.append("litellm (bench/.peers/litellm-venv)")
    if "portkey" in args.targets and not PORTKEY_SERVER.exists():
        missing.append("@portkey-ai/gateway (bench/.peers/portkey)")
    if "portico-fast" in args.targets and not (ACCEL_DIR / "uvloop").exists():
        missing.append("httptools + uvloop (bench/peers.sh accel)")
    if args.profile and not PY_SPY.exists():
        missing.append("py-spy (bench/peers.sh tools)")
    if missing:
        parser.error(f"missing {', '.join(missing)}: run bench/peers.sh (see its header)")


def main() -> None:
    args = parse_args()
    # SIGTERM ends the run like Ctrl-C: the context managers stop every child and remove the temp dir.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if args.load_cpu is not None:
        os.sched_setaffinity(0, {args.load_cpu})  # this process (the TTFB client) sits with the load
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = Path(tempfile.mkdtemp(prefix="portico-bench-gateway-"))
            print(f"work dir (kept): {work}")
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="portico-bench-gateway-")))
        run(args, work)
    print(f"\n(total run time {time.monotonic() - started:.0f} s)")


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the context managers above have stopped every child and removed the temp dir
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
