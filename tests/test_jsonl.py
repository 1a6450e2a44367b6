"""The streaming JSONL validator: one case per rule, and the chunking, line-ending and line-numbering contract."""

from __future__ import annotations

import json
from typing import Any

import pytest

from files.jsonl import (
    RULES_BY_PURPOSE,
    BatchRules,
    JsonlLineError,
    JsonlValidator,
    Rule,
    validator_for,
)

USER_MESSAGE = {"role": "user", "content": "Hi"}
CHAT_BODY = {"model": "gpt-4o-mini", "messages": [USER_MESSAGE]}


def dumps(value: object) -> str:
    # Keep non-ASCII as UTF-8 bytes (json.dumps would escape it), so chunk splits can land inside characters.
    return json.dumps(value, ensure_ascii=False)


def request(custom_id: Any = "r-1", url: str = "/v1/chat/completions", body: Any = None, **fields: Any) -> str:
    line = {"custom_id": custom_id, "method": "POST", "url": url, "body": CHAT_BODY if body is None else body}
    return dumps({**line, **fields})


def without(key: str, line: str) -> str:
    record = json.loads(line)
    del record[key]
    return dumps(record)


def chat_example(*messages: dict[str, Any], **fields: Any) -> str:
    default = ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"})
    return dumps({"messages": list(messages or default), **fields})


def dpo_example(**overrides: Any) -> str:
    example = {
        "input": {"messages": [{"role": "user", "content": "Hi"}]},
        "preferred_output": [{"role": "assistant", "content": "Hello!"}],
        "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
    }
    return dumps({**example, **overrides})


def run(purpose: str, data: bytes, chunk_size: int | None = None) -> int:
    validator = validator_for(purpose)
    assert validator is not None
    size = chunk_size or max(len(data), 1)
    for start in range(0, len(data), size):
        validator.feed(data[start : start + size])
    return validator.finish()


def refusal(purpose: str, data: bytes, chunk_size: int | None = None) -> JsonlLineError:
    with pytest.raises(JsonlLineError) as caught:
        run(purpose, data, chunk_size)
    return caught.value


def jsonl(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


# (purpose, file, rule, line): every rule, refused at the line that breaks it, after a valid line where possible.
RULE_CASES = [
    ("batch", b"", Rule.EMPTY_FILE, 1),
    ("batch", b"{}" + b" " * 100 + b"\n", Rule.LINE_TOO_LONG, 1),
    ("batch", jsonl(request()) + b'{"custom_id": "caf\xe9"}\n', Rule.INVALID_ENCODING, 2),
    ("batch", b"\xef\xbb\xbf" + jsonl(request()), Rule.INVALID_ENCODING, 1),
    ("batch", jsonl(request(), '{"custom_id": "r-2",'), Rule.INVALID_JSON, 2),
    ("batch", jsonl(request(), "[1, 2]"), Rule.NOT_AN_OBJECT, 2),
    ("batch", jsonl(request(), without("custom_id", request())), Rule.MISSING_CUSTOM_ID, 2),
    ("batch", jsonl(request(custom_id="")), Rule.MISSING_CUSTOM_ID, 1),
    ("batch", jsonl(request(custom_id=7)), Rule.INVALID_CUSTOM_ID, 1),
    ("batch", jsonl(request("a"), request("b"), request("a")), Rule.DUPLICATE_CUSTOM_ID, 3),
    ("batch", jsonl(request(), request("r-2", method="GET")), Rule.INVALID_METHOD, 2),
    ("batch", jsonl(without("method", request())), Rule.INVALID_METHOD, 1),
    ("batch", jsonl(request(url="/v1/images/generations")), Rule.INVALID_URL, 1),
    ("batch", jsonl(without("url", request())), Rule.INVALID_URL, 1),
    ("batch", jsonl(request(), request("r-2", "/v1/embeddings", {"model": "e", "input": "x"})), Rule.URL_MISMATCH, 2),
    ("batch", jsonl(without("body", request())), Rule.MISSING_BODY, 1),
    ("batch", jsonl(request(body=["model"])), Rule.INVALID_BODY, 1),
    ("batch", jsonl(request(body={"messages": CHAT_BODY["messages"]})), Rule.MISSING_MODEL, 1),
    ("batch", jsonl(request(body={**CHAT_BODY, "model": ""})), Rule.MISSING_MODEL, 1),
    ("batch", jsonl(request(body={**CHAT_BODY, "model": 4})), Rule.INVALID_MODEL, 1),
    ("batch", jsonl(request(body={"model": "m"})), Rule.MISSING_MESSAGES, 1),
    ("batch", jsonl(request(body={"model": "m", "messages": []})), Rule.INVALID_MESSAGES, 1),
    ("batch", jsonl(request(body={"model": "m", "messages": [{"content": "no role"}]})), Rule.INVALID_MESSAGES, 1),
    ("batch", jsonl(request(url="/v1/embeddings", body={"model": "e"})), Rule.MISSING_INPUT, 1),
    ("batch", jsonl(request(url="/v1/responses", body={"model": "m"})), Rule.MISSING_INPUT, 1),
    ("batch", jsonl(request(url="/v1/moderations", body={"model": "m"})), Rule.MISSING_INPUT, 1),
    ("batch", jsonl(request(url="/v1/completions", body={"model": "m"})), Rule.MISSING_PROMPT, 1),
    ("fine-tune", jsonl(chat_example(), '{"text": "hello"}'), Rule.INVALID_EXAMPLE, 2),
    ("fine-tune", jsonl(chat_example(), '{"prompt": "a", "completion": "b"}'), Rule.MIXED_FORMATS, 2),
    ("fine-tune", jsonl(chat_example(), '{"messages": []}'), Rule.INVALID_MESSAGES, 2),
    ("fine-tune", jsonl('{"messages": ["hi"]}'), Rule.INVALID_MESSAGES, 1),
    ("fine-tune", jsonl(chat_example({"role": "bot", "content": "x"})), Rule.INVALID_ROLE, 1),
    ("fine-tune", jsonl(chat_example({"role": "user", "content": 3})), Rule.INVALID_CONTENT, 1),
    ("fine-tune", jsonl(chat_example({"role": "assistant", "content": None})), Rule.INVALID_CONTENT, 1),
    ("fine-tune", jsonl(chat_example({"role": "assistant", "content": "x", "weight": 2})), Rule.INVALID_WEIGHT, 1),
    ("fine-tune", jsonl(chat_example({"role": "user", "content": "x", "weight": 1})), Rule.INVALID_WEIGHT, 1),
    ("fine-tune", jsonl(chat_example({"role": "user", "content": "x"})), Rule.MISSING_ASSISTANT_MESSAGE, 1),
    ("fine-tune", jsonl(dpo_example(), dpo_example(input="Hi")), Rule.INVALID_PREFERENCE, 2),
    ("fine-tune", jsonl(dpo_example(preferred_output=[])), Rule.INVALID_PREFERENCE, 1),
    ("fine-tune", jsonl(dpo_example(non_preferred_output=[USER_MESSAGE])), Rule.INVALID_PREFERENCE, 1),
    ("fine-tune", jsonl('{"prompt": "a", "completion": 1}'), Rule.INVALID_PROMPT_COMPLETION, 1),
    ("fine-tune", jsonl('{"prompt": "a"}'), Rule.INVALID_PROMPT_COMPLETION, 1),
    ("fine-tune", jsonl("null"), Rule.NOT_AN_OBJECT, 1),
]


@pytest.mark.parametrize(("purpose", "data", "rule", "line"), RULE_CASES)
def test_each_rule_names_its_line(purpose: str, data: bytes, rule: Rule, line: int) -> None:
    validator = validator_for(purpose, max_line_bytes=64) if rule is Rule.LINE_TOO_LONG else validator_for(purpose)
    assert validator is not None
    with pytest.raises(JsonlLineError) as caught:
        validator.feed(data)
        validator.finish()
    error = caught.value
    assert (error.rule, error.line) == (rule, line)
    assert str(error) == error.message
    assert error.message.startswith(f"line {line}: ")


def test_every_rule_has_a_case() -> None:
    assert {case[2] for case in RULE_CASES} == set(Rule)


def test_duplicate_names_both_lines_and_the_fix() -> None:
    error = refusal("batch", jsonl(request("req-1"), request("req-2"), request("req-1")))
    assert error.message == 'line 3: custom_id "req-1" repeats line 1; each line needs a unique custom_id'


def test_duplicate_found_after_the_id_table_has_grown() -> None:
    lines = [request(f"r-{n}") for n in range(1, 5001)]
    error = refusal("batch", jsonl(*lines, request("r-1234")), chunk_size=4096)
    assert (error.rule, error.line) == (Rule.DUPLICATE_CUSTOM_ID, 5001)
    assert "repeats line 1234;" in error.message


def test_unprefixed_url_suggests_the_v1_spelling() -> None:
    error = refusal("batch", jsonl(request(url="/chat/completions")))
    assert error.rule == Rule.INVALID_URL
    assert 'did you mean "/v1/chat/completions"?' in error.message


def test_invalid_example_lists_the_expected_shapes() -> None:
    error = refusal("fine-tune", jsonl('{"text": "hello"}'))
    assert all(shape in error.message for shape in ('"messages"', '"preferred_output"', '"prompt"', '"completion"'))


def test_nan_and_deep_nesting_are_invalid_json() -> None:
    assert refusal("batch", jsonl('{"custom_id": NaN}')).rule == Rule.INVALID_JSON
    assert refusal("batch", b"[" * 200_000 + b"\n").rule == Rule.INVALID_JSON


def test_valid_batch_lines_for_every_endpoint() -> None:
    bodies = {
        "/v1/chat/completions": CHAT_BODY,
        "/v1/completions": {"model": "m", "prompt": "Once"},
        "/v1/embeddings": {"model": "e", "input": ["a", "b"]},
        "/v1/responses": {"model": "m", "input": "Hi"},
        "/v1/moderations": {"input": "text"},  # the moderations model is optional
    }
    for url, body in bodies.items():
        assert run("batch", jsonl(request("a", url, body), request("b", url, body))) == 2
    # A Responses request may draw its input from a stored prompt template.
    assert run("batch", jsonl(request(url="/v1/responses", body={"model": "m", "prompt": {"id": "pmpt_1"}}))) == 1


def test_valid_fine_tune_shapes() -> None:
    tool_call = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]}
    tool_reply = {"role": "tool", "content": "42", "tool_call_id": "c1"}
    final = {"role": "assistant", "content": [{"type": "text", "text": "42"}], "weight": 1}
    chat = chat_example({"role": "developer", "content": "Be brief"}, tool_call, tool_reply, final)
    assert run("fine-tune", jsonl(chat, chat_example())) == 2
    assert run("fine-tune", jsonl(dpo_example(), dpo_example())) == 2
    assert run("fine-tune", jsonl('{"prompt": "a", "completion": "b"}')) == 1


def valid_batch(lines: int) -> bytes:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Grüße, 世界 — 🚀 naïve café"}]}
    return jsonl(*(request(f"req-{n}", body=body) for n in range(lines)))


def test_one_byte_at_a_time() -> None:
    data = valid_batch(50)
    assert run("batch", data, chunk_size=1) == 50


@pytest.mark.parametrize("char", ["ü", "世", "🚀"])
def test_every_split_inside_a_multibyte_character(char: str) -> None:
    data = valid_batch(3)
    start = data.index(char.encode())
    for cut in range(start + 1, start + len(char.encode())):
        validator = validator_for("batch")
        assert validator is not None
        validator.feed(data[:cut])
        validator.feed(data[cut:])
        assert validator.finish() == 3


def test_errors_report_the_same_line_whatever_the_chunking() -> None:
    data = valid_batch(4) + b"\n  \n" + jsonl(request("req-1"))
    for size in (1, 2, 3, 7, 64, 1000, len(data)):
        error = refusal("batch", data, chunk_size=size)
        assert (error.rule, error.line) == (Rule.DUPLICATE_CUSTOM_ID, 7)


def test_crlf_line_endings_even_when_split_between_cr_and_lf() -> None:
    data = valid_batch(3).replace(b"\n", b"\r\n")
    cut = data.index(b"\r\n") + 1
    validator = validator_for("batch")
    assert validator is not None
    validator.feed(data[:cut])
    validator.feed(data[cut:])
    assert validator.finish() == 3
    bad = data + b'{"custom_id": 1}\r\n'
    assert (refusal("batch", bad).rule, refusal("batch", bad).line) == (Rule.INVALID_CUSTOM_ID, 4)


def test_last_line_without_newline_is_checked() -> None:
    assert run("batch", valid_batch(2).rstrip(b"\n")) == 2
    error = refusal("batch", valid_batch(2) + b'{"custom_id": "x"')
    assert (error.rule, error.line) == (Rule.INVALID_JSON, 3)


def test_blank_lines_are_skipped_but_counted() -> None:
    data = b"\n \t\r\n" + jsonl(request("a")) + b"\n\n" + jsonl(request("b"))
    assert run("batch", data) == 2
    error = refusal("batch", data + b"\n" + jsonl(request("a")))
    assert error.message == 'line 8: custom_id "a" repeats line 3; each line needs a unique custom_id'
    assert refusal("batch", b"\n\r\n   \n").rule == Rule.EMPTY_FILE


def test_an_endless_line_is_refused_while_it_streams() -> None:
    validator = JsonlValidator(BatchRules(), max_line_bytes=1000)
    validator.feed(jsonl(request()))
    validator.feed(b"x" * 1000)
    with pytest.raises(JsonlLineError) as caught:
        validator.feed(b"x")  # no newline yet: refused before the line ends
    assert (caught.value.rule, caught.value.line) == (Rule.LINE_TOO_LONG, 2)


def test_two_hundred_thousand_lines_in_64_kib_chunks() -> None:
    data = valid_batch(200_000)
    assert run("batch", data, chunk_size=64 * 1024) == 200_000


def test_purposes_without_rules_get_no_validator_and_each_upload_fresh_rules() -> None:
    assert set(RULES_BY_PURPOSE) == {"batch", "fine-tune"}
    assert validator_for("assistants") is None
    assert validator_for("vision") is None
    # State (seen ids, the file's format) belongs to one upload: a second file may reuse the same ids.
    assert run("batch", jsonl(request("a"))) == run("batch", jsonl(request("a"))) == 1


def test_feed_after_finish_is_a_programming_error() -> None:
    validator = validator_for("batch")
    assert validator is not None
    validator.feed(jsonl(request()))
    assert validator.finish() == 1
    with pytest.raises(RuntimeError):
        validator.feed(b"{}\n")
