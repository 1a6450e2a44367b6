"""Pure, synchronous translations between OpenAI's chat/embeddings wire format and each vendor's.

Plain JSON-shaped dicts in and out, no I/O: the HTTP adapters and the simulators both build on these.

- `bedrock`: Converse / ConverseStream for chat, InvokeModel bodies for Titan and Cohere embeddings.
- `gemini`: Vertex AI generateContent / streamGenerateContent?alt=sse for chat, `:predict` for text embeddings.
- `errors.TranslationError`: a request the vendor cannot serve, naming the offending field (a 400 for the caller).
"""
