"""OpenAI requests ↔ Bedrock InvokeModel native bodies, one entry per model family, for batch inference.

A Bedrock batch job (CreateModelInvocationJob) runs one model, and hands each record's `modelInput` to it as that
model's InvokeModel body; its output line carries the model's native answer. So a batch needs, per model family,
the request conversion and the way back. The families Portico converts:

- Anthropic Claude (`anthropic.claude*`): Anthropic Messages (`bedrock_anthropic`).
- Amazon Nova text models (`amazon.nova-micro|lite|pro|premier*`): Nova's `messages-v1` body, Converse-shaped, so
  built from `chat_to_converse` with Nova's inference-parameter names; its answer is Converse-shaped too.
- Meta Llama 3.x (`meta.llama3*`): one prompt string in Llama 3's chat template, text only.
- Amazon Titan text embeddings (`amazon.titan-embed-text*`): `{"inputText"}`, one text per record.

The family is chosen by the model id's prefix (after an inference profile's geography prefix or an ARN's path), the
first match winning; a model of any other family cannot be converted and is refused when the batch is created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from providers.translate import openai_request as req
from providers.translate import openai_response as res
from providers.translate.bedrock_anthropic import anthropic_to_chat, chat_to_anthropic
from providers.translate.bedrock_embeddings import base_model_id, embedding_requests, embedding_response
from providers.translate.bedrock_request import chat_to_converse
from providers.translate.bedrock_response import converse_to_chat
from providers.translate.openai_request import JsonObject

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
LLAMA_DEFAULT_MAX_GEN_LEN = 2048

# (native answer, *, model, completion_id, created) -> OpenAI response body
ResponseReader = Callable[..., JsonObject]


@dataclass(frozen=True)
class InvokeFamily:
    name: str
    # The OpenAI endpoint whose requests this family converts.
    endpoint: str
    request: Callable[[JsonObject], JsonObject]
    response: ResponseReader


def _nova_request(request: JsonObject) -> JsonObject:
    converse = chat_to_converse(request)
    body: JsonObject = {"schemaVersion": "messages-v1", "messages": converse["messages"]}
    if converse.get("system"):
        body["system"] = converse["system"]
    config = converse.get("inferenceConfig", {})
    # Nova's native body names two of the Converse inference parameters differently.
    names = {"maxTokens": "max_new_tokens", "topP": "top_p", "temperature": "temperature"}
    inference = {names.get(key, key): value for key, value in config.items()}
    if inference:
        body["inferenceConfig"] = inference
    if converse.get("toolConfig"):
        body["toolConfig"] = converse["toolConfig"]
    return body


_LLAMA_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _llama_request(request: JsonObject) -> JsonObject:
    if req.function_tools(request):
        raise req.fail("Llama models on Bedrock take no tools through InvokeModel.", "tools")
    prompt = ["<|begin_of_text|>"]
    for index, message in enumerate(req.messages(request)):
        param = f"messages[{index}]"
        role = _LLAMA_ROLES.get(str(message.get("role")))
        if role is None:
            raise req.fail(f"Llama models on Bedrock take {', '.join(_LLAMA_ROLES)} messages only.", f"{param}.role")
        text = req.text_only(message, param, "Llama on Bedrock")
        prompt.append(f"<|start_header_id|>{role}<|end_header_id|>\n\n{text}<|eot_id|>")
    prompt.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    body: JsonObject = {"prompt": "".join(prompt), "max_gen_len": req.max_tokens(request) or LLAMA_DEFAULT_MAX_GEN_LEN}
    for key in ("temperature", "top_p"):
        value = req.number(request, key)
        if value is not None:
            body[key] = value
    return body


def _llama_response(output: JsonObject, *, model: str, completion_id: str, created: int) -> JsonObject:
    reason = "length" if output.get("stop_reason") == "length" else "stop"
    choice = res.choice(0, str(output.get("generation") or ""), [], reason)
    usage = res.usage(int(output.get("prompt_token_count") or 0), int(output.get("generation_token_count") or 0))
    return res.completion(completion_id=completion_id, created=created, model=model, choices=[choice], usage=usage)


def _titan_embedding_request(request: JsonObject) -> JsonObject:
    bodies = embedding_requests(request)
    if len(bodies) != 1:
        raise req.fail("A Bedrock batch record embeds one text: send 'input' as a single string.", "input")
    return bodies[0]


def _titan_embedding_response(output: JsonObject, *, model: str, completion_id: str, created: int) -> JsonObject:
    return embedding_response(model, [output])


_ANTHROPIC = InvokeFamily("Anthropic Claude", CHAT, chat_to_anthropic, anthropic_to_chat)
_NOVA = InvokeFamily("Amazon Nova", CHAT, _nova_request, converse_to_chat)
_LLAMA = InvokeFamily("Meta Llama 3", CHAT, _llama_request, _llama_response)
_TITAN_EMBED = InvokeFamily(
    "Amazon Titan text embeddings", EMBEDDINGS, _titan_embedding_request, _titan_embedding_response
)

# Model id prefix → family; the first prefix the base model id starts with wins.
INVOKE_FAMILIES: dict[str, InvokeFamily] = {
    "anthropic.claude": _ANTHROPIC,
    "amazon.nova-micro": _NOVA,
    "amazon.nova-lite": _NOVA,
    "amazon.nova-pro": _NOVA,
    "amazon.nova-premier": _NOVA,
    "meta.llama3": _LLAMA,
    "amazon.titan-embed-text": _TITAN_EMBED,
}


def invoke_family(model: str) -> InvokeFamily | None:
    model_id = base_model_id(model)
    return next((family for prefix, family in INVOKE_FAMILIES.items() if model_id.startswith(prefix)), None)


def convertible_prefixes() -> str:
    return ", ".join(f"{prefix}*" for prefix in INVOKE_FAMILIES)
