"""The per-family InvokeModel bodies a Bedrock batch record carries, and the way back: the families and details the
simulator does not tell apart (Llama's prompt template, Anthropic's block spelling, refusals naming the field)."""

from __future__ import annotations

import json

import pytest

from providers.translate.bedrock_invoke import invoke_family
from providers.translate.errors import TranslationError

PNG = "data:image/png;base64,iVBORw0KGgo="


def test_each_model_id_form_finds_its_family_and_others_find_none() -> None:
    names = {
        "anthropic.claude-3-haiku-20240307-v1:0": "Anthropic Claude",
        "us.anthropic.claude-3-5-sonnet-20240620-v1:0": "Anthropic Claude",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.amazon.nova-pro-v1:0": "Amazon Nova",
        "meta.llama3-1-8b-instruct-v1:0": "Meta Llama 3",
        "amazon.titan-embed-text-v2:0": "Amazon Titan text embeddings",
    }
    for model, family in names.items():
        found = invoke_family(model)
        assert found is not None and found.name == family, model
    for model in ("cohere.command-r-v1:0", "amazon.nova-canvas-v1:0", "meta.llama2-13b-chat-v1", "mistral.mistral-7b"):
        assert invoke_family(model) is None, model


def test_anthropic_bodies_spell_blocks_tools_and_images_as_messages_api() -> None:
    family = invoke_family("anthropic.claude-3-haiku-20240307-v1:0")
    assert family is not None
    tool = {"type": "function", "function": {"name": "lookup", "description": "Find", "parameters": {"type": "object"}}}
    body = family.request(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": PNG}},
                    ],
                },
            ],
            "tools": [tool],
            "tool_choice": "required",
            "temperature": 0.2,
        }
    )
    assert body["anthropic_version"] == "bedrock-2023-05-31" and body["max_tokens"] == 4096
    assert body["system"] == [{"type": "text", "text": "Be brief."}]
    image = body["messages"][0]["content"][1]
    assert image == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    assert body["tools"] == [{"name": "lookup", "input_schema": {"type": "object"}, "description": "Find"}]
    assert body["tool_choice"] == {"type": "any"} and body["temperature"] == 0.2

    answer = {
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 7, "output_tokens": 3, "cache_read_input_tokens": 2},
    }
    chat = family.response(answer, model="m", completion_id="chatcmpl-1", created=1)
    choice = chat["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and json.loads(
        choice["message"]["tool_calls"][0]["function"]["arguments"]
    ) == {"q": "x"}
    assert chat["usage"]["prompt_tokens"] == 9 and chat["usage"]["prompt_tokens_details"] == {"cached_tokens": 2}


def test_llama_bodies_use_the_llama3_template_and_refuse_what_it_cannot_take() -> None:
    family = invoke_family("meta.llama3-1-8b-instruct-v1:0")
    assert family is not None
    body = family.request(
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "max_tokens": 9}
    )
    assert body == {
        "prompt": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "max_gen_len": 9,
    }
    chat = family.response(
        {"generation": "Hello", "prompt_token_count": 5, "generation_token_count": 1, "stop_reason": "length"},
        model="m",
        completion_id="c",
        created=1,
    )
    assert chat["choices"][0]["message"]["content"] == "Hello" and chat["choices"][0]["finish_reason"] == "length"
    with pytest.raises(TranslationError) as refused:
        family.request({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}]})
    assert refused.value.param == "messages[0].content[0].type"


def test_titan_records_embed_one_text() -> None:
    family = invoke_family("amazon.titan-embed-text-v2:0")
    assert family is not None
    model = "amazon.titan-embed-text-v2:0"
    assert family.request({"model": model, "input": "one", "dimensions": 256}) == {
        "inputText": "one",
        "dimensions": 256,
    }
    with pytest.raises(TranslationError) as refused:
        family.request({"model": model, "input": ["one", "two"]})
    assert refused.value.param == "input"
