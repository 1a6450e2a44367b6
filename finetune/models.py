"""Wire models of the fine-tuning API: the spec's `FineTuningJob`, its events and checkpoints, and the create shapes
(OpenAI, Bedrock, Portkey-managed; Vertex is the OpenAI shape routed to a Vertex virtual key) read as one request.

Bedrock's parameters (`job_name`, `role_arn`, `output_file`) arrive at the top level or under `provider_options`;
`CreateFineTuningJobInput.provider_param` reads either. Portico adds read-only fields to `FineTuningJob`:
`provider`, `provider_status` (the provider's raw state beside the mapped `status`), `provider_job_id`, and
`progress` (steps or stages done, when the provider reports them).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from gateway.job_options import ProviderJobRequest
from portico.pagination import CursorPage

Status = Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled"]
MethodType = Literal["supervised", "dpo"]


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="allow")

    n_epochs: int | Literal["auto"] = Field("auto", description="Epochs, 1-50, or 'auto'.")
    batch_size: int | Literal["auto"] | None = Field(None, description="Examples per step, or 'auto'.")
    learning_rate_multiplier: float | Literal["auto"] | None = Field(None, description="Scales the base rate.")


class MethodSettings(BaseModel):
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class Method(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: MethodType = Field(description="'supervised' (chat examples) or 'dpo' (preference pairs).")
    supervised: MethodSettings | None = None
    dpo: MethodSettings | None = None

    def settings(self) -> MethodSettings:
        return getattr(self, self.type) or MethodSettings()


class JobError(BaseModel):
    code: str
    message: str
    param: str | None


class Progress(BaseModel):
    done: int
    total: int | None = None
    unit: str = Field(description="What is counted: 'steps' or 'stages'.")


# FineTuningJob's nullable fields the spec requires: sent as null. Other unset fields are left out.
REQUIRED_NULLABLE = frozenset({"error", "fine_tuned_model", "finished_at", "trained_tokens", "validation_file"})


class FineTuningJobObject(BaseModel):
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: JobError | None
    fine_tuned_model: str | None
    finished_at: int | None
    hyperparameters: Hyperparameters
    model: str
    organization_id: str
    result_files: list[str]
    status: Status
    trained_tokens: int | None
    training_file: str
    validation_file: str | None
    integrations: list[dict[str, Any]] | None = None
    seed: int
    estimated_finish: int | None = None
    method: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    user_provided_suffix: str | None = None
    provider: str
    provider_status: str | None = None
    provider_job_id: str | None = None
    progress: Progress | None = None

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None or key in REQUIRED_NULLABLE}


class FineTuningJobList(CursorPage[FineTuningJobObject]):
    pass


class FineTuningEvent(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    type: str = "message"
    data: dict[str, Any] | None = None


class FineTuningEventList(CursorPage[FineTuningEvent]):
    pass


class FineTuningCheckpoint(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    metrics: dict[str, float]
    step_number: int


class FineTuningCheckpointList(CursorPage[FineTuningCheckpoint]):
    note: str | None = Field(None, description="Why the list is empty when the provider exposes no checkpoints.")


PROVIDER_PARAMS = ("job_name", "role_arn", "output_file")


class CreateFineTuningJobInput(ProviderJobRequest):
    model: str = Field(description="The base model to fine-tune, as the provider names it.")
    training_file: str = Field(description="A file with purpose 'fine-tune' in this workspace.")
    validation_file: str | None = Field(None, description="Optional held-out 'fine-tune' file.")
    suffix: str | None = Field(None, max_length=64, description="Up to 64 characters added to the tuned model name.")
    method: Method | None = Field(None, description="{'type': 'supervised'|'dpo', <type>: {'hyperparameters': ...}}.")
    hyperparameters: Hyperparameters | None = Field(None, description="Legacy place for supervised hyperparameters.")
    seed: int | None = Field(None, description="Seed for reproducibility; chosen if absent.")
    metadata: dict[str, str] | None = Field(None, description="Up to 16 string pairs kept on the job.")
    job_name: str | None = Field(None, description="Bedrock: the customization job's name.")
    role_arn: str | None = Field(None, description="Bedrock: the IAM role the customization job assumes.")
    output_file: str | None = Field(None, description="Bedrock: s3:// prefix for the job's output (derived if absent).")

    def chosen_method(self) -> Method:
        if self.method is not None:
            return self.method
        legacy = MethodSettings(hyperparameters=self.hyperparameters or Hyperparameters())
        return Method(type="supervised", supervised=legacy)


class ListJobsInput(BaseModel):
    after: str | None = Field(None, description="The previous page's last job id.")
    limit: int = Field(20, ge=1, le=100, description="How many jobs (1-100).")


class JobIdInput(BaseModel):
    fine_tuning_job_id: str = Field(description="The job's id, e.g. 'ftjob-abc123'.")


class ListEventsInput(JobIdInput):
    after: str | None = Field(None, description="The previous page's last event id.")
    limit: int = Field(20, ge=1, le=100, description="How many events (1-100), newest first.")


class ListCheckpointsInput(JobIdInput):
    after: str | None = Field(None, description="The previous page's last checkpoint id.")
    limit: int = Field(10, ge=1, le=100, description="How many checkpoints (1-100), newest first.")
