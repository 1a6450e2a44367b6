"""Bad uploads answer 4xx naming the field and the rule, and leave no row and no blob behind, on every stack."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from portico.settings import MIB
from tests.conftest import STACKS, stack_settings
from tests.support.inspect import count_rows, s3_open_multipart_uploads, stored_blob_keys
from tests.support.keys import create_workspace_key
from tests.support.server import RunningPortico, run_portico

CAP = 1 * MIB


@pytest.fixture(scope="module", params=list(STACKS))
def capped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPortico]:
    """Portico with a 1 MiB upload cap, so oversize is cheap to provoke."""
    stack = STACKS[request.param]
    settings = stack_settings(request, stack, tmp_path_factory.mktemp(f"capped-{stack.name}"), upload_max_bytes=CAP)
    with run_portico(settings) as running:
        yield running


@pytest.fixture(scope="module")
def key(capped: RunningPortico) -> str:
    return create_workspace_key(capped).key


@pytest.fixture
def nothing_left_behind(capped: RunningPortico) -> Iterator[None]:
    """Asserts after the test that it created no file row, no blob, and no dangling S3 multipart upload."""
    rows, blobs = count_rows(capped.settings, "files"), stored_blob_keys(capped.settings)
    yield
    assert count_rows(capped.settings, "files") == rows, "a refused upload left a row"
    assert stored_blob_keys(capped.settings) == blobs, "a refused upload left bytes in the blob store"
    if capped.settings.blob.backend == "s3":
        assert s3_open_multipart_uploads(capped.settings) == 0


def request_line(custom_id: str = "r1", **overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    }
    record.update(overrides)
    return record


def refused(capped: RunningPortico, key: str, name: str, content: bytes, purpose: str) -> openai.APIStatusError:
    """Upload through the openai SDK and return the error it raised (failing the test if none was)."""
    with openai.OpenAI(base_url=capped.api, api_key=key, max_retries=0) as client:
        try:
            client.files.create(file=(name, content), purpose=purpose)  # type: ignore[arg-type]
        except openai.APIStatusError as error:
            return error
    raise AssertionError("the upload was accepted")


def jsonl(*records: dict[str, object]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


BROKEN_BATCHES = {
    "invalid_json": (b'{"custom_id": "r1", "method": "POST",\n', 1),
    "not_an_object": (jsonl(request_line()) + b"[1, 2]\n", 2),
    "missing_custom_id": (jsonl(request_line(), {k: v for k, v in request_line().items() if k != "custom_id"}), 2),
    "duplicate_custom_id": (jsonl(request_line("a"), request_line("b"), request_line("a")), 3),
    "invalid_method": (jsonl(request_line(method="GET")), 1),
    "invalid_url": (jsonl(request_line(url="/v1/fine_tuning/jobs")), 1),
    "missing_body": (jsonl({k: v for k, v in request_line().items() if k != "body"}), 1),
    "missing_messages": (jsonl(request_line(body={"model": "gpt-4o-mini"})), 1),
    "missing_model": (jsonl(request_line(body={"messages": [{"role": "user", "content": "hi"}]})), 1),
    "empty_file": (b"\n\n", 0),
}


@pytest.mark.parametrize("rule", list(BROKEN_BATCHES))
@pytest.mark.usefixtures("nothing_left_behind")
def test_broken_batch_jsonl_names_line_and_rule(capped: RunningPortico, key: str, rule: str) -> None:
    content, line_no = BROKEN_BATCHES[rule]
    failure = refused(capped, key, "batch.jsonl", content, "batch")
    assert failure.status_code == 400
    error = failure.body
    assert isinstance(error, dict)
    assert error["param"] == "file"
    assert error["code"] == rule
    if line_no:
        assert f"line {line_no}" in error["message"]


@pytest.mark.usefixtures("nothing_left_behind")
def test_broken_fine_tune_jsonl(capped: RunningPortico, key: str) -> None:
    content = jsonl({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, {})
    failure = refused(capped, key, "train.jsonl", content, "fine-tune")
    assert failure.status_code == 400 and "line 2" in str(failure.body)


@pytest.mark.usefixtures("nothing_left_behind")
def test_purpose_after_file_is_still_validated(capped: RunningPortico, key: str) -> None:
    """A form may send `purpose` after the file: the bytes are staged, validated, then removed when invalid."""
    content = jsonl(request_line("a"), request_line("a"))
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="b.jsonl"\r\n\r\n' + content + b"\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        b"--XyZ--\r\n"
    )
    response = httpx.post(
        f"{capped.api}/files",
        content=body,
        headers={"authorization": f"Bearer {key}", "content-type": "multipart/form-data; boundary=XyZ"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "duplicate_custom_id"


@pytest.mark.usefixtures("nothing_left_behind")
def test_wrong_purpose(capped: RunningPortico, key: str) -> None:
    failure = refused(capped, key, "a.txt", b"hello", "training")
    assert failure.status_code == 400
    error = failure.body
    assert isinstance(error, dict)
    assert error["param"] == "purpose"
    assert "must be one of" in error["message"]


@pytest.mark.usefixtures("nothing_left_behind")
def test_missing_file_and_missing_purpose(capped: RunningPortico, key: str) -> None:
    headers = {"authorization": f"Bearer {key}"}
    no_file = httpx.post(f"{capped.api}/files", data={"purpose": "batch"}, files={"x": ("x", b"")}, headers=headers)
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] in ("file", "x")
    only_purpose = httpx.post(f"{capped.api}/files", data={"purpose": "batch"}, headers=headers)
    assert only_purpose.status_code == 400
    no_purpose = httpx.post(f"{capped.api}/files", files={"file": ("a.txt", b"hi")}, headers=headers)
    assert no_purpose.status_code == 400 and no_purpose.json()["error"]["param"] == "purpose"
    not_multipart = httpx.post(f"{capped.api}/files", json={"purpose": "batch"}, headers=headers)
    assert not_multipart.status_code == 400 and "multipart/form-data" in not_multipart.json()["error"]["message"]


@pytest.mark.usefixtures("nothing_left_behind")
def test_oversize_answers_413(capped: RunningPortico, key: str) -> None:
    failure = refused(capped, key, "big.bin", b"x" * (CAP + 1), "assistants")
    assert failure.status_code == 413
    assert isinstance(failure.body, dict) and failure.body["param"] == "file"


@pytest.mark.usefixtures("nothing_left_behind")
def test_oversize_without_content_length_is_cut_while_streaming(capped: RunningPortico, key: str) -> None:
    """A chunked upload declares no length: the cap is enforced on the bytes as they arrive."""

    def body() -> Iterator[bytes]:
        yield b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        for _ in range(3):
            yield b"y" * CAP
        yield b"\r\n--B--\r\n"

    response = httpx.post(
        f"{capped.api}/files",
        content=body(),
        headers={"authorization": f"Bearer {key}", "content-type": "multipart/form-data; boundary=B"},
    )
    assert response.status_code == 413


def test_requests_without_a_valid_key(capped: RunningPortico) -> None:
    assert httpx.get(f"{capped.api}/files").status_code == 401
    wrong = httpx.get(f"{capped.api}/files", headers={"authorization": "Bearer pk-nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"


def test_list_arguments_are_validated(capped: RunningPortico, key: str) -> None:
    response = httpx.get(f"{capped.api}/files", params={"limit": "0"}, headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "limit"
    order = httpx.get(f"{capped.api}/files", params={"order": "sideways"}, headers={"authorization": f"Bearer {key}"})
    assert order.status_code == 400 and order.json()["error"]["param"] == "order"
