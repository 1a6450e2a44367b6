"""The routing config (Portkey's `x-portkey-config`): a tree of targets with a strategy at each node.

    {"strategy": {"mode": "fallback", "on_status_codes": [503]},
     "retry": {"attempts": 2},
     "targets": [{"virtual_key": "openai-prod"},
                 {"strategy": {"mode": "loadbalance"},
                  "targets": [{"virtual_key": "bedrock-a", "weight": 3}, {"virtual_key": "vertex-b", "weight": 1}]}]}

A node has `strategy` and `targets`; a leaf names where to send the request: a virtual key, or a provider with its
key, optionally at a custom host. Settings (`retry`, `request_timeout`, `override_params`) apply to the node they
are on and everything below it, the nearer one winning.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from portico.dispatch import invalid_arguments
from portico.errors import InvalidRequest

RETRYABLE = [429, 500, 502, 503, 504]


class Retry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(0, ge=0, le=10, description="Extra attempts after the first.")
    on_status_codes: list[int] = Field(default_factory=lambda: list(RETRYABLE))
    use_retry_after_header: bool = True


class Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["single", "fallback", "loadbalance"]
    # fallback: move to the next target on these statuses (any error when absent).
    on_status_codes: list[int] | None = None


class Cache(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["simple", "semantic"] = "simple"
    max_age: int | None = Field(None, ge=1, description="Seconds.")


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    strategy: Strategy | None = None
    targets: list[Target] | None = None
    virtual_key: str | None = None
    provider: str | None = None
    api_key: str | None = None
    custom_host: str | None = None
    weight: float = Field(1.0, ge=0)
    retry: Retry | None = None
    request_timeout: int | None = Field(None, ge=1, description="Milliseconds per attempt.")
    override_params: dict[str, Any] = Field(default_factory=dict)
    cache: Cache | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _node_or_leaf(self) -> Self:
        if self.targets is not None or self.strategy is not None:
            if not self.targets:
                raise ValueError("a node with a strategy needs a non-empty 'targets' list")
            if self.strategy is None:
                self.strategy = Strategy(mode="single")
        elif not (self.virtual_key or self.provider):
            raise ValueError("a target needs 'virtual_key', or 'provider' (with 'api_key' or 'custom_host')")
        return self

    @property
    def is_leaf(self) -> bool:
        return not self.targets


def parse_config(value: dict[str, Any] | str, *, param: str = "config") -> Target:
    """A config from a dict or inline JSON text; errors name the path inside it, e.g. `config.targets.1.weight`."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise InvalidRequest(f"{param} is not valid JSON: {error.msg} at {error.pos}.", param=param) from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{param} must be a JSON object.", param=param)
    try:
        return Target.model_validate(value)
    except ValidationError as error:
        problem = invalid_arguments(error)
        raise InvalidRequest(
            problem.message.replace("Invalid arguments. ", f"Invalid {param}: "),
            param=f"{param}.{problem.param}" if problem.param else param,
            code="invalid_config",
        ) from None
