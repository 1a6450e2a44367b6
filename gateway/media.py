"""Images and audio: generations, edits and variations; speech, transcriptions and translations.

Relayed to OpenAI-compatible upstreams as they are: JSON bodies with the target's `override_params` applied,
multipart forms byte for byte (`gateway.forms`). The answer keeps the upstream's content type, so speech audio,
text transcripts (`response_format: text`, `srt`, `vtt`) and streamed events come back as the upstream sent them.
Bedrock and Vertex offer none of these through Portico: they answer 400 naming the capability and the provider.

REST only: their bodies are files, or answers are bytes, that do not fit a tool call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.forms import FormBody, FormCall, read_form
from gateway.inference import InferenceCall, checked, read_inference
from gateway.observe import Observation
from gateway.relay import DATA_SCOPE, Relayed, posting, relay
from portico.context import CallContext
from portico.registry import operation
from portico.streaming import StreamedContent
from providers.adapters.base import Forward


class ImageGenerationBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt: str = Field(min_length=1)


class SpeechBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str = Field(min_length=1)
    voice: str | dict[str, Any]


async def _json(ctx: CallContext, call: InferenceCall, operation: str, capability: str, path: str) -> Relayed:
    return await relay(ctx, call.route, call.observation(operation), capability, posting(path, call), None)


async def _form(ctx: CallContext, call: FormCall, operation: str, capability: str, path: str) -> Relayed:
    form = call.form
    request = Forward("POST", path, raw=form)
    try:
        result = await relay(
            ctx, call.route, Observation(operation, call.trace, None), capability, lambda _: request, form
        )
    except BaseException:
        await form.aclose()
        raise
    if isinstance(result, StreamedContent):
        # The spool outlives the handler only while a streamed answer (a transcript's events) is still running.
        result.chunks = _closing(result.chunks, form)
    else:
        await form.aclose()
    return result


async def _closing(chunks: AsyncIterator[bytes], form: FormBody) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        await form.aclose()


@operation(
    name="images_generate",
    summary="Generate images from a prompt (OpenAI format) at the provider chosen by virtual key or config.",
    toolset="media",
    input_model=InferenceCall,
    output_model=None,
    scope=DATA_SCOPE,
    method="POST",
    path="/images/generations",
    mcp=False,
    rest_reader=read_inference,
)
async def images_generate(ctx: CallContext, call: InferenceCall) -> Relayed:
    checked(ImageGenerationBody, call.body)
    return await _json(ctx, call, "images_generate", "image_generation", "/images/generations")


@operation(
    name="images_edit",
    summary="Edit images (multipart: image, prompt, optional mask) at the provider chosen by virtual key or config.",
    toolset="media",
    input_model=FormCall,
    output_model=None,
    scope=DATA_SCOPE,
    method="POST",
    path="/images/edits",
    mcp=False,
    rest_reader=read_form,
)
async def images_edit(ctx: CallContext, call: FormCall) -> Relayed:
    return await _form(ctx, call, "images_edit", "image_edits", "/images/edits")


@operation(
    name="images_create_variation",
    summary="Create variations of an image (multipart: image) at the provider chosen by virtual key or config.",
    toolset="media",
    input_model=FormCall,
    output_model=None,
    scope=DATA_SCOPE,
    method="POST",
    path="/images/variations",
    mcp=False,
    rest_reader=read_form,
)
async def images_create_variation(ctx: CallContext, call: FormCall) -> Relayed:
    return await _form(ctx, call, "images_create_variation", "image_variations", "/images/variations")


@operation(
    name="audio_speech",
    summary="Turn text into speech; the audio streams back in the upstream's format (mp3, wav, opus, …).",
    toolset="media",
    input_model=InferenceCall,
    output_model=None,
    scope=DATA_SCOPE,
    method="POST",
    path="/audio/speech",
    mcp=False,
    rest_reader=read_inference,
)
async def audio_speech(ctx: CallContext, call: InferenceCall) -> Relayed:
    checked(SpeechBody, call.body)
    return await _json(ctx, call, "audio_speech", "speech", "/audio/speech")


@operation(
    name="audio_transcribe",
    summary="Transcribe audio (multipart: file, model); JSON or text per response_format, as the upstream answers.",
    toolset="media",
    input_model=FormCall,
    output_model=None,
    scope=DATA_SCOPE,
    method="POST",
    path="/audio/transcriptions",
    mcp=False,
    rest_reader=read_form,
)
async def audio_transcribe(ctx: CallContext, call: FormCall) -> Relayed:
    return await _form(ctx, call, "audio_transcribe", "transcriptions", "/audio/transcriptions")


@operation(
    name="audio_translate",
    summary="Translate audio into English text (multipart: file, model); JSON or text per response_format.",
    toolset="media",
    input_model=FormCall,
    output_model=None,
    scope=DATA_SCOPE,
    method="POST",
    path="/audio/translations",
    mcp=False,
    rest_reader=read_form,
)
async def audio_translate(ctx: CallContext, call: FormCall) -> Relayed:
    return await _form(ctx, call, "audio_translate", "translations", "/audio/translations")
