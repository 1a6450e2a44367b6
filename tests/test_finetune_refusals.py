"""Bad fine-tuning requests answer 4xx naming the field, and leave nothing behind: no Portico job, no provider job
(the simulators' create routes are never called)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
import pytest

from tests.support.finetune import BUCKET, GEMINI, GPT, NOVA, ROLE, TuningStack, example, tuning, upload

__all__ = ["tuning"]

CREATES = {
    "openai": "fine_tuning.jobs.create",
    "bedrock": "CreateModelCustomizationJob",
    "vertex": "tuningJobs.create",
}


def provider_creates(stack: TuningStack) -> dict[str, int]:
    return {name: stack.stats(name)["by_route"].get(route, 0) for name, route in CREATES.items()}


def refused(stack: TuningStack, create: Callable[[], Any]) -> openai.BadRequestError:
    before_jobs = len(stack.client().fine_tuning.jobs.list(limit=100).data)
    before_creates = provider_creates(stack)
    with pytest.raises(openai.BadRequestError) as caught:
        create()
    assert len(stack.client().fine_tuning.jobs.list(limit=100).data) == before_jobs, "no job was stored"
    assert provider_creates(stack) == before_creates, "no provider job was created"
    return caught.value


def error_of(error: openai.BadRequestError) -> dict[str, Any]:
    body = error.body if isinstance(error.body, dict) else {}
    return dict(body.get("error", body))


def test_a_line_the_target_cannot_take_is_named_by_number(tuning: TuningStack) -> None:
    client = tuning.client("bedrock-staged")
    lines = [example(n) for n in range(12)]
    # Valid for OpenAI (so the upload accepts it), but Bedrock's formats carry no tool calls.
    call = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": json.dumps({"a": 1})}}
    lines[2]["messages"][2] = {"role": "assistant", "content": None, "tool_calls": [call]}
    lines[2]["messages"].append({"role": "tool", "tool_call_id": "call_1", "content": "2"})
    lines[2]["messages"].append({"role": "assistant", "content": "It is 2."})
    source = upload(client, lines)
    error = refused(tuning, lambda: client.fine_tuning.jobs.create(model=NOVA, training_file=source))
    detail = error_of(error)
    assert detail["param"] == "training_file" and detail["message"].startswith("line 3:"), detail


def test_a_file_uploaded_for_another_purpose_is_refused(tuning: TuningStack) -> None:
    client = tuning.client("openai")
    source = upload(client, [example(n) for n in range(12)], purpose="assistants")
    error = refused(tuning, lambda: client.fine_tuning.jobs.create(model=GPT, training_file=source))
    assert error_of(error)["code"] == "invalid_file_purpose" and error_of(error)["param"] == "training_file"


@pytest.mark.parametrize(
    ("key", "model"),
    [("openai", "gpt-4-turbo"), ("bedrock-staged", "amazon.titan-embed-text-v2:0"), ("vertex", "gemini-1.0-pro")],
)
def test_a_base_model_the_provider_cannot_tune_is_refused(tuning: TuningStack, key: str, model: str) -> None:
    client = tuning.client(key)
    source = upload(client, [example(n) for n in range(12)])
    error = refused(tuning, lambda: client.fine_tuning.jobs.create(model=model, training_file=source))
    assert error_of(error)["code"] == "model_not_tunable" and error_of(error)["param"] == "model"


def test_bedrock_without_a_role_is_refused(tuning: TuningStack) -> None:
    client = tuning.client()
    source = upload(client, [example(n) for n in range(12)])
    options = {"x-portkey-virtual-key": tuning.keys["bedrock"], "x-portkey-aws-s3-bucket": BUCKET}
    error = refused(
        tuning,
        lambda: client.fine_tuning.jobs.create(
            model=NOVA, training_file=source, extra_body={"portkey_options": options}
        ),
    )
    assert error_of(error)["param"] == "role_arn" and "role" in error_of(error)["message"]
    # With the role it goes through (the same request is otherwise fine).
    job = client.fine_tuning.jobs.create(
        model=NOVA, training_file=source, extra_body={"portkey_options": options, "role_arn": ROLE}
    )
    assert job.status == "validating_files"
    client.fine_tuning.jobs.cancel(job.id)


def test_vertex_dpo_is_refused_as_a_method_it_does_not_train(tuning: TuningStack) -> None:
    client = tuning.client("vertex")
    source = upload(client, [example(n) for n in range(12)])
    error = refused(
        tuning,
        lambda: client.fine_tuning.jobs.create(
            model=GEMINI, training_file=source, method={"type": "dpo", "dpo": {"hyperparameters": {}}}
        ),
    )
    assert error_of(error)["param"] == "method"
