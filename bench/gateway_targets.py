"""The targets bench/gateway.py measures, each started, checked and stopped here: direct (the upstream itself),
portico (`portico serve` as shipped: httptools, uvloop), portico-h11 (h11 parser, asyncio loop), litellm
(LiteLLM's proxy) and portkey (Portkey's gateway)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.gateway_processes import LOOPBACK_HEX, child, listening_addresses, pinned, wait_for_http
from bench.gateway_upstream import MODES, SLOW_SECONDS, UPSTREAM_KEYS, completion_body, nginx_version, request_body
from bench.upload import ADMIN_KEY, clean_environment, portico_executable
from tests.support.object_stores import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / ".peers"
LITELLM_BIN = PEERS / "litellm-venv" / "bin" / "litellm"
PORTKEY_SERVER = PEERS / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"

GATEWAYS = ("portico", "litellm", "portkey", "portico-h11")
TARGETS = ("direct", *GATEWAYS)
DEFAULT_TARGETS = "direct,portico,litellm,portkey"


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
def portico_target(
    name: str, base: str, work: Path, logs: Path, cpu: int | None, extra_args: list[str]
) -> Iterator[Target]:
    data_dir = work / f"data-{name}"
    data_dir.mkdir()
    port = free_port()
    command = [str(portico_executable()), "serve", "--host", LOOPBACK, "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--no-access-log", *extra_args]
    settings = {
        "PORTICO_ADMIN_API_KEY": ADMIN_KEY,
        "PORTICO_PROVIDER_ENDPOINTS": json.dumps({"openai": base}),
        "PORTICO_LOG_LEVEL": "WARNING",
    }
    env = clean_environment(settings)
    version = "uvicorn httptools, uvloop (defaults)"
    if name == "portico-h11":
        # The pure-Python stack, for comparison with the defaults.
        command += ["--http", "h11", "--loop", "asyncio"]
        version = "uvicorn h11, asyncio"
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


def check_target(target: Target, modes: list[str]) -> None:
    """One request per mode: 200, the upstream's answer (so the request reached the right variant), the delay."""
    expected = json.loads(completion_body())["choices"][0]["message"]["content"]
    for mode in modes:
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


# --- starting them all ----------------------------------------------------------------------------------------


def start_targets(args: argparse.Namespace, base: str, work: Path, stack: contextlib.ExitStack) -> list[Target]:
    logs, cpu = work, args.gateway_cpu
    targets = []
    for name in args.targets:
        print(f"starting {name} ...", flush=True)
        if name == "direct":
            targets.append(direct_target(base))
        elif name in ("portico", "portico-h11"):
            targets.append(stack.enter_context(portico_target(name, base, work, logs, cpu, args.portico_args)))
        elif name == "litellm":
            targets.append(stack.enter_context(litellm_target(base, work, logs, cpu)))
        elif name == "portkey":
            targets.append(stack.enter_context(portkey_target(base, work, logs, cpu)))
    for target in targets:
        # Streaming is checked only where it is measured: Portkey's gateway 1.15.2 on node 20 answers this SSE
        # upstream with a 500 ("TypeError: immutable" appending a header to the upstream's response).
        check_target(target, ["fast", "slow", *(["stream"] if target.name in args.ttfb_targets else [])])
    return targets
