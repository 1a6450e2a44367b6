"""OpenAI embeddings request ↔ Vertex AI text-embedding `:predict` (text-embedding-005, text-multilingual-…).

One instance per input. `dimensions` becomes `parameters.outputDimensionality`. Vertex truncates over-long input by
default (`autoTruncate`), where OpenAI would refuse it; the body leaves that default alone. Some models take a single
instance per call (gemini-embedding-001): the caller splits a multi-input request for those.
"""

from __future__ import annotations

from typing import Literal

from providers.translate import openai_request as req
from providers.translate import openai_response as res
from providers.translate.openai_request import JsonObject


def embedding_predict_body(request: JsonObject) -> JsonObject:
    body: JsonObject = {"instances": [{"content": text} for text in req.embedding_inputs(request)]}
    dimensions = req.dimensions(request)
    if dimensions is not None:
        body["parameters"] = {"outputDimensionality": dimensions}
    return body


def embedding_response(
    model: str, predict_response: JsonObject, *, encoding_format: Literal["float", "base64"] = "float"
) -> JsonObject:
    embeddings = [prediction["embeddings"] for prediction in predict_response.get("predictions", [])]
    # token_count arrives as a JSON number that may carry a fraction (6.0).
    tokens = sum(int(embedding.get("statistics", {}).get("token_count", 0)) for embedding in embeddings)
    return res.embedding_list(model, [embedding["values"] for embedding in embeddings], tokens, encoding_format)
