"""AWS Bedrock: OpenAI chat ↔ Converse / ConverseStream, OpenAI embeddings ↔ Titan and Cohere InvokeModel bodies.

The mapping rules live in the modules this one gathers: `bedrock_request` (chat request), `bedrock_response`
(response and stream events), `bedrock_embeddings`.
"""

from __future__ import annotations

from providers.translate.bedrock_embeddings import embedding_requests, embedding_response
from providers.translate.bedrock_request import chat_to_converse
from providers.translate.bedrock_response import ConverseStreamTranslator, converse_to_chat
from providers.translate.errors import TranslationError

__all__ = [
    "ConverseStreamTranslator",
    "TranslationError",
    "chat_to_converse",
    "converse_to_chat",
    "embedding_requests",
    "embedding_response",
]
