"""One Bedrock batch record's life: its input line parsed, its ``modelInput`` answered by the shared deterministic
behaviour (`behaviour.respond`) in its model family's wire format, failures injected, and the job's tally kept.

Bedrock hands each record to the job's model as an InvokeModel body, so the output is that model's native
InvokeModel response; a job created with ``modelInvocationType: Converse`` takes Converse request bodies and
answers Converse responses instead. The family is read from the model id (a custom model's ARN names its base):

- ``anthropic.*``: Anthropic Messages (``anthropic_version`` and ``max_tokens`` required, as Bedrock requires them);
- ``*titan-embed*``: ``{"inputText"}`` gives ``{"embedding", "inputTextTokenCount"}``;
- anything else: Amazon Nova's native ``messages-v1`` body, which is Converse-shaped, as is its answer.

A record fails with errorCode 400 when its body does not fit its family, with 500 when its recordId contains "fail",
and with the simulator's fail_status when sha256(seed:jobName:recordId) falls under its fail_rate: reproducible,
independent of processing order, and a retry job under a new name draws afresh. Each answered record is counted in
``/_sim/stats`` (route ``model-invocation-record``, by_request_id = its recordId).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from providers.simulators.bedrock import STOP_REASONS, TOOL_USE_ID, prompt_of
from providers.simulators.behaviour import (
    InvalidRequest,
    Prompt,
    Reply,
    Role,
    Tool,
    Turn,
    count_words,
    dimensions_of,
    embedding,
    message_turns,
    respond,
)
from providers.simulators.controls import SimulatorControls
from providers.simulators.edge import require
from providers.simulators.s3_access import S3Uri

RECORD_ROUTE = "model-invocation-record"
FAIL_MARK = "fail"
ANTHROPIC_TOOL_USE_ID = "toolu_bdrk_sim_0"
ANTHROPIC_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant"}
# "anthropic.claude-3-haiku-20240307-v1:0", possibly inside an ARN or after a "us." profile prefix.
_ANTHROPIC_MODEL = re.compile(r"anthropic\.([a-z0-9.-]+?)(?:-v\d+)?(?::|/|$)")


@dataclass(frozen=True)
class Answer:
    output: dict[str, Any]
    input_tokens: int
    output_tokens: int


Family = Callable[[dict[str, Any], str, str], Answer]  # (modelInput, model id, recordId)


class BadInput(Exception):
    """The input file is not batch-inference JSONL: the job fails in validation."""


@dataclass
class Tally:
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "processedRecordCount": self.processed,
            "successRecordCount": self.succeeded,
            "errorRecordCount": self.failed,
        }

    def manifest(self, total: int) -> dict[str, int]:
        tokens = {"inputTokenCount": self.input_tokens, "outputTokenCount": self.output_tokens}
        return {"totalRecordCount": total, **self.counts(), **tokens}


async def numbered(lines: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    number = 0
    async for line in lines:
        number += 1
        yield number, line


def parse_record(line: bytes, source: S3Uri, number: int) -> tuple[str, dict[str, Any]]:
    try:
        record = json.loads(line)
    except ValueError:
        raise BadInput(f"line {number} of {source} is not JSON") from None
    if not isinstance(record, dict) or not isinstance(record.get("recordId"), str) or not record["recordId"]:
        raise BadInput(f"line {number} of {source} needs a string recordId")
    if not isinstance(record.get("modelInput"), dict):
        raise BadInput(f"line {number} of {source} needs a modelInput object")
    return record["recordId"], record["modelInput"]


class Answerer:
    """Answers one job's records, one output line each, into its tally and the simulator's stats."""

    def __init__(
        self, model_id: str, invocation_type: str | None, job_name: str, controls: SimulatorControls, tally: Tally
    ):
        self.model_id, self.job_name, self.controls, self.tally = model_id, job_name, controls, tally
        self.family = family_of(model_id, invocation_type)

    def answer(self, record_id: str, model_input: dict[str, Any]) -> dict[str, Any]:
        line, tally = {"recordId": record_id, "modelInput": model_input}, self.tally
        error = self._injected(record_id)
        if error is None:
            try:
                result = self.family(model_input, self.model_id, record_id)
            except InvalidRequest as invalid:
                error = {"errorCode": 400, "errorMessage": str(invalid)}
            else:
                line["modelOutput"] = result.output
                tally.input_tokens += result.input_tokens
                tally.output_tokens += result.output_tokens
        if error is None:
            tally.succeeded += 1
        else:
            line["error"] = error
            tally.failed += 1
        tally.processed += 1
        stats = self.controls.stats  # read each time: /_sim/reset replaces it
        stats.total += 1
        stats.by_route[RECORD_ROUTE] += 1
        stats.by_model[self.model_id] += 1
        stats.by_request_id[record_id] += 1
        return line

    def _injected(self, record_id: str) -> dict[str, Any] | None:
        controls, stats = self.controls, self.controls.stats
        if FAIL_MARK in record_id:
            status, why = 500, f"its recordId contains {FAIL_MARK!r}"
        elif _draw(controls.seed, self.job_name, record_id) < controls.fail_rate:
            status, why = controls.fail_status, f"the fail rate {controls.fail_rate}"
        else:
            return None
        stats.injected_failures += 1
        stats.failures_by_status[str(status)] += 1
        return {"errorCode": status, "errorMessage": f"Simulated failure injected by the Portico simulator ({why})"}


def _draw(seed: int, job_name: str, record_id: str) -> float:
    digest = hashlib.sha256(f"{seed}:{job_name}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def family_of(model_id: str, invocation_type: str | None) -> Family:
    if invocation_type == "Converse":
        return _converse
    if "anthropic." in model_id:
        return _anthropic
    if "titan-embed" in model_id:
        return _titan_embedding
    return _nova


def _converse_members(reply: Reply) -> dict[str, Any]:
    if reply.tool_call is None:
        content: list[dict[str, Any]] = [{"text": reply.text}]
    else:
        call = reply.tool_call
        content = [{"toolUse": {"toolUseId": TOOL_USE_ID, "name": call.name, "input": call.arguments}}]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": STOP_REASONS[reply.finish],
        "usage": {
            "inputTokens": reply.prompt_tokens,
            "outputTokens": reply.completion_tokens,
            "totalTokens": reply.total_tokens,
        },
    }


def _nova(body: dict[str, Any], _model_id: str, _record_id: str) -> Answer:
    reply = respond(prompt_of(body))
    return Answer(_converse_members(reply), reply.prompt_tokens, reply.completion_tokens)


def _converse(body: dict[str, Any], _model_id: str, _record_id: str) -> Answer:
    reply = respond(prompt_of(body))
    # A Converse response always has metrics; no network call was timed here.
    output = {**_converse_members(reply), "metrics": {"latencyMs": 0}}
    return Answer(output, reply.prompt_tokens, reply.completion_tokens)


def _titan_embedding(body: dict[str, Any], _model_id: str, _record_id: str) -> Answer:
    text = require(body, "inputText", str)
    tokens = count_words(text)
    vector = embedding(text, dimensions_of(body.get("dimensions")))
    return Answer({"embedding": vector, "inputTextTokenCount": tokens}, tokens, 0)


def _anthropic(body: dict[str, Any], model_id: str, record_id: str) -> Answer:
    reply = respond(anthropic_prompt(body))
    if reply.tool_call is None:
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}]
    else:
        call = reply.tool_call
        content = [{"type": "tool_use", "id": ANTHROPIC_TOOL_USE_ID, "name": call.name, "input": call.arguments}]
    match = _ANTHROPIC_MODEL.search(model_id)
    output = {
        "id": "msg_bdrk_" + hashlib.sha256(record_id.encode()).hexdigest()[:24],
        "type": "message",
        "role": "assistant",
        "model": match[1] if match else model_id,
        "content": content,
        # Anthropic names its stop reasons as Converse does.
        "stop_reason": STOP_REASONS[reply.finish],
        "stop_sequence": None,
        "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens},
    }
    return Answer(output, reply.prompt_tokens, reply.completion_tokens)


def anthropic_prompt(body: dict[str, Any]) -> Prompt:
    if not isinstance(body.get("anthropic_version"), str):
        raise InvalidRequest("anthropic_version is required (e.g. 'bedrock-2023-05-31')")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest("max_tokens is required and must be a positive integer")
    turns = [Turn("system", text) for text in _texts(body.get("system"), "system")]
    for index, message in enumerate(require(body, "messages", list)):
        role = ANTHROPIC_ROLES.get(str(message.get("role"))) if isinstance(message, dict) else None
        if role is None:
            raise InvalidRequest(f"messages.{index}: role must be user or assistant")
        blocks = _blocks(message.get("content"), f"messages.{index}.content")
        turns.extend(message_turns(role, (turn for block in blocks if (turn := _turn(role, block)) is not None)))
    return Prompt(turns, [_tool(tool, index) for index, tool in enumerate(body.get("tools") or ())], max_tokens)


def _blocks(content: object, where: str) -> list[dict[str, Any]]:
    """Anthropic content: a string, or a list of typed blocks."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(block, dict) for block in content):
        raise InvalidRequest(f"{where} must be a string or a list of content blocks")
    return content


def _texts(content: object, where: str) -> list[str]:
    if content is None:
        return []
    return [block["text"] for block in _blocks(content, where) if isinstance(block.get("text"), str)]


def _turn(role: Role, block: dict[str, Any]) -> Turn | None:
    """A block's text or tool result; tool uses and images carry no counted text."""
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return Turn(role, block["text"])
    if block.get("type") == "tool_result":
        return Turn("tool", " ".join(_texts(block.get("content"), "tool_result.content")))
    return None


def _tool(tool: object, index: int) -> Tool:
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise InvalidRequest(f"tools.{index} must be an object with a 'name'")
    return Tool(tool["name"], tool.get("input_schema") or {})
