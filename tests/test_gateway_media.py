"""Completions, moderations, images, audio and models through Portico with the official openai SDK, against the
OpenAI simulator (and Bedrock's, for what Bedrock does not offer).

What comes back through Portico is compared with what the simulator answers directly to the same request, so the
relay is shown to pass bodies (JSON, multipart, audio bytes) through unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import openai
import pytest

from gateway.forms import FormBody
from portico.errors import PayloadTooLarge
from providers.simulators.app import running_simulator
from providers.simulators.openai_models import FINE_TUNED
from tests.conftest import STACKS, stack_settings
from tests.support.gateway import Gateway, create_vk, logged_rows
from tests.support.server import run_portico

CAP = 256 * 1024
BOUNDARY = "media-test-boundary"


@pytest.fixture(scope="module")
def gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with ExitStack() as stack:
        sims = {
            "openai": stack.enter_context(running_simulator("openai")),
            "bedrock": stack.enter_context(running_simulator("bedrock")),
            "down": stack.enter_context(running_simulator("openai", fail_rate=1.0, fail_status=503)),
        }
        settings = stack_settings(
            request,
            STACKS["sqlite-local"],
            tmp_path_factory.mktemp("media"),
            provider_endpoints={"openai": f"{sims['openai']}/v1", "bedrock": sims["bedrock"]},
            custom_host_allowlist=["127.0.0.1"],
            media_max_bytes=CAP,
        )
        portico = stack.enter_context(run_portico(settings))
        bedrock = {
            "name": "br",
            "provider": "bedrock",
            "awsAccessKeyId": "AKIDSIM",
            "awsSecretAccessKey": "secret",
            "awsRegion": "us-east-1",
        }
        keys = {
            "openai": create_vk(portico, {"name": "oa", "provider": "openai", "key": "sk-sim"}),
            "bedrock": create_vk(portico, bedrock),
            "down": create_vk(
                portico, {"name": "down", "provider": "openai", "key": "sk", "customHost": f"{sims['down']}/v1"}
            ),
        }
        yield Gateway(portico, keys, sims)


def routed(gateway: Gateway, key: str = "openai", **headers: str) -> openai.OpenAI:
    return gateway.client(**{"x-portkey-virtual-key": gateway.virtual_keys[key], **headers})


def direct(gateway: Gateway) -> openai.OpenAI:
    """The simulator itself, without Portico: the reference answer."""
    return openai.OpenAI(base_url=f"{gateway.simulators['openai']}/v1", api_key="sk-sim", max_retries=0)


def test_completions_plain_and_streamed(gateway: Gateway) -> None:
    client = routed(gateway)
    plain = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello to Portico")
    assert plain.object == "text_completion"
    assert plain.choices[0].text == "Simulated reply to: Say hello to Portico"
    assert plain.usage is not None and plain.usage.prompt_tokens == 4

    stream = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello to Portico", stream=True)
    chunks = list(stream)
    assert len(chunks) > 2, "streamed word by word"
    assert "".join(chunk.choices[0].text for chunk in chunks) == plain.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_moderations(gateway: Gateway) -> None:
    result = routed(gateway).moderations.create(input=["I will kill the process", "hello there"])
    assert [r.flagged for r in result.results] == [True, False]
    assert result.results[0].categories.violence is True
    assert result.model == "omni-moderation-latest"


def test_images_generate_equal_the_upstreams(gateway: Gateway) -> None:
    arguments: dict[str, Any] = {"prompt": "a lighthouse", "n": 2, "size": "64x64", "response_format": "b64_json"}
    through = routed(gateway).images.generate(**arguments)
    reference = direct(gateway).images.generate(**arguments)
    assert through.data is not None and reference.data is not None and len(through.data) == 2
    assert [image.b64_json for image in through.data] == [image.b64_json for image in reference.data]
    assert base64.b64decode(through.data[0].b64_json or "").startswith(b"\x89PNG")


# The SDK marks DALL·E 2 variations and audio translations deprecated; the spec (and OpenAI) still serve them.
SDK_DEPRECATED = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


@SDK_DEPRECATED
def test_images_edit_and_variation_forward_the_form(gateway: Gateway) -> None:
    client = routed(gateway)
    picture, mask = b"\x89PNG" + b"p" * 5000, b"\x89PNG" + b"m" * 300
    edited = client.images.edit(
        image=("in.png", picture, "image/png"), mask=("mask.png", mask, "image/png"), prompt="add a hat", size="32x32"
    )
    assert edited.data is not None
    assert edited.data[0].revised_prompt == "Edited images of 5004 bytes with a mask of 304 bytes: add a hat"
    reference = direct(gateway).images.edit(
        image=("in.png", picture, "image/png"), mask=("mask.png", mask, "image/png"), prompt="add a hat", size="32x32"
    )
    assert reference.data is not None and edited.data[0].url == reference.data[0].url

    varied = client.images.create_variation(image=("in.png", picture, "image/png"), n=3, size="16x16")
    assert varied.data is not None and len(varied.data) == 3
    assert varied.data[0].revised_prompt == "Variation of an image of 5004 bytes"


def test_speech_streams_the_upstreams_bytes_and_type(gateway: Gateway) -> None:
    arguments: dict[str, Any] = {"model": "tts-1", "voice": "alloy", "input": "Hello from the Portico gateway"}
    for response_format, content_type in (("wav", "audio/wav"), ("mp3", "audio/mpeg")):
        with routed(gateway).audio.speech.with_streaming_response.create(
            **arguments, response_format=response_format
        ) as through:
            assert through.headers["content-type"] == content_type
            audio = b"".join(through.iter_bytes())
        reference = direct(gateway).audio.speech.create(**arguments, response_format=response_format)
        assert audio == reference.content
    assert len(audio) == 44 + len(arguments["input"]) * 80 * 2, "10 ms of 16-bit 8 kHz audio per character"


@SDK_DEPRECATED
def test_transcription_and_translation(gateway: Gateway) -> None:
    client = routed(gateway)
    audio = b"RIFF" + b"a" * 20_000
    transcript = client.audio.transcriptions.create(model="whisper-1", file=("talk.wav", audio))
    assert transcript.text == "Transcribed 20004 bytes"
    as_text = client.audio.transcriptions.create(model="whisper-1", file=("talk.wav", audio), response_format="text")
    assert as_text.strip() == "Transcribed 20004 bytes"
    verbose = client.audio.translations.create(model="whisper-1", file=("t.wav", audio), response_format="verbose_json")
    assert verbose.text == "Translated 20004 bytes" and verbose.duration == pytest.approx(1.25)
    srt = client.audio.translations.create(model="whisper-1", file=("t.wav", audio), response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,250\nTranslated 20004 bytes")


def test_a_form_is_replayed_to_the_fallback_target(gateway: Gateway) -> None:
    """The first target reads the whole form and fails; the second gets it again, byte for byte, from the spool."""
    gateway.reset("down")
    gateway.reset("openai")
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [{"virtual_key": gateway.virtual_keys["down"]}, {"virtual_key": gateway.virtual_keys["openai"]}],
    }
    audio = bytes(range(256)) * 600  # 153,600 bytes: many chunks
    client = gateway.client(**{"x-portkey-config": json.dumps(config)})
    transcript = client.audio.transcriptions.create(model="whisper-1", file=("long.wav", audio))
    assert transcript.text == f"Transcribed {len(audio)} bytes"
    assert gateway.stats("down")["total"] == 1 and gateway.stats("openai")["total"] == 1


def test_calls_are_logged_with_the_model_of_a_form(gateway: Gateway) -> None:
    trace = f"media-{time.time_ns()}"
    client = routed(gateway, **{"x-portkey-trace-id": trace})
    client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"x" * 100))
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="logged") as speech:
        speech.read()
    rows = sorted(logged_rows(gateway, trace, 2), key=lambda row: str(row["operation"]))
    assert [(r["operation"], r["model"], r["status"], r["stream"]) for r in rows] == [
        ("audio_speech", "tts-1", 200, 1),
        ("audio_transcribe", "whisper-1", 200, 0),
    ]
    assert rows[0]["provider"] == "openai" and rows[1]["virtual_key"] == gateway.virtual_keys["openai"]


def test_models_routed_list_retrieve_delete(gateway: Gateway) -> None:
    client = routed(gateway)
    listed = client.models.list()
    ids = [model.id for model in listed.data]
    assert "gpt-4o-mini" in ids and FINE_TUNED in ids
    assert (listed.data[0].model_extra or {}).get("virtual_key") == gateway.virtual_keys["openai"]
    assert client.models.retrieve("gpt-4o-mini").owned_by == "portico-simulator"

    deleted = client.models.delete(FINE_TUNED)
    assert (deleted.id, deleted.deleted) == (FINE_TUNED, True)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(FINE_TUNED)
    with pytest.raises(openai.PermissionDeniedError):
        client.models.delete("gpt-4o")


def test_models_without_a_route_list_every_virtual_keys_models(gateway: Gateway) -> None:
    """What the openai SDK sends by default: only Authorization, no routing header."""
    client = gateway.client()
    models = client.models.list().data
    assert {(m.model_extra or {}).get("virtual_key") for m in models} == {gateway.virtual_keys["openai"]}
    assert "gpt-4o" in {m.id for m in models}
    assert client.models.retrieve("gpt-4o").model_extra == {
        "provider": "openai",
        "virtual_key": gateway.virtual_keys["openai"],
    }

    raw = httpx.get(
        f"{gateway.portico.api}/models",
        params={"limit": 2, "order": "desc"},
        headers={"authorization": f"Bearer {gateway.portico.admin_key}"},
    ).json()
    assert len(raw["data"]) == 2 and raw["total"] == len(models)
    assert raw["data"][0]["id"] == max(m.id for m in models)
    reasons = {entry["virtual_key"]: entry["reason"] for entry in raw["unavailable"]}
    assert "no model list" in reasons[gateway.virtual_keys["bedrock"]]
    assert "503" in reasons[gateway.virtual_keys["down"]]

    def narrowed(provider: str) -> httpx.Response:
        auth = {"authorization": f"Bearer {gateway.portico.admin_key}"}
        return httpx.get(f"{gateway.portico.api}/models", params={"provider": provider}, headers=auth)

    only_bedrock = narrowed("bedrock").json()
    assert only_bedrock["data"] == [] and [u["provider"] for u in only_bedrock["unavailable"]] == ["bedrock"]
    assert narrowed("nope").json()["error"]["param"] == "provider"

    with pytest.raises(openai.BadRequestError) as refused:
        client.models.delete("gpt-4o")
    assert "x-portkey-virtual-key" in str(refused.value)


def test_what_bedrock_does_not_offer_is_refused_by_name(gateway: Gateway) -> None:
    client = routed(gateway, "bedrock")
    cases = [
        (lambda: client.images.generate(prompt="x"), "image generation"),
        (lambda: client.moderations.create(input="x"), "moderations"),
        (lambda: client.models.list(), "model listing"),
        (lambda: client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"x")), "transcriptions"),
        (lambda: client.completions.create(model="m", prompt="x"), "completions"),
    ]
    for call, capability in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            call()
        message = refused.value.body["message"] if isinstance(refused.value.body, dict) else ""
        assert f"'bedrock' does not support {capability}" in message
    assert gateway.stats("bedrock")["total"] == 0


def form(size: int) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        ).encode()
        + b"z" * size
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def test_a_form_over_the_cap_answers_413(gateway: Gateway) -> None:
    gateway.reset("openai")
    url = f"{gateway.portico.api}/audio/transcriptions"
    headers = {
        "x-portkey-api-key": gateway.portico.admin_key,
        "x-portkey-virtual-key": gateway.virtual_keys["openai"],
        "content-type": f"multipart/form-data; boundary={BOUNDARY}",
    }
    declared = httpx.post(url, content=form(CAP), headers=headers)
    assert declared.status_code == 413 and declared.json()["error"]["param"] == "file"
    assert gateway.stats("openai")["total"] == 0, "refused on its Content-Length, before any upstream"

    def chunked() -> Iterator[bytes]:
        body = form(CAP)
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    streamed = httpx.post(url, content=chunked(), headers=headers)
    assert streamed.status_code == 413, streamed.text

    fits = httpx.post(url, content=form(CAP // 2), headers=headers)
    assert fits.status_code == 200 and fits.json()["text"] == f"Transcribed {CAP // 2} bytes"
    not_a_form = httpx.post(url, json={"model": "whisper-1"}, headers={**headers, "content-type": "application/json"})
    assert not_a_form.status_code == 400 and "multipart/form-data" in not_a_form.json()["error"]["message"]


async def test_an_abandoned_attempt_loses_no_bytes() -> None:
    """An attempt cancelled while it waits for the caller's next chunk (aiohttp abandons the upload when the
    upstream answers early) leaves that chunk to the next attempt, which replays everything before it."""
    parts = [bytes([n]) * 1000 for n in range(10)]
    arrived = asyncio.Event()

    async def slow_source() -> AsyncIterator[bytes]:
        for index, part in enumerate(parts):
            if index == 3:
                await arrived.wait()
            yield part

    body = FormBody(slow_source(), f"multipart/form-data; boundary={BOUNDARY}", None, 1_000_000)
    taken: list[bytes] = []
    three_taken = asyncio.Event()

    async def first_attempt() -> None:
        async for chunk in body.chunks():
            taken.append(chunk)
            if len(taken) == 3:
                three_taken.set()

    task = asyncio.create_task(first_attempt())
    await three_taken.wait()
    await asyncio.sleep(0.01)  # let it reach the wait for the fourth chunk
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    arrived.set()
    replayed = b"".join([chunk async for chunk in body.chunks()])
    await body.aclose()
    assert replayed == b"".join(parts)


async def test_the_cap_holds_on_every_attempt() -> None:
    async def source() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 400

    body = FormBody(source(), f"multipart/form-data; boundary={BOUNDARY}", None, 1000)
    for _ in range(2):
        with pytest.raises(PayloadTooLarge):
            async for _chunk in body.chunks():
                pass
    await body.aclose()


async def test_mcp_tools_take_the_route_as_arguments(gateway: Gateway) -> None:
    from tests.test_mcp import MODES, call_ok, connect, error_text

    vk = gateway.virtual_keys["openai"]
    for protocol in MODES:
        async with connect(gateway.portico, gateway.portico.admin_key, protocol) as client:
            verdict = await call_ok(client, "moderations_create", {"input": ["kill", "fine"], "virtual_key": vk})
            assert [result["flagged"] for result in verdict["results"]] == [True, False]

            listed = await call_ok(
                client, "operations_call", {"name": "models_list", "arguments": {"virtual_key": vk, "limit": 3}}
            )
            assert len(listed["data"]) == 3 and listed["total"] > 3
            assert {model["virtual_key"] for model in listed["data"]} == {vk}
            unrouted = await call_ok(client, "operations_call", {"name": "models_list", "arguments": {}})
            assert {entry["virtual_key"] for entry in unrouted["unavailable"]} == {
                gateway.virtual_keys["bedrock"],
                gateway.virtual_keys["down"],
            }

            refused = await client.call_tool(
                "operations_call",
                {"name": "models_list", "arguments": {"virtual_key": gateway.virtual_keys["bedrock"]}},
            )
            assert "'bedrock' does not support model listing" in error_text(refused)
