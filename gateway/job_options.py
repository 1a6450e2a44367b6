"""What batch and fine-tuning requests share: Portkey's body-level routing (`portkey_options`), provider parameters
at the top level or grouped under `provider_options`, and the routing headers as a fallback."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.route import Route


class PortkeyOptions(BaseModel):
    """Portkey's body-level routing for jobs (`PortkeyBatchOptions`): which virtual key, buckets and model."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    virtual_key: str = Field(alias="x-portkey-virtual-key", description="The virtual key of the provider to use.")
    aws_s3_bucket: str | None = Field(None, alias="x-portkey-aws-s3-bucket", description="Bedrock staging bucket.")
    vertex_storage_bucket_name: str | None = Field(
        None, alias="x-portkey-vertex-storage-bucket-name", description="Vertex staging bucket."
    )
    provider_model: str | None = Field(
        None, alias="x-portkey-provider-model", description="The model the provider's job runs."
    )


class ProviderJobRequest(BaseModel):
    """The routing half of a job request; subclasses add the job's own fields and provider parameters."""

    portkey_options: PortkeyOptions | None = Field(None, description="Virtual key, buckets and model in the body.")
    provider_options: dict[str, Any] | None = Field(None, description="Provider parameters, grouped.")
    route: Route = Field(default_factory=Route, description="Routing when portkey_options is absent.")

    def provider_param(self, name: str) -> str | None:
        """A provider parameter from the top level, else from `provider_options` (else None)."""
        value = getattr(self, name, None)
        if value is None and self.provider_options is not None:
            value = self.provider_options.get(name)
        return str(value) if value is not None else None

    def routing(self) -> Route:
        """`portkey_options` names the virtual key in the body; otherwise the request's routing headers apply."""
        if self.portkey_options is not None:
            return Route(virtual_key=self.portkey_options.virtual_key)
        return self.route
