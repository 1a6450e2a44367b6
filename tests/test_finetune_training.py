"""Training data for fine-tuning: model families, methods, line conversion per provider, streaming, hyperparameters.

The converted output is checked twice: against the exact lines the vendors document (unit cases), and through the
simulators' own dataset and hyperparameter validators, which were written to the vendors' formats independently.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from finetune.training import (
    TrainingDataError,
    check_method,
    convert_file,
    converter_for,
    family_of,
    hyperparameters_for,
)
from finetune.training.bedrock_lines import FORMATS
from finetune.training.hyperparameters import BEDROCK_FAMILIES
from finetune.training.models import TRAINABLE_METHODS, TUNABLE
from portico.blob.local import LocalBlobStore
from providers.simulators import bedrock_training_data, openai_tuning_data, vertex_tuning
from providers.simulators.s3_access import S3Uri

SYSTEM: dict[str, Any] = {"role": "system", "content": "Answer briefly."}
USER = {"role": "user", "content": "What is the capital of France?"}
ASSISTANT = {"role": "assistant", "content": "Paris."}
CHAT: dict[str, Any] = {"messages": [SYSTEM, USER, ASSISTANT]}
MULTI_TURN: dict[str, Any] = {
    "messages": [SYSTEM, USER, ASSISTANT, {"role": "user", "content": "And Italy?"}, ASSISTANT | {"content": "Rome."}]
}
PREFERENCE: dict[str, Any] = {
    "input": {"messages": [USER]},
    "preferred_output": [ASSISTANT],
    "non_preferred_output": [{"role": "assistant", "content": "London."}],
}
LEGACY: dict[str, Any] = {"prompt": "2+2=", "completion": "4"}
S3_IMAGE = {"type": "image_url", "image_url": {"url": "s3://media/cats/tabby.JPG"}}
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
DATA_IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
CALLING = {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]}
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}]
TOOL_CHAT: dict[str, Any] = {
    "messages": [
        USER,
        CALLING,
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "assistant", "content": "Sunny in Paris.", "weight": 1},
    ],
    "tools": TOOLS,
}


def convert(adapter: str, model: str, example: dict[str, Any], method: str = "supervised") -> dict[str, Any]:
    return converter_for(adapter, family_of(adapter, model), method).convert(7, example)


def refusal(adapter: str, model: str, example: dict[str, Any], method: str = "supervised") -> TrainingDataError:
    with pytest.raises(TrainingDataError) as caught:
        convert(adapter, model, example, method)
    error = caught.value
    assert (error.line, error.param) == (7, "training_file") and error.message.startswith("line 7: ")
    return error


# -- models and methods ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("adapter", "model", "family"),
    [
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "ft:gpt-4o-2024-08-06:acme:support:abc123", "gpt-4o"),
        ("openai", "gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("openai", "gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("bedrock", "amazon.nova-lite-v1:0:300k", "nova"),
        (
            "bedrock",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0:200k",
            "anthropic",
        ),
        ("bedrock", "amazon.titan-text-express-v1", "titan-text"),
        ("bedrock", "meta.llama3-1-8b-instruct-v1:0:128k", "llama"),
        ("bedrock", "meta.llama3-2-11b-instruct-v1:0", "llama-vision"),
        ("vertex", "gemini-2.5-flash-lite", "gemini"),
        ("vertex", "publishers/google/models/gemini-2.0-flash-001", "gemini"),
    ],
)
def test_family_of_tunable_models(adapter: str, model: str, family: str) -> None:
    assert family_of(adapter, model) == family


@pytest.mark.parametrize(
    ("adapter", "model"),
    [
        ("openai", "gpt-4o"),
        ("openai", "o3-mini"),
        ("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        ("vertex", "gemini-1.0-pro"),
        ("groq", "llama3-8b"),
    ],
)
def test_family_of_refuses_untunable_models_naming_the_tunable_ones(adapter: str, model: str) -> None:
    with pytest.raises(TrainingDataError) as caught:
        family_of(adapter, model)
    assert (caught.value.param, caught.value.code, caught.value.line) == ("model", "model_not_tunable", None)
    assert caught.value.status == 400
    if adapter == "bedrock":
        assert "amazon.nova-micro-v1:0" in caught.value.message


def test_methods_per_family() -> None:
    check_method("openai", "gpt-4o-mini", "dpo")
    check_method("bedrock", "nova", "supervised")
    for adapter, family, method in [
        ("openai", "gpt-3.5-turbo", "dpo"),
        ("bedrock", "nova", "dpo"),
        ("vertex", "gemini", "dpo"),
        ("openai", "gpt-4o", "reinforcement"),
    ]:
        with pytest.raises(TrainingDataError) as caught:
            converter_for(adapter, family, method)
        assert (caught.value.param, caught.value.code) == ("method", "method_not_supported")


def test_every_tunable_family_has_a_converter_and_hyperparameters() -> None:
    for adapter, rows in TUNABLE.items():
        for _, family in rows:
            assert (adapter, family) in TRAINABLE_METHODS
            converter_for(adapter, family, "supervised")
    assert set(FORMATS) == set(BEDROCK_FAMILIES) == {family for _, family in TUNABLE["bedrock"]}


# -- OpenAI ------------------------------------------------------------------------------------------------------


def test_openai_passes_examples_through_and_checks_the_shape_against_the_method() -> None:
    assert convert("openai", "gpt-4o-mini-2024-07-18", TOOL_CHAT) == TOOL_CHAT
    assert convert("openai", "gpt-4o-mini-2024-07-18", PREFERENCE, "dpo") == PREFERENCE
    assert "a chat example in a dpo file" in refusal("openai", "gpt-4o-2024-08-06", CHAT, "dpo").message
    assert "prompt/completion" in refusal("openai", "gpt-4o-2024-08-06", LEGACY).message


# -- Bedrock -----------------------------------------------------------------------------------------------------


def test_nova_conversation_schema_with_s3_images_and_merged_turns() -> None:
    example = {
        "messages": [
            SYSTEM,
            {"role": "user", "content": [{"type": "text", "text": "What cat?"}, S3_IMAGE]},
            {"role": "user", "content": "Be exact."},
            ASSISTANT | {"weight": 1},
        ]
    }
    assert convert("bedrock", "amazon.nova-pro-v1:0", example) == {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "Answer briefly."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "What cat?"},
                    {"image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://media/cats/tabby.JPG"}}}},
                    {"text": "Be exact."},
                ],
            },
            {"role": "assistant", "content": [{"text": "Paris."}]},
        ],
    }
    assert len(convert("bedrock", "amazon.nova-micro-v1:0", MULTI_TURN)["messages"]) == 4


@pytest.mark.parametrize(
    ("example", "reason"),
    [
        ({"messages": [{"role": "user", "content": [DATA_IMAGE]}, ASSISTANT]}, "from S3 only"),
        (TOOL_CHAT, "tool definitions"),
        ({"messages": [USER, CALLING, ASSISTANT]}, "tool calls"),
        ({"messages": [USER, ASSISTANT | {"weight": 0}, USER, ASSISTANT]}, "weight 0"),
        ({"messages": [USER, ASSISTANT, USER]}, "end with the assistant"),
        ({"messages": [ASSISTANT]}, "start with a user message"),
        ({"messages": [USER, ASSISTANT | {"content": "  "}]}, "messages[1] has no text"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}, ASSISTANT]},
            "'input_audio' part",
        ),
        (PREFERENCE, "a preference example in a supervised file"),
    ],
)
def test_nova_refuses_what_it_cannot_train_on_with_the_line_and_reason(example: dict[str, Any], reason: str) -> None:
    assert reason in refusal("bedrock", "amazon.nova-lite-v1:0", example).message


def test_claude_messages_are_strings_and_text_only() -> None:
    assert convert("bedrock", "anthropic.claude-3-haiku-20240307-v1:0:200k", MULTI_TURN) == {
        "system": "Answer briefly.",
        "messages": [
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And Italy?"},
            {"role": "assistant", "content": "Rome."},
        ],
    }
    image_chat = {"messages": [{"role": "user", "content": [S3_IMAGE]}, ASSISTANT]}
    assert "text only" in refusal("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", image_chat).message


def test_titan_and_llama_take_one_prompt_completion_pair() -> None:
    expected = {"prompt": "Answer briefly.\n\nWhat is the capital of France?", "completion": "Paris."}
    assert convert("bedrock", "amazon.titan-text-lite-v1", CHAT) == expected
    assert convert("bedrock", "meta.llama3-1-70b-instruct-v1:0", LEGACY | {"extra": 1}) == LEGACY
    assert "this example has 4 turns" in refusal("bedrock", "meta.llama3-2-3b-instruct-v1:0", MULTI_TURN).message


def test_bedrock_output_passes_the_simulators_dataset_and_hyperparameter_checks() -> None:
    uri = S3Uri.parse("s3://staging/train.jsonl", "trainingDataConfig.s3Uri")
    examples: list[dict[str, Any]] = [
        CHAT,
        MULTI_TURN,
        LEGACY,
        {"messages": [{"role": "user", "content": [S3_IMAGE]}, ASSISTANT]},
    ]
    hyper = {"n_epochs": 2, "batch_size": "auto", "learning_rate_multiplier": 1.5}
    # Which examples each family converts (the others are refused, as the unit cases show).
    converted = {"nova": 4, "llama-vision": 4, "anthropic": 3, "titan-text": 2, "llama": 2}
    for model, _ in TUNABLE["bedrock"]:
        family = family_of("bedrock", model)
        converter = converter_for("bedrock", family, "supervised")
        checked = 0
        for number, example in enumerate(examples, start=1):
            try:
                line = converter.convert(number, example)
            except TrainingDataError:
                continue
            bedrock_training_data.check_record(json.dumps(line).encode(), uri, number)
            checked += 1
        assert checked == converted[family], model
        body = {"hyperParameters": hyperparameters_for("bedrock", family, hyper)}
        assert bedrock_training_data.hyper_parameters(body)["epochCount"] == 2
    # The simulator's check is not a rubber stamp: OpenAI's own preference line fails it.
    with pytest.raises(bedrock_training_data.BadData):
        bedrock_training_data.check_record(json.dumps(PREFERENCE).encode(), uri, 1)


# -- Vertex ------------------------------------------------------------------------------------------------------


def test_gemini_contents_with_system_instruction() -> None:
    assert convert("vertex", "gemini-2.5-flash", CHAT) == {
        "systemInstruction": {"parts": [{"text": "Answer briefly."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "What is the capital of France?"}]},
            {"role": "model", "parts": [{"text": "Paris."}]},
        ],
    }
    assert convert("vertex", "gemini-2.5-flash", LEGACY)["contents"][1] == {"role": "model", "parts": [{"text": "4"}]}


def test_gemini_tool_calls_become_function_parts_without_live_signatures() -> None:
    line = convert("vertex", "gemini-2.5-pro", TOOL_CHAT)
    assert line["tools"] == [{"functionDeclarations": [{"name": "weather"}]}]
    assert [turn["role"] for turn in line["contents"]] == ["user", "model", "user", "model"]
    assert line["contents"][1]["parts"] == [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}]
    response = line["contents"][2]["parts"][0]["functionResponse"]
    assert response == {"name": "weather", "response": {"content": "sunny"}}


def test_gemini_media_from_cloud_storage_only() -> None:
    def image(url: str) -> dict[str, Any]:
        return {
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}, ASSISTANT]
        }

    parts = convert("vertex", "gemini-2.5-flash", image("gs://media/cat.png"))["contents"][0]["parts"]
    assert parts == [{"fileData": {"mimeType": "image/png", "fileUri": "gs://media/cat.png"}}]
    assert "Cloud Storage" in refusal("vertex", "gemini-2.5-flash", image("data:image/png;base64,AAAA")).message
    assert "not a gs:// URI" in refusal("vertex", "gemini-2.5-flash", image("https://example.com/cat.png")).message
    weighted = {"messages": [USER, ASSISTANT | {"weight": 0}, USER, ASSISTANT]}
    assert "weight 0" in refusal("vertex", "gemini-2.5-flash", weighted).message
    orphan = {"messages": [USER, {"role": "tool", "tool_call_id": "nope", "content": "x"}, ASSISTANT]}
    assert "tool_call_id" in refusal("vertex", "gemini-2.5-flash", orphan).message


def test_vertex_output_passes_the_simulators_example_and_hyperparameter_checks() -> None:
    converter = converter_for("vertex", "gemini", "supervised")
    examples: list[dict[str, Any]] = [CHAT, MULTI_TURN, LEGACY, TOOL_CHAT]
    for number, example in enumerate(examples, start=1):
        line = json.dumps(converter.convert(number, example))
        assert vertex_tuning._example_texts(line, f"line {number}")
    hyper = hyperparameters_for("vertex", "gemini", {"n_epochs": 4, "learning_rate_multiplier": 0.5, "adapter_size": 8})
    assert vertex_tuning._epochs(hyper["epochCount"]) == 4
    assert hyper["adapterSize"] in vertex_tuning.ADAPTER_SIZES and hyper["learningRateMultiplier"] == 0.5
    with pytest.raises(vertex_tuning.BadDataset):  # the simulator refuses OpenAI's format as it stands
        vertex_tuning._example_texts(json.dumps(CHAT), "line 1")


def test_openai_output_passes_the_simulators_dataset_check() -> None:
    def dataset(example: dict[str, Any], method: str) -> bytes:
        converter = converter_for("openai", "gpt-4o-mini", method)
        return b"".join(json.dumps(converter.convert(n, example)).encode() + b"\n" for n in range(1, 11))

    assert openai_tuning_data.read_dataset(dataset(TOOL_CHAT, "supervised"), "supervised").examples == 10
    assert openai_tuning_data.read_dataset(dataset(PREFERENCE, "dpo"), "dpo").examples == 10
    given = hyperparameters_for("openai", "gpt-4o-mini", {"n_epochs": 3, "batch_size": "auto", "beta": 0.1})
    assert openai_tuning_data.check_hyperparameters(given)["n_epochs"] == 3


# -- hyperparameters ---------------------------------------------------------------------------------------------


def test_hyperparameters_per_bedrock_family() -> None:
    auto = {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}
    assert hyperparameters_for("bedrock", "nova", auto) == {}
    given = {"n_epochs": 3, "learning_rate_multiplier": 3}
    assert hyperparameters_for("bedrock", "nova", given) == {"epochCount": "3", "learningRate": "0.00003"}
    claude = hyperparameters_for("bedrock", "anthropic", {"batch_size": 32, "learning_rate_multiplier": 0.5})
    assert claude == {"batchSize": "32", "learningRateMultiplier": "0.5"}
    assert hyperparameters_for("bedrock", "llama", {"learning_rate_multiplier": 0.1}) == {"learningRate": "0.00001"}


@pytest.mark.parametrize(
    ("adapter", "family", "given", "param", "says"),
    [
        ("bedrock", "nova", {"batch_size": 8}, "batch_size", "chooses batch_size itself"),
        ("bedrock", "anthropic", {"batch_size": 2}, "batch_size", "from 4 to 256"),
        ("bedrock", "anthropic", {"learning_rate_multiplier": 3}, "learning_rate_multiplier", "0.1 to 2"),
        ("bedrock", "nova", {"n_epochs": 6}, "n_epochs", "from 1 to 5"),
        ("bedrock", "nova", {"beta": 0.1}, "beta", "unknown hyperparameter"),
        ("vertex", "gemini", {"batch_size": 4}, "batch_size", "chooses batch_size itself"),
        ("vertex", "gemini", {"adapter_size": 3}, "adapter_size", "1, 2, 4, 8, 16, 32"),
        ("openai", "gpt-4o", {"n_epochs": True}, "n_epochs", "'auto' or an integer"),
        ("openai", "gpt-4o", {"learning_rate_multiplier": 0}, "learning_rate_multiplier", "'auto' or a number"),
        ("openai", "gpt-4o", {"seed": 1}, "seed", "known: n_epochs"),
    ],
)
def test_bad_hyperparameters_name_the_field(
    adapter: str, family: str, given: dict[str, Any], param: str, says: str
) -> None:
    with pytest.raises(TrainingDataError) as caught:
        hyperparameters_for(adapter, family, given)
    assert caught.value.param == f"hyperparameters.{param}" and says in caught.value.message


# -- streaming ---------------------------------------------------------------------------------------------------


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


async def _examples(count: int, bad_at: int | None = None) -> AsyncIterator[bytes]:
    batch = []
    for number in range(1, count + 1):
        example = {"messages": [SYSTEM, USER | {"content": f"Question {number}: " + "word " * 150}, ASSISTANT]}
        if number == bad_at:
            example["messages"].insert(2, {"role": "tool", "tool_call_id": "x", "content": "r"})
        batch.append(json.dumps(example).encode() + (b"\r\n" if number % 2 else b"\n"))
        if number % 1000 == 0 or number == count:
            yield b"".join(batch)
            batch = []


async def test_a_large_file_streams_through_in_bounded_memory(blobs: LocalBlobStore) -> None:
    size = await blobs.write("in.jsonl", _examples(25_000))
    assert size > 20_000_000
    converter = converter_for("bedrock", "nova", "supervised")
    received: list[int] = []

    async def upload(chunks: AsyncIterator[bytes]) -> int:
        async def counted() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                received.append(len(chunk))
                yield chunk

        return await blobs.write("out.jsonl", counted())

    tracemalloc.start()
    try:
        summary = await convert_file(blobs, "in.jsonl", converter, upload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000, peak  # a few 1 MiB chunks, never the ~20 MB file
    assert (summary.lines, summary.bytes) == (25_000, sum(received)) and len(received) > 10
    assert blobs.path_for("out.jsonl").stat().st_size == summary.bytes
    with blobs.path_for("out.jsonl").open("rb") as out:
        lines = out.readlines()
    assert len(lines) == 25_000 and json.loads(lines[-1])["schemaVersion"] == "bedrock-conversation-2024"


async def test_a_bad_line_mid_file_names_its_line_and_leaves_nothing_staged(blobs: LocalBlobStore) -> None:
    await blobs.write("in.jsonl", _examples(5_000, bad_at=4_321))
    converter = converter_for("vertex", "gemini", "supervised")
    with pytest.raises(TrainingDataError) as caught:
        await convert_file(
            blobs,
            "in.jsonl",
            converter,
            lambda chunks: blobs.write("out.jsonl", chunks),
            param="validation_file",
            chunk_bytes=64 * 1024,
        )
    assert (caught.value.line, caught.value.param) == (4_321, "validation_file")
    assert not await blobs.exists("out.jsonl")


async def _bytes(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 5):  # cut mid-line and between \r and \n
        yield data[start : start + 5]


@pytest.mark.parametrize(
    ("data", "line", "code"),
    [
        (b"\n  \n", None, "empty_file"),
        (json.dumps(CHAT).encode() + b"\r\n\n{not json}\n", 3, "invalid_json"),
        (b"\n[1, 2]\n", 2, "not_an_object"),
        (b"\n" + json.dumps(CHAT).encode() * 3, 2, "line_too_long"),
    ],
)
async def test_file_level_refusals(blobs: LocalBlobStore, data: bytes, line: int | None, code: str) -> None:
    await blobs.write("in.jsonl", _bytes(data))
    converter = converter_for("openai", "gpt-4o-mini", "supervised")
    with pytest.raises(TrainingDataError) as caught:
        await convert_file(blobs, "in.jsonl", converter, lambda c: blobs.write("o", c), max_line_bytes=len(data) // 2)
    assert (caught.value.line, caught.value.code, caught.value.param) == (line, code, "training_file")


async def test_an_upload_that_stops_early_is_not_a_summary(blobs: LocalBlobStore) -> None:
    await blobs.write("in.jsonl", _examples(3_000))

    async def first_chunk_only(chunks: AsyncIterator[bytes]) -> None:
        await anext(chunks)

    converter = converter_for("openai", "gpt-4o-mini", "supervised")
    with pytest.raises(RuntimeError, match="stopped reading"):
        await convert_file(blobs, "in.jsonl", converter, first_chunk_only, chunk_bytes=1024)
