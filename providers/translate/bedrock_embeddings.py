"""OpenAI embeddings request ↔ Bedrock InvokeModel bodies, for the Titan text and Cohere embedding families.

Titan embeds one text per call, so a request of n inputs becomes n bodies; Cohere takes a list, at most 96 texts a
call, so a request becomes one body per 96 inputs. The caller sends the bodies in order and passes the response
bodies back in the same order. Cohere's response body carries no token count (Bedrock reports it in the
`X-Amzn-Bedrock-Input-Token-Count` header): the caller passes that as `input_tokens`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from providers.translate import openai_request as req
from providers.translate import openai_response as res
from providers.translate.openai_request import JsonObject

COHERE_MAX_TEXTS = 96

# Cross-region inference profiles prefix the model id with a geography (`us.cohere.embed-v4:0`).
_GEOGRAPHY_PREFIXES = frozenset({"us", "eu", "apac", "us-gov", "global", "jp", "au", "ca"})


def _titan_bodies(texts: list[str], dimensions: int | None) -> list[JsonObject]:
    extra = {} if dimensions is None else {"dimensions": dimensions}
    return [{"inputText": text, **extra} for text in texts]


def _cohere_bodies(texts: list[str], dimensions: int | None) -> list[JsonObject]:
    extra = {} if dimensions is None else {"output_dimension": dimensions}
    return [
        {"texts": texts[start : start + COHERE_MAX_TEXTS], "input_type": "search_document", **extra}
        for start in range(0, len(texts), COHERE_MAX_TEXTS)
    ]


def _titan_vectors(body: JsonObject) -> list[list[float]]:
    return [body["embedding"]]


def _cohere_vectors(body: JsonObject) -> list[list[float]]:
    embeddings = body["embeddings"]
    # With `embedding_types` (and always on embed-v4) the vectors are keyed by type.
    return list(embeddings["float"] if isinstance(embeddings, dict) else embeddings)


def _titan_tokens(body: JsonObject) -> int:
    return int(body.get("inputTextTokenCount", 0))


def _no_tokens(body: JsonObject) -> int:
    return 0


@dataclass(frozen=True)
class EmbeddingFamily:
    bodies: Callable[[list[str], int | None], list[JsonObject]]
    vectors: Callable[[JsonObject], list[list[float]]]
    tokens: Callable[[JsonObject], int]
    dimensions: frozenset[int]


# Most specific prefix first: the first prefix the model id starts with wins.
EMBEDDING_FAMILIES: dict[str, EmbeddingFamily] = {
    "amazon.titan-embed-text-v1": EmbeddingFamily(_titan_bodies, _titan_vectors, _titan_tokens, frozenset()),
    "amazon.titan-embed-text-v2": EmbeddingFamily(
        _titan_bodies, _titan_vectors, _titan_tokens, frozenset({256, 512, 1024})
    ),
    "cohere.embed-v4": EmbeddingFamily(_cohere_bodies, _cohere_vectors, _no_tokens, frozenset({256, 512, 1024, 1536})),
    "cohere.embed-": EmbeddingFamily(_cohere_bodies, _cohere_vectors, _no_tokens, frozenset()),
}


def base_model_id(model: str) -> str:
    model_id = model.rsplit("/", 1)[-1]
    geography, dot, rest = model_id.partition(".")
    return rest if dot and geography in _GEOGRAPHY_PREFIXES else model_id


def embedding_family(model: str) -> EmbeddingFamily:
    model_id = base_model_id(model)
    for prefix, family in EMBEDDING_FAMILIES.items():
        if model_id.startswith(prefix):
            return family
    raise req.fail(
        f"Bedrock embeddings are translated for {', '.join(EMBEDDING_FAMILIES)}* models; '{model}' is not one.",
        "model",
    )


def embedding_requests(request: JsonObject) -> list[JsonObject]:
    model = request.get("model")
    if not isinstance(model, str):
        raise req.fail("'model' must be a Bedrock model id.", "model")
    family = embedding_family(model)
    dimensions = req.dimensions(request)
    if dimensions is not None and dimensions not in family.dimensions:
        allowed = ", ".join(str(size) for size in sorted(family.dimensions)) or "none (the model's size is fixed)"
        raise req.fail(f"'{model}' does not produce {dimensions}-dimension embeddings; sizes: {allowed}.", "dimensions")
    return family.bodies(req.embedding_inputs(request), dimensions)


def embedding_response(
    model: str,
    bodies: list[JsonObject],
    *,
    input_tokens: int | None = None,
    encoding_format: Literal["float", "base64"] = "float",
) -> JsonObject:
    family = embedding_family(model)
    vectors = [vector for body in bodies for vector in family.vectors(body)]
    tokens = sum(family.tokens(body) for body in bodies) if input_tokens is None else input_tokens
    return res.embedding_list(model, vectors, tokens, encoding_format)
