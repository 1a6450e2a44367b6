"""Usage and rate limits as the spec shapes them (`UsageLimits`, `RateLimits`), validated so a bad value is refused
with the field named (`usage_limits.periodic_reset`) instead of stored and ignored.

Portico records these limits; it does not meter usage against them yet.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class UsageLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credit_limit: int | None = Field(None, ge=1, description="Credit limit, in cost or tokens per `type`.")
    type: Literal["cost", "tokens"] | None = None
    alert_threshold: int | None = Field(None, ge=1, description="Alert once usage passes this.")
    periodic_reset: Literal["monthly", "weekly"] | None = None


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["requests", "tokens"] = "requests"
    unit: Literal["rpd", "rph", "rpm"] = Field(description="Per day, hour or minute.")
    value: int = Field(ge=1)


def stored(limit: BaseModel | None) -> dict[str, Any] | None:
    return limit.model_dump(exclude_none=True) if limit is not None else None


def stored_list(limits: RateLimit | UsageLimits | list[RateLimit] | list[UsageLimits] | None) -> list[Any] | None:
    """The spec sends a provider's rate limit as one object on create and shows a list: both are stored as a list."""
    if limits is None:
        return None
    items: list[Any] = limits if isinstance(limits, list) else [limits]
    return [item.model_dump(exclude_none=True) for item in items]
