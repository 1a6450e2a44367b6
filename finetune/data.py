"""Training data on its way to the provider: checked at create, converted and staged by the worker.

Both go through the same converter (`finetune.training.converter_for`): at create, each file up to
`CHECK_AT_CREATE_BYTES` is streamed through it and the output dropped, so a line the target cannot take answers 400
naming the file and the line, and no job exists. A larger file is accepted unchecked (reading it whole would hold
the request for minutes); the worker converts it while staging, and the first bad line fails the job
(`validating_files` → `failed`, `error.param` naming the file, the message naming the line).

Staging writes the converted JSONL to a temporary file (memory stays flat whatever the size), then uploads it with
the virtual key's credentials to the key derived from the job id, so a re-run overwrites rather than duplicates.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from typing import IO

from finetune.models import Method
from finetune.training import convert_file, converter_for, hyperparameters_for
from portico.blob.base import BlobStore
from portico.context import Services
from portico.db.models import File

CHECK_AT_CREATE_BYTES = 32 * 1024 * 1024


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    async for _ in chunks:
        pass


async def check_files(
    services: Services, adapter: str, family: str, method: Method, training: File, validation: File | None
) -> None:
    """Refuse (`TrainingDataError`, a 400) hyperparameters or lines the target cannot take."""
    hyperparameters_for(adapter, family, method.settings().hyperparameters.model_dump(exclude_none=True))
    converter = converter_for(adapter, family, method.type)
    for source, param in ((training, "training_file"), (validation, "validation_file")):
        if source is not None and source.bytes <= CHECK_AT_CREATE_BYTES:
            await convert_file(services.blobs, source.blob_key, converter, _drain, param=param)


async def converted(blobs: BlobStore, source: File, adapter: str, family: str, method: str, param: str) -> IO[bytes]:
    """`source` converted for the target, in a temporary file the caller closes (it is deleted then)."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it

    async def write(chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            spool.write(chunk)

    try:
        await convert_file(blobs, source.blob_key, converter_for(adapter, family, method), write, param=param)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool
