"""Response models that leave out unset optional fields instead of sending `null`.

The spec marks few fields nullable (`ApiKeyObject.description`, `OpenAIFile.status_details`, …): an API that sends
`null` there breaks strict clients, so a value we do not have is absent from the object.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer


class OmitNoneModel(BaseModel):
    @model_serializer(mode="wrap")
    def _omit_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}
