"""Incremental JSONL validation for `batch` and `fine-tune` uploads, run while the bytes stream to storage.

`JsonlValidator.feed` takes chunks cut anywhere (mid-line, mid-character, between `\\r` and `\\n`) and hands each
complete line to the purpose's `LineRules`. The first bad line raises `JsonlLineError` with the line, a stable rule
code and a fix: fail-fast, since the upload is refused as a whole. After an error the validator is spent.

Lines are numbered 1-based by physical line, as editors and OpenAI's batch `errors.data[].line` count them. Blank
or whitespace-only lines are skipped (not records) but counted. CRLF needs no special case: the `\\r` left at the
end of a line is JSON whitespace. Each line is decoded as strict UTF-8 on its own, and `\\n` never occurs inside a
multi-byte sequence, so a chunk split inside a character needs no care. A byte order mark is refused, not stripped,
because the stored bytes go to providers unchanged.

Memory is the pending line (capped by `max_line_bytes` as bytes arrive, so an endless line fails early) plus, for
batch, `_SeenIds`: each custom_id's 64-bit `hash()` and first line in flat arrays, 18-36 bytes per id (~6 MB for
200k) against ~110 bytes plus the text in a `dict[str, int]`, still reporting both lines without a second pass. The
trade-off: distinct ids with equal hashes would be refused as duplicates. With the per-process keyed SipHash the
odds are about n²/2^65: 1e-10 at OpenAI's 50,000-request cap, 1e-9 at 200k, 1e-6 at the ~6M tiny requests 512 MB
could hold.

Batch urls are spelled like OpenAI's batch `endpoint` (`/v1/chat/completions`), which fails every line whose url
differs from it: an unprefixed `/chat/completions` is refused with a "did you mean" hint, and one file holds one
url. Models may differ between lines, and the request-count cap (50,000 on OpenAI and Bedrock) is left to batch
creation, which knows the provider.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Protocol

DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024


class Rule(StrEnum):
    """The stable machine codes carried by `JsonlLineError.rule` (REST returns them as the error `code`)."""

    # Any purpose.
    EMPTY_FILE = "empty_file"
    LINE_TOO_LONG = "line_too_long"
    INVALID_ENCODING = "invalid_encoding"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    # batch
    MISSING_CUSTOM_ID = "missing_custom_id"
    INVALID_CUSTOM_ID = "invalid_custom_id"
    DUPLICATE_CUSTOM_ID = "duplicate_custom_id"
    INVALID_METHOD = "invalid_method"
    INVALID_URL = "invalid_url"
    URL_MISMATCH = "url_mismatch"
    MISSING_BODY = "missing_body"
    INVALID_BODY = "invalid_body"
    MISSING_MODEL = "missing_model"
    INVALID_MODEL = "invalid_model"
    MISSING_MESSAGES = "missing_messages"
    INVALID_MESSAGES = "invalid_messages"
    MISSING_INPUT = "missing_input"
    MISSING_PROMPT = "missing_prompt"
    # fine-tune (invalid_messages is shared with batch)
    INVALID_EXAMPLE = "invalid_example"
    MIXED_FORMATS = "mixed_formats"
    INVALID_ROLE = "invalid_role"
    INVALID_CONTENT = "invalid_content"
    INVALID_WEIGHT = "invalid_weight"
    MISSING_ASSISTANT_MESSAGE = "missing_assistant_message"
    INVALID_PREFERENCE = "invalid_preference"
    INVALID_PROMPT_COMPLETION = "invalid_prompt_completion"


class JsonlLineError(ValueError):
    """A line breaks a rule. `message` starts with `line N:` and says how to fix it; `str(err) == err.message`."""

    def __init__(self, line: int, rule: str, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.rule = rule
        self.message = message  # also ValueError's only arg, hence str(err)


def _fail(line_no: int, rule: Rule, detail: str) -> JsonlLineError:
    return JsonlLineError(line_no, rule, f"line {line_no}: {detail}")


def _describe(value: object) -> str:
    """A JSON value as a message shows it: its JSON type, and short scalars themselves."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {_quote(value)}"
    kind = "array" if isinstance(value, list) else "object"
    return f"an {kind}" if value else f"an empty {kind}"


def _quote(text: str, limit: int = 80) -> str:
    # Values come from the uploader; cap them so a 1 MB custom_id cannot become a 1 MB error message.
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted if len(quoted) <= limit else quoted[: limit - 2] + '…"'


class LineRules(Protocol):
    """What one purpose requires of each record. Implementations may keep state across lines."""

    def check(self, line_no: int, record: object) -> None:
        """Raise `JsonlLineError` if `record` (the line's parsed JSON) is not acceptable."""
        ...


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every line: `json.loads(text, **options)` would build a new decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


class JsonlValidator:
    """Validates a JSONL stream chunk by chunk; see the module docstring for the line conventions."""

    def __init__(self, rules: LineRules, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._rules = rules
        self._max_line_bytes = max_line_bytes
        self._pending = bytearray()  # the current line's bytes so far, without its `\n`
        self._lines = 0  # physical lines completed
        self._records = 0  # non-blank lines that passed
        self._finished = False

    def feed(self, chunk: bytes) -> None:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        pieces = chunk.split(b"\n")
        if len(pieces) > 1:
            # bytearray += is amortised O(1), so a line arriving one byte at a time still costs O(length).
            self._pending += pieces[0]
            first = bytes(self._pending)
            self._pending.clear()
            self._check_line(first)
            for line in pieces[1:-1]:
                self._check_line(line)
        self._pending += pieces[-1]
        if len(self._pending) > self._max_line_bytes:
            raise self._too_long(self._lines + 1)

    def finish(self) -> int:
        """Check the last line if it had no `\\n`; return the number of records. Raises `empty_file` if none."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        if self._pending:
            last = bytes(self._pending)
            self._pending.clear()
            self._check_line(last)
        if self._records == 0:
            raise _fail(1, Rule.EMPTY_FILE, "the file holds no JSON lines; put one JSON object on each line")
        return self._records

    def _check_line(self, raw: bytes) -> None:
        self._lines += 1
        line_no = self._lines
        if len(raw) > self._max_line_bytes:
            raise self._too_long(line_no)
        text = _decode(line_no, raw)
        if not text.strip(" \t\r"):  # JSON's whitespace
            return
        self._rules.check(line_no, _parse(line_no, text))
        self._records += 1

    def _too_long(self, line_no: int) -> JsonlLineError:
        limit = self._max_line_bytes
        return _fail(line_no, Rule.LINE_TOO_LONG, f"the line is longer than {limit} bytes; shorten it or split it")


def _decode(line_no: int, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        detail = f"byte {err.start + 1} of the line is not valid UTF-8; save the file as UTF-8"
        raise _fail(line_no, Rule.INVALID_ENCODING, detail) from None
    if text.startswith("\ufeff"):
        detail = "the line starts with a byte order mark (BOM); save the file as UTF-8 without BOM"
        raise _fail(line_no, Rule.INVALID_ENCODING, detail)
    return text


def _parse(line_no: int, text: str) -> object:
    hint = "each line must be one complete JSON object (pretty-printed JSON spanning lines is not JSONL)"
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as err:
        raise _fail(line_no, Rule.INVALID_JSON, f"invalid JSON at column {err.colno} ({err.msg}); {hint}") from None
    except ValueError as err:  # NaN / Infinity, refused by `_reject_constant`
        raise _fail(line_no, Rule.INVALID_JSON, f"invalid JSON ({err}); {hint}") from None
    except RecursionError:
        raise _fail(line_no, Rule.INVALID_JSON, "the JSON is nested too deeply to parse") from None


def _require_object(line_no: int, record: object) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise _fail(line_no, Rule.NOT_AN_OBJECT, f"expected a JSON object, found {_describe(record)}")
    return record


class _SeenIds:
    """custom_id → first line, as (64-bit hash, line) pairs in flat arrays; see the module docstring."""

    def __init__(self) -> None:
        self._allocate(1024, used=0)

    def _allocate(self, capacity: int, used: int) -> None:
        self._hashes = array("q", [0]) * capacity  # 0 marks an empty slot
        self._lines = array("I", [0]) * capacity  # 32 bits: an upload within the size cap has far fewer lines
        self._mask = capacity - 1
        self._room = capacity * 2 // 3 - used  # linear probing stays short below 2/3 full

    def add(self, custom_id: str, line_no: int) -> int | None:
        """Remember `custom_id` at `line_no`, or return the line where it was first seen."""
        # Locals and an inlined probe: this runs once per batch line, and attribute lookups cost here.
        key = hash(custom_id) or 1
        hashes, mask = self._hashes, self._mask
        slot = key & mask
        while hashes[slot]:
            if hashes[slot] == key:
                return self._lines[slot]
            slot = (slot + 1) & mask
        hashes[slot], self._lines[slot] = key, line_no
        self._room -= 1
        if not self._room:
            self._grow()
        return None

    def _grow(self) -> None:
        old_hashes, old_lines = self._hashes, self._lines
        self._allocate(len(old_hashes) * 2, used=len(old_hashes) * 2 // 3)
        hashes, lines, mask = self._hashes, self._lines, self._mask
        for old_slot, key in enumerate(old_hashes):
            if key:
                slot = key & mask
                while hashes[slot]:
                    slot = (slot + 1) & mask
                hashes[slot], lines[slot] = key, old_lines[old_slot]


def _require_model(line_no: int, body: dict[str, Any], *, optional: bool = False) -> None:
    model = body.get("model")
    if model is None and optional:
        return
    if model is None or model == "":
        raise _fail(line_no, Rule.MISSING_MODEL, 'body.model is missing; name the model, e.g. "gpt-4o-mini"')
    if not isinstance(model, str):
        raise _fail(line_no, Rule.INVALID_MODEL, f"body.model must be a string, found {_describe(model)}")


def _require_field(line_no: int, body: dict[str, Any], field: str, rule: Rule, endpoint: str) -> None:
    if body.get(field) is None:
        raise _fail(line_no, rule, f"body.{field} is missing; {endpoint} requests need it")


def _check_chat_body(line_no: int, body: dict[str, Any]) -> None:
    _require_model(line_no, body)
    messages = body.get("messages")
    if messages is None:
        raise _fail(line_no, Rule.MISSING_MESSAGES, "body.messages is missing; chat completions need a messages list")
    if not isinstance(messages, list) or not messages:
        detail = f"body.messages must be a non-empty array of messages, found {_describe(messages)}"
        raise _fail(line_no, Rule.INVALID_MESSAGES, detail)
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            detail = f"body.messages[{index}] must be a message object, found {_describe(message)}"
            raise _fail(line_no, Rule.INVALID_MESSAGES, detail)
        role = message.get("role")
        if not isinstance(role, str):
            detail = f'body.messages[{index}].role must be a string such as "user", found {_describe(role)}'
            raise _fail(line_no, Rule.INVALID_MESSAGES, detail)


def _check_completions_body(line_no: int, body: dict[str, Any]) -> None:
    _require_model(line_no, body)
    _require_field(line_no, body, "prompt", Rule.MISSING_PROMPT, "completions")


def _check_embeddings_body(line_no: int, body: dict[str, Any]) -> None:
    _require_model(line_no, body)
    _require_field(line_no, body, "input", Rule.MISSING_INPUT, "embeddings")


def _check_responses_body(line_no: int, body: dict[str, Any]) -> None:
    _require_model(line_no, body)
    # The Responses API may take its input from a stored prompt template instead of `input`.
    if body.get("prompt") is None:
        _require_field(line_no, body, "input", Rule.MISSING_INPUT, "responses (without a prompt template)")


def _check_moderations_body(line_no: int, body: dict[str, Any]) -> None:
    # The moderations API has a default model, so only a malformed one is refused.
    _require_model(line_no, body, optional=True)
    _require_field(line_no, body, "input", Rule.MISSING_INPUT, "moderations")


# The endpoints OpenAI's batch API accepts, each with what its request body needs.
BATCH_BODY_CHECKS: dict[str, Callable[[int, dict[str, Any]], None]] = {
    "/v1/chat/completions": _check_chat_body,
    "/v1/completions": _check_completions_body,
    "/v1/embeddings": _check_embeddings_body,
    "/v1/responses": _check_responses_body,
    "/v1/moderations": _check_moderations_body,
}


def _check_custom_id(line_no: int, record: dict[str, Any]) -> str:
    custom_id = record.get("custom_id")
    if custom_id is None or custom_id == "":
        detail = 'custom_id is missing; give each line a unique string id, e.g. "request-1"'
        raise _fail(line_no, Rule.MISSING_CUSTOM_ID, detail)
    if not isinstance(custom_id, str):
        raise _fail(line_no, Rule.INVALID_CUSTOM_ID, f"custom_id must be a string, found {_describe(custom_id)}")
    return custom_id


def _check_method(line_no: int, record: dict[str, Any]) -> None:
    method = record.get("method")
    if method != "POST":
        found = "it is missing" if method is None else f"found {_describe(method)}"
        raise _fail(line_no, Rule.INVALID_METHOD, f'method must be "POST"; {found}')


def _check_url(line_no: int, record: dict[str, Any]) -> str:
    url = record.get("url")
    if isinstance(url, str) and url in BATCH_BODY_CHECKS:
        return url
    found = "it is missing" if url is None else f"found {_describe(url)}"
    if isinstance(url, str) and "/v1" + url in BATCH_BODY_CHECKS:
        detail = f'url must start with /v1: did you mean "/v1{url}"?'
    else:
        detail = f"url must be one of {', '.join(BATCH_BODY_CHECKS)}; {found}"
    raise _fail(line_no, Rule.INVALID_URL, detail)


def _check_body(line_no: int, record: dict[str, Any]) -> dict[str, Any]:
    body = record.get("body")
    if body is None:
        raise _fail(line_no, Rule.MISSING_BODY, "body is missing; it holds the request, e.g. model and messages")
    if not isinstance(body, dict):
        raise _fail(line_no, Rule.INVALID_BODY, f"body must be a JSON object, found {_describe(body)}")
    return body


class BatchRules:
    """An OpenAI Batch input line: `{"custom_id", "method": "POST", "url", "body"}`, one endpoint per file."""

    def __init__(self) -> None:
        self._seen = _SeenIds()
        self._url: str | None = None
        self._url_line = 0

    def check(self, line_no: int, record: object) -> None:
        line = _require_object(line_no, record)
        custom_id = _check_custom_id(line_no, line)
        first_line = self._seen.add(custom_id, line_no)
        if first_line is not None:
            detail = f"custom_id {_quote(custom_id)} repeats line {first_line}; each line needs a unique custom_id"
            raise _fail(line_no, Rule.DUPLICATE_CUSTOM_ID, detail)
        _check_method(line_no, line)
        url = self._check_same_url(line_no, _check_url(line_no, line))
        BATCH_BODY_CHECKS[url](line_no, _check_body(line_no, line))

    def _check_same_url(self, line_no: int, url: str) -> str:
        # A batch is created against one endpoint; OpenAI fails every line whose url differs from it.
        if self._url is None:
            self._url, self._url_line = url, line_no
        elif url != self._url:
            detail = f'url "{url}" differs from "{self._url}" on line {self._url_line}; a batch targets one endpoint'
            raise _fail(line_no, Rule.URL_MISMATCH, detail)
        return url


# `function` is the legacy function-calling role, still accepted by OpenAI's chat fine-tuning.
FINE_TUNE_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_SHAPES_EXPECTED = (
    'chat {"messages": [...]}, preference {"input": {"messages": [...]}, "preferred_output": [...], '
    '"non_preferred_output": [...]}, or legacy {"prompt": "...", "completion": "..."}'
)


def _check_message(line_no: int, label: str, where: str, message: object) -> str:
    """Check one chat message; return its role."""
    if not isinstance(message, dict):
        raise _fail(line_no, Rule.INVALID_MESSAGES, f"{label}: {where} must be an object, found {_describe(message)}")
    role = message.get("role")
    if role not in FINE_TUNE_ROLES:
        found = "it is missing" if role is None else f"found {_describe(role)}"
        detail = f"{label}: {where}.role must be one of {', '.join(FINE_TUNE_ROLES)}; {found}"
        raise _fail(line_no, Rule.INVALID_ROLE, detail)
    content = message.get("content")
    calls_tools = role == "assistant" and bool(message.get("tool_calls") or message.get("function_call"))
    if not isinstance(content, str | list) and not (content is None and calls_tools):
        detail = (
            f"{label}: {where}.content must be a string or an array of content parts, found {_describe(content)} "
            "(null only on an assistant message with tool_calls)"
        )
        raise _fail(line_no, Rule.INVALID_CONTENT, detail)
    weight = message.get("weight")
    if weight is not None and (role != "assistant" or weight not in (0, 1) or isinstance(weight, bool)):
        detail = f"{label}: {where}.weight is allowed only on assistant messages, as 0 or 1; found {_describe(weight)}"
        raise _fail(line_no, Rule.INVALID_WEIGHT, detail)
    return str(role)


def _message_list(line_no: int, label: str, where: str, value: object, rule: Rule) -> list[object]:
    if not isinstance(value, list) or not value:
        detail = f"{label}: {where} must be a non-empty array of messages, found {_describe(value)}"
        raise _fail(line_no, rule, detail)
    return value


def _check_chat_example(line_no: int, example: dict[str, Any]) -> None:
    label = "chat example"
    messages = _message_list(line_no, label, "messages", example.get("messages"), Rule.INVALID_MESSAGES)
    roles = [_check_message(line_no, label, f"messages[{i}]", message) for i, message in enumerate(messages)]
    if "assistant" not in roles:
        detail = f"{label}: messages has no assistant message; the model learns from the assistant's replies"
        raise _fail(line_no, Rule.MISSING_ASSISTANT_MESSAGE, detail)


def _check_preference_example(line_no: int, example: dict[str, Any]) -> None:
    label = "preference (DPO) example"
    prompt = example.get("input")
    if not isinstance(prompt, dict):
        detail = f'{label}: input must be an object holding "messages", found {_describe(prompt)}'
        raise _fail(line_no, Rule.INVALID_PREFERENCE, detail)
    messages = _message_list(line_no, label, "input.messages", prompt.get("messages"), Rule.INVALID_PREFERENCE)
    for index, message in enumerate(messages):
        _check_message(line_no, label, f"input.messages[{index}]", message)
    for field in ("preferred_output", "non_preferred_output"):
        outputs = _message_list(line_no, label, field, example.get(field), Rule.INVALID_PREFERENCE)
        for index, message in enumerate(outputs):
            role = _check_message(line_no, label, f"{field}[{index}]", message)
            if role != "assistant":
                detail = f'{label}: {field}[{index}] must be an assistant message, found role "{role}"'
                raise _fail(line_no, Rule.INVALID_PREFERENCE, detail)


def _check_prompt_completion_example(line_no: int, example: dict[str, Any]) -> None:
    for field in ("prompt", "completion"):
        value = example.get(field)
        if not isinstance(value, str):
            detail = f"prompt/completion example: {field} must be a string, found {_describe(value)}"
            raise _fail(line_no, Rule.INVALID_PROMPT_COMPLETION, detail)


# Shape name → (keys that reveal it, check). Looked up in order, so `messages` wins over stray legacy keys.
FINE_TUNE_SHAPES: dict[str, tuple[tuple[str, ...], Callable[[int, dict[str, Any]], None]]] = {
    "chat": (("messages",), _check_chat_example),
    "preference": (("input", "preferred_output", "non_preferred_output"), _check_preference_example),
    "prompt/completion": (("prompt", "completion"), _check_prompt_completion_example),
}


class FineTuneRules:
    """OpenAI fine-tuning examples: chat (supervised), preference (DPO), or legacy prompt/completion; one per file."""

    def __init__(self) -> None:
        self._shape: str | None = None
        self._shape_line = 0

    def check(self, line_no: int, record: object) -> None:
        example = _require_object(line_no, record)
        shape = next(
            (name for name, (keys, _) in FINE_TUNE_SHAPES.items() if not example.keys().isdisjoint(keys)), None
        )
        if shape is None:
            keys = ", ".join(_quote(key, 40) for key in list(example)[:5]) or "none"
            detail = f"not a fine-tuning example (keys: {keys}); expected {_SHAPES_EXPECTED}"
            raise _fail(line_no, Rule.INVALID_EXAMPLE, detail)
        self._check_same_shape(line_no, shape)
        FINE_TUNE_SHAPES[shape][1](line_no, example)

    def _check_same_shape(self, line_no: int, shape: str) -> None:
        # A job trains one method on one model family, so the whole file must use one example format.
        if self._shape is None:
            self._shape, self._shape_line = shape, line_no
        elif shape != self._shape:
            detail = f"a {shape} example after a {self._shape} one on line {self._shape_line}; use one format per file"
            raise _fail(line_no, Rule.MIXED_FORMATS, detail)


RULES_BY_PURPOSE: dict[str, Callable[[], LineRules]] = {"batch": BatchRules, "fine-tune": FineTuneRules}


def validator_for(purpose: str, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> JsonlValidator | None:
    """A fresh validator for `purpose`, or None when that purpose has no line rules (e.g. `assistants`)."""
    make_rules = RULES_BY_PURPOSE.get(purpose)
    return None if make_rules is None else JsonlValidator(make_rules(), max_line_bytes)
