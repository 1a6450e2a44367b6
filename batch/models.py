"""Wire models of the Batch API: the spec's `Batch` object and the four create shapes (OpenAI, Bedrock, Vertex,
Portkey-managed) read as one request.

The shapes differ only in which provider parameters they carry, and Portkey lets them arrive at the top level or
under `provider_options`; `CreateBatchInput.provider_param` reads either. Portico adds three read-only fields to
`Batch`: `mode` (`managed` or `native`), `provider`, and for native batches `provider_status` (the provider's raw job
state, kept beside the mapped `status`) and `provider_batch_id` (the job's id at the provider).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.job_options import ProviderJobRequest
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


PROVIDER_PARAMS = ("model", "role_arn", "job_name", "output_data_config")


class CreateBatchInput(ProviderJobRequest):
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


class ListBatchesInput(CursorParams):
    pass


class BatchIdInput(BaseModel):
    batch_id: str = Field(description="The batch's id, e.g. 'batch_abc123'.")
