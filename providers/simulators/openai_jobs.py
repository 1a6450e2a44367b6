"""OpenAI's job APIs in the OpenAI simulator, one module each:

- `openai_files`: ``/v1/files`` (upload, list, retrieve, delete, content);
- `openai_batches` (and `openai_batch_lines` for one line): ``/v1/batches``;
- `openai_finetuning` (and `openai_tuning_data` for files and metrics): ``/v1/fine_tuning/jobs``;
- `openai_job_state`: what they share, including the clock-driven progress and ``GET/POST /_sim/jobs``.

Jobs write real files that ``/v1/files`` serves, and fine-tuned models join ``/v1/models`` (`openai_models`).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from providers.simulators import openai_batches, openai_files, openai_finetuning
from providers.simulators.openai_job_state import control_routes


def routes() -> list[BaseRoute]:
    return [*openai_files.routes(), *openai_batches.routes(), *openai_finetuning.routes(), *control_routes()]
