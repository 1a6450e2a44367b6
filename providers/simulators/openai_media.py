"""OpenAI's moderations, images and audio APIs, simulated with deterministic answers:

- moderations: an input is flagged (category `violence`) when its text contains "kill", in any case;
- images: solid-colour PNGs at the requested size, the colour taken from sha256 of the prompt (and, for edits and
  variations, the uploaded bytes), as `b64_json` or a `data:` URL; edits and variations echo the uploads' sizes in
  `revised_prompt`;
- speech: a WAV of a tone, 10 ms per input character, streamed in chunks (chunked transfer, as OpenAI sends it); the
  content type names the format asked for, but the bytes are always that WAV (pcm: its samples) since no encoders
  are at hand;
- transcriptions and translations: the text is "Transcribed N bytes" / "Translated N bytes", N the uploaded file's
  size, in every `response_format` (json, text, srt, vtt, verbose_json).
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from providers.simulators.behaviour import InvalidRequest
from providers.simulators.edge import Call, Handler, endpoint, require
from providers.simulators.openai import DIALECT

CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
MAX_SIDE = 2048
SAMPLE_RATE = 8000
SAMPLES_PER_CHARACTER = SAMPLE_RATE // 100
AUDIO_CHUNK = 4096
# response_format -> content type, as OpenAI labels speech.
AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
# A transcript "lasts" one second per this many uploaded bytes (16 kHz 8-bit mono, roughly).
BYTES_PER_SECOND = 16000


async def form_body(request: Request) -> dict[str, Any]:
    """A multipart form: text fields as strings, each file field as the list of its uploads' bytes."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("send this request as multipart/form-data")
    body: dict[str, Any] = {}
    try:
        async with request.form() as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    body.setdefault(name, []).append(await value.read())
                else:
                    body[name] = value
    except ClientDisconnect:
        raise InvalidRequest("the form ended before its last boundary (the client went away)") from None
    return body


def _uploads(body: dict[str, Any], prefix: str) -> list[bytes]:
    """Files under `prefix` (the SDK names several images `image[]`)."""
    return [
        data for name, value in body.items() if name.startswith(prefix) and isinstance(value, list) for data in value
    ]


async def moderations(call: Call) -> Response:
    value = call.body.get("input")
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        texts = list(value)
    elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        texts = [" ".join(str(part.get("text", "")) for part in value)]  # multimodal parts: one result
    else:
        raise InvalidRequest("'input' must be a string, an array of strings, or an array of input parts")
    results = [_moderation(text) for text in texts]
    model = call.model or "omni-moderation-latest"
    return JSONResponse({"id": f"modr-sim-{call.sequence}", "model": model, "results": results})


def _moderation(text: str) -> dict[str, Any]:
    flagged = "kill" in text.lower()
    categories = {name: flagged and name == "violence" for name in CATEGORIES}
    scores = {name: 0.9 if categories[name] else 0.0001 for name in CATEGORIES}
    applied = {name: ["text"] for name in CATEGORIES}
    return {
        "flagged": flagged,
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied,
    }


def png(width: int, height: int, rgb: bytes) -> bytes:
    """A solid-colour RGB PNG (it compresses to a few KB at any size)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = (b"\x00" + rgb * width) * height
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _size(value: object) -> tuple[int, int]:
    if value in (None, "auto"):
        return 1024, 1024
    width, _, height = str(value).partition("x")
    if not (width.isdigit() and height.isdigit()) or not (0 < int(width) <= MAX_SIDE and 0 < int(height) <= MAX_SIDE):
        raise InvalidRequest(f"'size' must be 'WIDTHxHEIGHT' with sides up to {MAX_SIDE}, or 'auto'")
    return int(width), int(height)


def _count(value: object) -> int:
    text = "1" if value is None else str(value)  # a form sends "2", JSON 2
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= 10:
        raise InvalidRequest("'n' must be an integer between 1 and 10")
    return int(text)


def _images(call: Call, seed: bytes, revised_prompt: str) -> Response:
    width, height = _size(call.body.get("size"))
    url_default = not str(call.body.get("model") or "").startswith("gpt-image")
    as_url = call.body.get("response_format", "url" if url_default else "b64_json") == "url"
    data = []
    for index in range(_count(call.body.get("n"))):
        colour = hashlib.sha256(seed + f":{index}".encode()).digest()[:3]
        encoded = base64.b64encode(png(width, height, colour)).decode()
        image = {"url": f"data:image/png;base64,{encoded}"} if as_url else {"b64_json": encoded}
        data.append({**image, "revised_prompt": revised_prompt})
    return JSONResponse({"created": int(time.time()), "data": data})


async def generate_images(call: Call) -> Response:
    prompt = require(call.body, "prompt", str)
    return _images(call, prompt.encode(), prompt)


async def edit_images(call: Call) -> Response:
    prompt = require(call.body, "prompt", str)
    images, masks = _uploads(call.body, "image"), _uploads(call.body, "mask")
    if not images:
        raise InvalidRequest("'image' is required: upload at least one image file")
    sizes = ", ".join(str(len(image)) for image in images)
    masked = f" with a mask of {len(masks[0])} bytes" if masks else ""
    return _images(call, b"".join(images) + prompt.encode(), f"Edited images of {sizes} bytes{masked}: {prompt}")


async def image_variations(call: Call) -> Response:
    images = _uploads(call.body, "image")
    if len(images) != 1:
        raise InvalidRequest("'image' is required: upload exactly one image file")
    return _images(call, images[0], f"Variation of an image of {len(images[0])} bytes")


def wav(text: str) -> bytes:
    """16-bit mono WAV: a square-ish tone whose period depends on the text, 10 ms per character."""
    period = 8 + hashlib.sha256(text.encode()).digest()[0] % 32
    cycle = struct.pack(f"<{period}h", *(8000 if i < period // 2 else -8000 for i in range(period)))
    samples = (cycle * (len(text) * SAMPLES_PER_CHARACTER // period + 1))[: len(text) * SAMPLES_PER_CHARACTER * 2]
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        *(b"RIFF", 36 + len(samples), b"WAVE", b"fmt ", 16, 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16),
        *(b"data", len(samples)),
    )
    return header + samples


async def speech(call: Call) -> Response:
    text = require(call.body, "input", str)
    require(call.body, "voice", (str, dict))
    fmt = call.body.get("response_format") or "mp3"
    if fmt not in AUDIO_TYPES:
        raise InvalidRequest(f"'response_format' must be one of {sorted(AUDIO_TYPES)}")
    if call.body.get("stream_format") == "sse":
        raise InvalidRequest("stream_format 'sse' is not simulated; use 'audio'")
    audio = wav(text)
    audio = audio[44:] if fmt == "pcm" else audio

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(audio), AUDIO_CHUNK):
            yield audio[start : start + AUDIO_CHUNK]

    return StreamingResponse(chunks(), media_type=AUDIO_TYPES[fmt])


def _timestamp(seconds: float, separator: str) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}{separator}{round(seconds % 1 * 1000):03d}"


def _cue(text: str, duration: float, separator: str) -> str:
    return f"{_timestamp(0, separator)} --> {_timestamp(duration, separator)}\n{text}\n\n"


def _transcript(call: Call, task: str, verb: str) -> Response:
    files = _uploads(call.body, "file")
    if len(files) != 1:
        raise InvalidRequest("'file' is required: upload exactly one audio file")
    require(call.body, "model", str)
    text = f"{verb} {len(files[0])} bytes"
    duration = round(len(files[0]) / BYTES_PER_SECOND, 3)
    fmt = call.body.get("response_format") or "json"
    texts = {
        "text": text + "\n",
        "srt": "1\n" + _cue(text, duration, ","),
        "vtt": "WEBVTT\n\n" + _cue(text, duration, "."),
    }
    if fmt in texts:
        return PlainTextResponse(texts[fmt])
    if fmt == "json":
        return JSONResponse({"text": text, "usage": {"type": "duration", "seconds": max(1, round(duration))}})
    if fmt == "verbose_json":
        segment = {"id": 0, "seek": 0, "start": 0.0, "end": duration, "text": text, "tokens": [], "temperature": 0.0}
        body = {"task": task, "language": "english", "duration": duration, "text": text, "segments": [segment]}
        return JSONResponse(body)
    raise InvalidRequest("'response_format' must be one of json, text, srt, vtt, verbose_json")


async def transcriptions(call: Call) -> Response:
    return _transcript(call, "transcribe", "Transcribed")


async def translations(call: Call) -> Response:
    return _transcript(call, "translate", "Translated")


def routes() -> list[BaseRoute]:
    def post(path: str, name: str, handler: Handler, form: bool = False) -> Route:
        return Route(path, endpoint(DIALECT, name, handler, read=form_body if form else None), methods=["POST"])

    return [
        post("/v1/moderations", "moderations", moderations),
        post("/v1/images/generations", "images.generate", generate_images),
        post("/v1/images/edits", "images.edit", edit_images, form=True),
        post("/v1/images/variations", "images.variations", image_variations, form=True),
        post("/v1/audio/speech", "audio.speech", speech),
        post("/v1/audio/transcriptions", "audio.transcriptions", transcriptions, form=True),
        post("/v1/audio/translations", "audio.translations", translations, form=True),
    ]
