"""Vertex prediction lines → OpenAI output and error lines.

A prediction line is the input line (so it still carries the `custom_id` Portico put beside `request`) plus
`response` (a GenerateContentResponse) when it succeeded, or a non-empty `status` when it failed. Vertex writes
`status` as the HTTP reason followed by the Google error body (`Bad Request: {"error": {"code": 400, ...}}`); the
code and message are read from it when they are there.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from batch.native.lines import failure_line, success_line
from batch.native.outputs import OutputSink
from portico.ids import now
from providers.translate.gemini_response import gemini_to_chat


def _status_error(status: str) -> tuple[int, str]:
    _, brace, rest = status.partition("{")
    try:
        error = json.loads(brace + rest).get("error") if brace else None
    except ValueError:
        error = None
    if isinstance(error, dict):
        code = error.get("code")
        message = str(error.get("message") or status)
        return (code if isinstance(code, int) and 400 <= code <= 599 else 500), message
    return 500, status


class PredictionRecords:
    def __init__(self, sink: OutputSink, model_name: str, job_name: str) -> None:
        self.sink, self.batch_id, self.job_name = sink, sink.batch_id, job_name
        self.model = model_name.rsplit("/", 1)[-1]
        self.created = now()

    def take(self, raw: bytes) -> None:
        record: dict[str, Any] = json.loads(raw)
        custom_id = str(record.get("custom_id") or record.get("key") or "")
        status, response = record.get("status"), record.get("response")
        if status or not isinstance(response, dict):
            code, message = _status_error(str(status or "Vertex gave no response for this request."))
            self.sink.failure(failure_line(self.batch_id, custom_id, code, message, self.job_name))
            return
        completion_id = "chatcmpl-" + hashlib.sha256(f"{self.batch_id}\n{custom_id}".encode()).hexdigest()[:24]
        try:
            body = gemini_to_chat(response, model=self.model, completion_id=completion_id, created=self.created)
        except (KeyError, TypeError, ValueError) as error:
            message = f"Portico could not read Gemini's answer: {error!r}"
            self.sink.failure(failure_line(self.batch_id, custom_id, 502, message, self.job_name))
            return
        self.sink.success(success_line(self.batch_id, custom_id, body, self.job_name))
