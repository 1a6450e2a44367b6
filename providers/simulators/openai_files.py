"""OpenAI's files API, simulated: upload (multipart ``file`` + ``purpose``), list (purpose filter, order, cursor),
retrieve, delete, and download. Bytes stay in memory for the simulator's life; batches and fine-tuning jobs read
their inputs here and write their outputs here (purposes ``batch_output`` and ``fine-tune-results``).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from providers.simulators.behaviour import InvalidRequest
from providers.simulators.edge import Call, endpoint
from providers.simulators.openai import DIALECT
from providers.simulators.openai_job_state import not_found, page, settle, store_of

# Purposes a caller may upload with; the output purposes are written by jobs only.
PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
MAX_BYTES = 512 * 1024 * 1024
# Batch input files expire after 30 days unless the upload says otherwise; other files never do.
BATCH_FILE_LIFETIME = 30 * 24 * 3600
EXPIRY_RANGE = (3600, 30 * 24 * 3600)


async def upload_form(request: Request) -> dict[str, Any]:
    """The multipart upload: text fields as strings, the ``file`` part as (filename, bytes)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("send this request as multipart/form-data with 'file' and 'purpose'")
    body: dict[str, Any] = {}
    try:
        async with request.form() as form:
            for name, value in form.multi_items():
                if not isinstance(value, UploadFile):
                    body[name] = value
                elif name == "file":
                    if value.size is not None and value.size > MAX_BYTES:
                        raise InvalidRequest(f"files are limited to {MAX_BYTES} bytes")
                    body["file"] = (value.filename or "upload", await value.read())
    except ClientDisconnect:
        raise InvalidRequest("the form ended before its last boundary (the client went away)") from None
    return body


def _expires_at(body: dict[str, Any], purpose: str, created_at: int) -> int | None:
    # The SDK flattens the expires_after object into bracketed form fields.
    seconds = body.get("expires_after[seconds]")
    if seconds is None:
        return created_at + BATCH_FILE_LIFETIME if purpose == "batch" else None
    low, high = EXPIRY_RANGE
    if not str(seconds).isdigit() or not low <= int(seconds) <= high:
        raise InvalidRequest(f"'expires_after[seconds]' must be an integer between {low} and {high}")
    return created_at + int(seconds)


async def create_file(call: Call) -> Response:
    store = await settle(call)
    upload = call.body.get("file")
    if not isinstance(upload, tuple):
        raise InvalidRequest("'file' is required: upload exactly one file")
    purpose = call.body.get("purpose")
    if purpose not in PURPOSES:
        raise InvalidRequest(f"'purpose' must be one of {', '.join(sorted(PURPOSES))}")
    created_at = int(call.controls.clock.now())
    expires_at = _expires_at(call.body, purpose, created_at)
    filename, data = upload
    stored = store.add_file(data, filename, purpose, created_at)
    stored.expires_at = expires_at
    return JSONResponse(stored.as_json())


async def list_files(call: Call) -> Response:
    store = await settle(call)
    query = call.request.query_params
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'")
    purpose = query.get("purpose")
    files = [stored for stored in store.files.values() if purpose is None or stored.purpose == purpose]
    # Insertion order is creation order, also among files created within the same second.
    ordered = files if order == "asc" else files[::-1]
    return page(call, [stored.as_json() for stored in ordered], (10_000, 10_000))


def _file_id(call: Call) -> str:
    return str(call.request.path_params["file_id"])


async def retrieve_file(call: Call) -> Response:
    stored = (await settle(call)).files.get(_file_id(call))
    return JSONResponse(stored.as_json()) if stored else not_found("file", _file_id(call))


async def delete_file(call: Call) -> Response:
    # Deleting needs no settling: a job reads its input when created and only adds files later.
    stored = store_of(call.request).files.pop(_file_id(call), None)
    if stored is None:
        return not_found("file", _file_id(call))
    return JSONResponse({"id": stored.id, "object": "file", "deleted": True})


async def file_content(call: Call) -> Response:
    stored = (await settle(call)).files.get(_file_id(call))
    if stored is None:
        return not_found("file", _file_id(call))
    return Response(stored.data, media_type="application/octet-stream")


def routes() -> list[BaseRoute]:
    by_id = "/v1/files/{file_id}"
    return [
        Route("/v1/files", endpoint(DIALECT, "files.create", create_file, read=upload_form), methods=["POST"]),
        Route("/v1/files", endpoint(DIALECT, "files.list", list_files), methods=["GET"]),
        Route(by_id, endpoint(DIALECT, "files.retrieve", retrieve_file), methods=["GET"]),
        Route(by_id, endpoint(DIALECT, "files.delete", delete_file), methods=["DELETE"]),
        Route(by_id + "/content", endpoint(DIALECT, "files.content", file_content), methods=["GET"]),
    ]
