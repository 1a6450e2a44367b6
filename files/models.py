"""Wire models of the Files API, as the spec (and OpenAI) define them."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from portico.pagination import CursorPage, CursorParams
from portico.wire import OmitNoneModel


class UploadPurpose(StrEnum):
    """What a caller may upload (`CreateFileRequest.purpose`)."""

    ASSISTANTS = "assistants"
    BATCH = "batch"
    FINE_TUNE = "fine-tune"
    VISION = "vision"


# Purposes Portico itself writes (batch output, fine-tune results) extend the upload set.
FILE_PURPOSES = [p.value for p in UploadPurpose] + ["assistants_output", "batch_output", "fine-tune-results"]


class FileObject(OmitNoneModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    status_details: str | None = None


class FileList(CursorPage[FileObject]):
    pass


class ListFilesInput(CursorParams):
    purpose: str | None = Field(None, description="Only files with this purpose, e.g. 'batch' or 'fine-tune'.")


class FileIdInput(BaseModel):
    file_id: str = Field(description="The file's id, e.g. 'file-abc123'.")


class DeletedFile(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


class CreateFileFromTextInput(BaseModel):
    filename: str = Field(description="Name to store, e.g. 'requests.jsonl'.", min_length=1, max_length=255)
    purpose: UploadPurpose = Field(description="'batch' and 'fine-tune' files are validated as JSONL.")
    text: str = Field(description="The whole file content as UTF-8 text (up to a few MiB; larger: upload URL).")


class ReadTextInput(FileIdInput):
    max_bytes: int | None = Field(None, ge=1, description="Read at most this many bytes (server cap applies).")


class FileText(BaseModel):
    file_id: str
    text: str
    bytes_returned: int
    total_bytes: int
    truncated: bool = Field(description="True when the file is longer than what was returned.")


class CreateUploadUrlInput(BaseModel):
    filename: str = Field(description="Name to store, e.g. 'train.jsonl'.", min_length=1, max_length=255)
    purpose: UploadPurpose = Field(description="'batch' and 'fine-tune' files are validated as JSONL.")


class UploadUrl(BaseModel):
    upload_url: str = Field(description="PUT the raw bytes here, once, before expires_at; the reply is the file.")
    method: Literal["PUT"] = "PUT"
    expires_at: int
    max_bytes: int
    headers: dict[str, str] = Field(default_factory=dict, description="Headers to send with the PUT (none needed).")


class StagedUpload(BaseModel):
    """Bytes already streamed to the blob store by the REST reader, waiting to be recorded as a file."""

    filename: str
    purpose: str
    blob_key: str
    file_id: str
    bytes: int
    sha256: str
    line_count: int | None
    validated: bool
