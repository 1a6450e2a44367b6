"""Prices per million tokens (input, output) for models whose price is public and stable enough to keep here.

A model not listed has no cost in the request log (None), rather than a guess.
"""

from __future__ import annotations

PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "anthropic.claude-3-haiku-20240307-v1:0": (0.25, 1.25),
    "gemini-1.5-flash": (0.075, 0.30),
}


def cost(model: str | None, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
    prices = PER_MILLION.get(model or "")
    if prices is None or prompt_tokens is None:
        return None
    return round((prompt_tokens * prices[0] + (completion_tokens or 0) * prices[1]) / 1_000_000, 8)
