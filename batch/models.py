"""Wire models of the Batch API: the spec's `Batch` object and the four create shapes (OpenAI, Bedrock, Vertex,
Portkey-managed) read as one request.

The shapes differ only in which provider parameters they carry, and Portkey lets them arrive at the top level or
under `provider_options`; `CreateBatchInput.provider_param` reads either. Portico adds three read-only fields to
`Batch`: `mode` (`managed` or `native`), `provider`, and for native batches `provider_status` (the provider's raw job
state, kept beside the mapped `status`) and `provider_batch_id` (the job's id at the provider).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.route import Route
from portico.pagination import CursorPage, CursorParams
from portico.wire import OmitNoneModel

Endpoint = Literal["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]
CompletionWindow = Literal["24h", "immediate"]


class RequestCounts(BaseModel):
    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchError(OmitNoneModel):
    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchError]


class BatchObject(OmitNoneModel):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrors | None = None
    input_file_id: str
    completion_window: str
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts
    metadata: dict[str, Any] | None = None
    mode: Literal["managed", "native"]
    provider: str
    provider_status: str | None = None
    provider_batch_id: str | None = None


class BatchList(CursorPage[BatchObject]):
    pass


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


PROVIDER_PARAMS = ("model", "role_arn", "job_name", "output_data_config")


class CreateBatchInput(BaseModel):
    input_file_id: str = Field(description="A file with purpose 'batch' in this workspace.")
    endpoint: Endpoint = Field(description="The endpoint every line calls; the file's lines must name it.")
    completion_window: CompletionWindow = Field(
        description="'24h': the provider's own batch API where it has one; 'immediate': Portico runs each line."
    )
    metadata: dict[str, str] | None = Field(None, description="Up to 16 string pairs kept on the batch.")
    model: str | None = Field(None, description="Bedrock and Vertex jobs run one model; name it here.")
    role_arn: str | None = Field(None, description="Bedrock: the IAM role the invocation job assumes.")
    job_name: str | None = Field(None, description="Bedrock/Vertex: the provider job's name.")
    output_data_config: str | None = Field(None, description="s3:// or gs:// prefix for the provider's output.")
    portkey_options: PortkeyOptions | None = Field(None, description="Virtual key, buckets and model in the body.")
    provider_options: dict[str, Any] | None = Field(
        None, description="Provider parameters (model, role_arn, job_name, output_data_config) grouped."
    )
    route: Route = Field(default_factory=Route, description="Routing when portkey_options is absent.")

    def provider_param(self, name: str) -> str | None:
        """A provider parameter from the top level, else from `provider_options` (else None)."""
        value = getattr(self, name)
        if value is None and self.provider_options is not None:
            value = self.provider_options.get(name)
        return str(value) if value is not None else None

    def routing(self) -> Route:
        """`portkey_options` names the virtual key in the body; otherwise the request's routing headers apply."""
        if self.portkey_options is not None:
            return Route(virtual_key=self.portkey_options.virtual_key)
        return self.route


class ListBatchesInput(CursorParams):
    pass


class BatchIdInput(BaseModel):
    batch_id: str = Field(description="The batch's id, e.g. 'batch_abc123'.")
