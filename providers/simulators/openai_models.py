"""OpenAI's models API, simulated: list, retrieve, and delete (OpenAI deletes only fine-tuned models).

One fine-tuned model is listed so deletion can be exercised; a deletion lasts for the server's life. The models
this server's fine-tuning jobs produce (`openai_finetuning`) are listed beside it once their jobs succeed.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from providers.simulators.edge import Call, endpoint
from providers.simulators.openai import DIALECT, error
from providers.simulators.openai_job_state import job_models

CREATED = 1_700_000_000
FINE_TUNED = "ft:gpt-4o-mini-2024-07-18:portico-sim::sim00001"
MODELS = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "omni-moderation-latest",
    "dall-e-2",
    "gpt-image-1",
    "tts-1",
    "whisper-1",
    FINE_TUNED,
)


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": "portico-simulator"}


def _deleted(call: Call) -> set[str]:
    state = call.request.app.state
    if not hasattr(state, "deleted_models"):
        state.deleted_models = set()
    deleted: set[str] = state.deleted_models
    return deleted


async def _available(call: Call) -> list[str]:
    return [model_id for model_id in (*MODELS, *await job_models(call)) if model_id not in _deleted(call)]


async def _missing(call: Call) -> Response | None:
    if call.model in await _available(call):
        return None
    message = f"The model '{call.model}' does not exist or you do not have access to it."
    return error(404, message, param="model", code="model_not_found")


async def list_models(call: Call) -> Response:
    return JSONResponse({"object": "list", "data": [_model(model_id) for model_id in await _available(call)]})


async def retrieve_model(call: Call) -> Response:
    return await _missing(call) or JSONResponse(_model(call.model))


async def delete_model(call: Call) -> Response:
    if (missing := await _missing(call)) is not None:
        return missing
    if not call.model.startswith("ft:"):
        return error(403, f"You cannot delete '{call.model}': only fine-tuned models can be deleted.")
    _deleted(call).add(call.model)
    return JSONResponse({"id": call.model, "object": "model", "deleted": True})


def _model_in_path(request: Request, _: dict[str, Any]) -> str:
    return str(request.path_params["model"])


def _no_model(_: Request, __: dict[str, Any]) -> str:
    return ""


def routes() -> list[BaseRoute]:
    by_id = "/v1/models/{model:path}"
    return [
        Route("/v1/models", endpoint(DIALECT, "models.list", list_models, _no_model), methods=["GET"]),
        Route(by_id, endpoint(DIALECT, "models.retrieve", retrieve_model, _model_in_path), methods=["GET"]),
        Route(by_id, endpoint(DIALECT, "models.delete", delete_model, _model_in_path), methods=["DELETE"]),
    ]
