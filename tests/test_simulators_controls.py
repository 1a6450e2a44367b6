"""The OpenAI, Bedrock and Vertex inference simulators over real HTTP (uvicorn on 127.0.0.1).

The knobs: auth, injected failures, latency, counters, the clock, bad input, and the CLI serving each kind.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from portico.cli import build_parser
from providers.simulators.app import KINDS, running_simulator
from providers.simulators.controls import Clock
from tests.support.server import free_port
from tests.support.simulators import (
    BEDROCK_AUTH,
    HTTP,
    OPENAI_AUTH,
    VENDORS,
    VERTEX_AUTH,
    Conversation,
    _close_client,  # noqa: F401 - the fixture
    bedrock_body,
    chat,
    openai_body,
    urls_fixture,  # noqa: F401 - the fixture
    vertex_body,
)

# --- knobs: auth, injected failures, latency, counters, the clock -------------------------------------------------

AUTH_REJECTIONS = {"openai": (401, "invalid_api_key"), "bedrock": (403, None), "vertex": (401, "UNAUTHENTICATED")}


@pytest.mark.parametrize("kind", list(VENDORS))
@pytest.mark.parametrize("authorization", [None, "Bearer", "Basic dXNlcjpwdw=="])
def test_credentials_are_required(urls: dict[str, str], kind: str, authorization: str | None) -> None:
    vendor = VENDORS[kind]
    headers = {} if authorization is None else {"Authorization": authorization}
    response = HTTP.post(urls[kind] + vendor.chat_path, json=vendor.body(Conversation("s", "u")), headers=headers)
    status, code = AUTH_REJECTIONS[kind]
    assert response.status_code == status
    assert vendor.error_message(response.json())
    codes: dict[str, Callable[[Any], object]] = {
        "openai": lambda e: e["error"]["code"],
        "bedrock": lambda e: None,
        "vertex": lambda e: e["error"]["status"],
    }
    assert codes[kind](response.json()) == code


def test_bedrock_needs_the_amz_date_beside_the_signature(urls: dict[str, str]) -> None:
    headers = {"Authorization": BEDROCK_AUTH["Authorization"]}
    response = HTTP.post(
        urls["bedrock"] + VENDORS["bedrock"].chat_path, json=bedrock_body(Conversation("s", "u")), headers=headers
    )
    assert response.status_code == 403 and "Signature Version 4" in response.json()["message"]


@pytest.mark.parametrize("kind", list(VENDORS))
def test_x_sim_fail_injects_the_status_with_retry_after(urls: dict[str, str], kind: str) -> None:
    for status in (429, 503):
        response = chat(urls, kind, Conversation("s", "u"), **{"x-sim-fail": str(status)})
        assert response.status_code == status
        assert response.headers["retry-after"] == "1"
        assert VENDORS[kind].error_message(response.json())
    server_error = chat(urls, kind, Conversation("s", "u"), **{"x-sim-fail": "500"})
    assert server_error.status_code == 500 and "retry-after" not in server_error.headers


@pytest.mark.parametrize("kind", list(VENDORS))
def test_x_sim_fail_times_fails_then_succeeds(urls: dict[str, str], kind: str) -> None:
    key = uuid.uuid4().hex
    headers = {"x-sim-fail-times": "2", "x-sim-key": key, "x-sim-fail": "503"}
    statuses = [chat(urls, kind, Conversation("s", "u"), **headers).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    other_key = chat(urls, kind, Conversation("s", "u"), **{**headers, "x-sim-key": key + "-other"})
    assert other_key.status_code == 503
    HTTP.post(urls[kind] + "/_sim/reset")  # forgets the keys
    assert chat(urls, kind, Conversation("s", "u"), **headers).status_code == 503


def test_fail_after_serves_then_answers_the_error(urls: dict[str, str]) -> None:
    """The OpenAI file upload is done (the file is listed) although its answer was the injected 500."""
    files = urls["openai"] + "/v1/files"
    armed = HTTP.post(urls["openai"] + "/_sim/fail-after", json={"route": "files.create", "status": 500, "times": 1})
    assert armed.status_code == 200
    name = f"{uuid.uuid4().hex}.jsonl"
    upload = {"file": (name, b'{"a": 1}\n'), "purpose": (None, "batch")}
    lost = HTTP.post(files, files=upload, headers=OPENAI_AUTH)
    assert lost.status_code == 500 and lost.json()["error"]["message"].startswith("Simulated failure")
    listed = HTTP.get(files, headers=OPENAI_AUTH).json()["data"]
    assert [f["filename"] for f in listed].count(name) == 1, "the work was done before the error"
    assert HTTP.post(files, files=upload, headers=OPENAI_AUTH).status_code == 200, "only `times` answers are lost"
    refused = HTTP.post(urls["openai"] + "/_sim/fail-after", json={"route": "files.create", "status": 200})
    assert refused.status_code == 400


@pytest.mark.parametrize("kind", list(VENDORS))
def test_latency_header_delays_the_answer(urls: dict[str, str], kind: str) -> None:
    started = time.perf_counter()
    response = chat(urls, kind, Conversation("s", "u"), **{"x-sim-latency-ms": "200"})
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.2


def test_configured_latency_and_failures() -> None:
    with running_simulator("vertex", latency_ms=150, fail_rate=1.0, fail_status=503, retry_after=2.5) as url:
        started = time.perf_counter()
        response = HTTP.post(
            url + VENDORS["vertex"].chat_path, json=vertex_body(Conversation("s", "u")), headers=VERTEX_AUTH
        )
        assert time.perf_counter() - started >= 0.15
        assert response.status_code == 503 and response.json()["error"]["status"] == "UNAVAILABLE"
        assert (response.headers["retry-after"], response.headers["retry-after-ms"]) == ("3", "2500")


def test_random_failures_follow_the_seed() -> None:
    def pattern(seed: int) -> list[int]:
        with running_simulator("openai", fail_rate=0.5, seed=seed) as url:
            body = openai_body(Conversation("s", "u"))
            first = [
                HTTP.post(url + "/v1/chat/completions", json=body, headers=OPENAI_AUTH).status_code for _ in range(12)
            ]
            HTTP.post(url + "/_sim/reset")
            again = [
                HTTP.post(url + "/v1/chat/completions", json=body, headers=OPENAI_AUTH).status_code for _ in range(12)
            ]
            assert again == first  # reset reseeds
            return first

    seven = pattern(7)
    assert set(seven) == {200, 429}
    assert pattern(7) == seven
    assert pattern(8) != seven


@pytest.mark.parametrize("kind", list(VENDORS))
def test_stats_count_requests_and_reset_clears_them(urls: dict[str, str], kind: str) -> None:
    assert HTTP.post(urls[kind] + "/_sim/reset").json() == {"reset": True}
    chat(urls, kind, Conversation("s", "u"), **{"x-sim-request-id": "r-1"})
    chat(urls, kind, Conversation("s", "u"), **{"x-sim-request-id": "r-1", "x-sim-fail": "500"})
    chat(urls, kind, Conversation("s", "u"), **{"x-sim-request-id": "r-2"})
    stats = HTTP.get(urls[kind] + "/_sim/stats").json()
    assert stats["total"] == 3
    assert sum(stats["by_route"].values()) == 3 and len(stats["by_route"]) == 1
    assert list(stats["by_model"].values()) == [3]
    assert stats["by_request_id"] == {"r-1": 2, "r-2": 1}
    assert (stats["injected_failures"], stats["failures_by_status"]) == (1, {"500": 1})
    HTTP.post(urls[kind] + "/_sim/reset")
    cleared = HTTP.get(urls[kind] + "/_sim/stats").json()
    assert cleared == {
        "total": 0,
        "by_route": {},
        "by_model": {},
        "by_request_id": {},
        "injected_failures": 0,
        "failures_by_status": {},
    }


def test_clock_runs_at_its_speed() -> None:
    clock = Clock(speed=3600, start=0.0)
    time.sleep(0.02)
    assert clock.now() >= 72  # 20 ms of real time is at least 72 simulated seconds
    before = clock.now()
    clock.speed = 1.0
    assert before <= clock.now() < before + 5  # no jump when the speed changes
    with pytest.raises(ValueError):
        Clock(speed=0)


def test_bad_input_is_a_400_in_the_vendor_shape(urls: dict[str, str]) -> None:
    broken = HTTP.post(urls["openai"] + "/v1/chat/completions", content=b"{not json", headers=OPENAI_AUTH)
    assert broken.status_code == 400 and "JSON" in broken.json()["error"]["message"]
    no_messages = HTTP.post(urls["bedrock"] + VENDORS["bedrock"].chat_path, json={}, headers=BEDROCK_AUTH)
    assert no_messages.status_code == 400 and "messages" in no_messages.json()["message"]
    no_contents = HTTP.post(urls["vertex"] + VENDORS["vertex"].chat_path, json={}, headers=VERTEX_AUTH)
    assert no_contents.status_code == 400 and no_contents.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_cli_serves_each_kind() -> None:
    for kind in KINDS:
        args = build_parser().parse_args(["simulate", kind, "--fail-status", "503", "--retry-after", "0"])
        assert (args.kind, args.fail_status, args.retry_after) == (kind, 503, 0.0)
        assert (args.access_log, args.loop) == (True, "auto")
    status, output = _one_request_to_cli_simulator("--fail-rate", "1")
    assert status == 429  # --fail-rate 1 with the default status
    assert '"POST /v1/chat/completions HTTP/1.1" 429' in output  # the access log is on by default


def test_cli_simulator_without_access_log_on_the_stdlib_loop() -> None:
    status, output = _one_request_to_cli_simulator("--no-access-log", "--loop", "asyncio")
    assert status == 200
    assert "Portico openai simulator on" in output and "POST /v1/chat/completions" not in output


def _one_request_to_cli_simulator(*options: str) -> tuple[int, str]:
    """Start `portico simulate openai` with `options`, send one chat request, stop it; its status and the output."""
    port = free_port()
    command = [sys.executable, "-m", "portico.cli", "simulate", "openai", "--port", str(port), *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = HTTP.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json=openai_body(Conversation("s", "u")),
                    headers=OPENAI_AUTH,
                )
                break
            except httpx.ConnectError:
                assert process.poll() is None and time.monotonic() < deadline, "portico simulate did not start"
                time.sleep(0.05)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    return response.status_code, output
