"""Google Vertex AI Gemini: OpenAI chat ↔ generateContent / streamGenerateContent?alt=sse, OpenAI embeddings ↔
text-embedding `:predict`.

The mapping rules live in the modules this one gathers: `gemini_request` (chat request), `gemini_schema` (JSON
Schema → Vertex Schema), `gemini_response` (response and stream), `gemini_embeddings`.
"""

from __future__ import annotations

from providers.translate.errors import TranslationError
from providers.translate.gemini_embeddings import embedding_predict_body, embedding_response
from providers.translate.gemini_request import chat_to_gemini
from providers.translate.gemini_response import GeminiStreamTranslator, gemini_to_chat
from providers.translate.gemini_schema import to_gemini_schema

__all__ = [
    "GeminiStreamTranslator",
    "TranslationError",
    "chat_to_gemini",
    "embedding_predict_body",
    "embedding_response",
    "gemini_to_chat",
    "to_gemini_schema",
]
