"""One batch line: checking the input file's lines, and running a line through the live endpoint's handler.

Each line is served by the same handler as the live endpoint, so its ``response.body`` is exactly what a direct
request would have returned. A line fails instead when:

- its ``custom_id`` contains ``fail`` (any case): status 500 if the custom_id also contains ``500``, else 400;
- a draw from ``Random(f"{seed}:{custom_id}:{attempt}")`` is below the server's ``fail_rate``, with status
  ``fail_status`` (`attempt` counts earlier processings of that custom_id since the last ``/_sim/reset``, so a
  resubmitted line draws afresh while a rerun from a fresh server repeats the same failures);
- its body is invalid for the endpoint (or asks to stream): status 400 with the endpoint's own message.

Failed lines carry their error response (``error`` null); lines cut off by expiry carry ``error.code``
``batch_expired`` (``response`` null). Each processed line is counted under its custom_id in ``GET /_sim/stats``
``by_request_id``, so a test can tell a line processed twice from one processed once.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from providers.simulators import openai
from providers.simulators.behaviour import InvalidRequest
from providers.simulators.controls import SimulatorControls
from providers.simulators.edge import Call, Handler, model_in_body
from providers.simulators.openai_job_state import BAD_LINE, jsonl, new_id

ENDPOINTS: dict[str, Handler] = {
    "/v1/chat/completions": openai.chat_completions,
    "/v1/completions": openai.completions,
    "/v1/embeddings": openai.embeddings,
}
MAX_LINES = 50_000
EXPIRED = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}


@dataclass(frozen=True)
class Line:
    number: int
    custom_id: str
    body: dict[str, Any]


def parse_lines(source: bytes, endpoint: str) -> tuple[list[Line], list[dict[str, Any]]]:
    """The requests of an input file, or the errors that fail the batch (each naming its line)."""
    lines: list[Line] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, value in jsonl(source):
        problem = _line_problem(value, endpoint, seen)
        if problem is not None:
            errors.append({**problem, "line": number})
            continue
        assert isinstance(value, dict)  # _line_problem checked it
        seen.add(value["custom_id"])
        lines.append(Line(number, value["custom_id"], value["body"]))
    if not lines and not errors:
        errors.append(_problem("empty_file", "The input file contains no requests.", None))
    if len(lines) > MAX_LINES:
        errors.append(_problem("too_many_requests", f"A batch holds at most {MAX_LINES} requests.", None))
    return lines, errors


def _line_problem(value: object, endpoint: str, seen: set[str]) -> dict[str, Any] | None:
    if value is BAD_LINE or not isinstance(value, dict):
        return _problem("invalid_json_line", "This line is not parseable as a JSON object.", None)
    custom_id = value.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return _problem("missing_required_parameter", "Each request needs a non-empty string custom_id.", "custom_id")
    if custom_id in seen:
        return _problem("duplicate_custom_id", f"The custom_id {custom_id!r} is used by an earlier line.", "custom_id")
    if value.get("method") != "POST":
        return _problem("invalid_method", "Batch requests must use the method POST.", "method")
    if value.get("url") != endpoint:
        return _problem("invalid_url", f"The url must be the batch's endpoint {endpoint}.", "url")
    if not isinstance(value.get("body"), dict):
        return _problem("missing_required_parameter", "Each request needs a JSON object body.", "body")
    return None


def _problem(code: str, message: str, param: str | None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": None}


def line_failure(custom_id: str, controls: SimulatorControls, attempt: int) -> int | None:
    """The status a line fails with by rule or by the seeded draw, or None (see the module docstring)."""
    lowered = custom_id.lower()
    if "fail" in lowered:
        return 500 if "500" in lowered else 400
    # A string seed hashes with sha512: the same draw in every process, whatever PYTHONHASHSEED.
    draw = random.Random(f"{controls.seed}:{custom_id}:{attempt}").random()
    return controls.fail_status if draw < controls.fail_rate else None


async def run_line(line: Line, endpoint_path: str, call: Call) -> dict[str, Any]:
    """One output-file line for `line`: the endpoint's response, or the error response it fails with."""
    controls = call.controls
    attempt = controls.stats.by_request_id[line.custom_id]
    controls.stats.by_request_id[line.custom_id] += 1
    status = line_failure(line.custom_id, controls, attempt)
    if status is not None:
        message = f"Simulated failure (status {status}) of batch request {line.custom_id!r}"
        return output(line, _response(openai.error(status, message), new_id("req_")))
    model = model_in_body(call.request, line.body)
    line_call = Call(call.request, line.body, model, controls, time.monotonic(), controls.next_sequence())
    try:
        if line.body.get("stream"):
            raise InvalidRequest("Streaming is not supported in batch requests: leave 'stream' unset.")
        response = await ENDPOINTS[endpoint_path](line_call)
    except InvalidRequest as problem:
        response = openai.error(400, str(problem))
    return output(line, _response(response, response.headers.get("x-request-id") or new_id("req_")))


def _response(response: Response, request_id: str) -> dict[str, Any]:
    return {"status_code": response.status_code, "request_id": request_id, "body": json.loads(bytes(response.body))}


def output(
    line: Line, response: dict[str, Any] | None = None, line_error: dict[str, str] | None = None
) -> dict[str, Any]:
    """A line in OpenAI's output format: ``response`` when the request got an answer, ``error`` when it never ran."""
    return {"id": new_id("batch_req_"), "custom_id": line.custom_id, "response": response, "error": line_error}
