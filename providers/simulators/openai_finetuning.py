"""OpenAI's fine-tuning jobs API, simulated: create, list, retrieve, cancel, events (newest first) and checkpoints.

A job is ``validating_files`` for `JobSettings.tune_validating` seconds; then it ``failed`` (``error.code``
``invalid_training_file`` or ``invalid_validation_file``, see `openai_tuning_data`) or is ``queued`` for
``tune_queued`` seconds, then ``running``: n_epochs * ceil(examples / batch_size) steps of ``tune_per_step`` seconds,
each with a metrics event, and a checkpoint at the end of every epoch. After the last step it has ``succeeded``:
``fine_tuned_model`` is ``ft:<base>:portico-sim:<suffix>:<last 8 characters of the job id>`` (the suffix empty
unless given), served by the chat endpoint and listed by ``/v1/models``, and ``result_files`` holds a CSV of the
step metrics (purpose ``fine-tune-results``). Cancelling an unfinished job makes it ``cancelled`` at once.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from providers.simulators.behaviour import InvalidRequest
from providers.simulators.edge import Call, endpoint, require
from providers.simulators.openai import DIALECT
from providers.simulators.openai_job_state import (
    Job,
    Store,
    conflict,
    metadata_of,
    new_id,
    not_found,
    page,
    settle,
    store_of,
)
from providers.simulators.openai_tuning_data import (
    RANGES,
    BadDataset,
    method_of,
    metrics,
    read_dataset,
    resolve,
    results_csv,
    suffix_of,
)

ORGANIZATION = "portico-sim"
UNFINISHED = ("validating_files", "queued", "running")


@dataclass(kw_only=True, eq=False)
class FineTune(Job):
    model: str
    training_file: str
    validation_file: str | None
    training: bytes
    validation: bytes | None
    method: str
    hyperparameters: dict[str, Any]
    suffix: str | None
    seed: int
    metadata: dict[str, str] | None
    status: str = "validating_files"
    events: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    checkpoints: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    error: dict[str, Any] | None = None
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    estimated_finish: int | None = None
    trained_tokens: int | None = None
    result_files: list[str] = field(default_factory=list)
    tokens_per_epoch: int = 0
    steps_per_epoch: int = 0
    total_steps: int = 0
    step: int = 0

    @property
    def tuned_name(self) -> str:
        base = self.model.split(":")[1] if self.model.startswith("ft:") else self.model
        return f"ft:{base}:{ORGANIZATION}:{self.suffix or ''}:{self.id[-8:]}"

    def event(self, when: float, message: str, *, level: str = "info", data: dict[str, Any] | None = None) -> None:
        kind = "metrics" if data is not None else "message"
        self.events.append(
            {
                "object": "fine_tuning.job.event",
                "id": new_id("ftevent-"),
                "created_at": int(when),
                "level": level,
                "message": message,
                "data": data or {},
                "type": kind,
            }
        )

    async def validate(self, when: float, _: Call) -> None:
        files = [("training", self.training)] + ([] if self.validation is None else [("validation", self.validation)])
        datasets = {}
        for which, data in files:
            try:
                datasets[which] = read_dataset(data, self.method)
            except BadDataset as problem:
                self.fail(when, which, str(problem))
                return
        dataset = datasets["training"]
        self.hyperparameters = resolve(self.hyperparameters)
        self.tokens_per_epoch = dataset.tokens
        self.steps_per_epoch = math.ceil(dataset.examples / self.hyperparameters["batch_size"])
        self.total_steps = self.steps_per_epoch * self.hyperparameters["n_epochs"]
        self.status = "queued"
        self.event(when, "Files validated, moving job to queued state")
        self.timeline.at(when + self.settings.tune_queued, self.start)

    def fail(self, when: float, which: str, message: str) -> None:
        text = f"The job failed due to an invalid {which} file. {message}"
        self.error = {"code": f"invalid_{which}_file", "message": text, "param": f"{which}_file"}
        self.status, self.finished_at = "failed", int(when)
        self.event(when, text, level="error")
        self.timeline.clear()

    async def start(self, when: float, _: Call) -> None:
        self.status = "running"
        self.estimated_finish = int(when + self.total_steps * self.settings.tune_per_step)
        self.event(when, "Fine-tuning job started")
        self.timeline.at(when + self.settings.tune_per_step, self.advance)

    async def advance(self, when: float, call: Call) -> None:
        self.step += 1
        values = metrics(self.step, self.total_steps, self.validation is not None)
        self.event(when, f"Step {self.step}/{self.total_steps}: training loss={values['train_loss']}", data=values)
        if self.step % self.steps_per_epoch == 0:
            self.checkpoint(when, values)
        if self.step < self.total_steps:
            self.timeline.at(when + self.settings.tune_per_step, self.advance)
        else:
            self.succeed(when, store_of(call.request))

    def checkpoint(self, when: float, values: dict[str, float]) -> None:
        full = {f"full_{name}": value for name, value in values.items() if name.startswith("valid_")}
        self.checkpoints.append(
            {
                "object": "fine_tuning.job.checkpoint",
                "id": new_id("ftckpt_"),
                "created_at": int(when),
                "fine_tuned_model_checkpoint": f"{self.tuned_name}:ckpt-step-{self.step}",
                "fine_tuning_job_id": self.id,
                "metrics": {**values, **full},
                "step_number": self.step,
            }
        )
        self.event(when, f"Checkpoint created at step {self.step}")

    def succeed(self, when: float, store: Store) -> None:
        csv = results_csv(self.total_steps, self.validation is not None)
        self.result_files = [store.add_file(csv, "step_metrics.csv", "fine-tune-results", int(when)).id]
        self.fine_tuned_model = self.tuned_name
        store.models.append(self.tuned_name)
        self.trained_tokens = self.tokens_per_epoch * int(self.hyperparameters["n_epochs"])
        self.status, self.finished_at, self.estimated_finish = "succeeded", int(when), None
        self.event(when, f"New fine-tuned model created: {self.tuned_name}")
        self.event(when, "The job has successfully completed")

    def cancel(self, now: float) -> None:
        self.status, self.finished_at, self.estimated_finish = "cancelled", int(now), None
        self.event(now, "Fine-tuning job cancelled")
        self.timeline.clear()

    def as_json(self) -> dict[str, Any]:
        shared = {name: self.hyperparameters.get(name) for name in RANGES}
        return {
            "object": "fine_tuning.job",
            "id": self.id,
            "model": self.model,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "fine_tuned_model": self.fine_tuned_model,
            "organization_id": f"org-{ORGANIZATION}",
            "result_files": self.result_files,
            "status": self.status,
            "validation_file": self.validation_file,
            "training_file": self.training_file,
            "hyperparameters": shared,
            "trained_tokens": self.trained_tokens,
            "error": self.error,
            "user_provided_suffix": self.suffix,
            "seed": self.seed,
            "estimated_finish": self.estimated_finish,
            "integrations": [],
            "metadata": self.metadata,
            "method": {"type": self.method, self.method: {"hyperparameters": self.hyperparameters}},
        }


def _file(store: Store, body: dict[str, Any], param: str, *, required: bool) -> tuple[str, bytes] | None:
    """(id, bytes) of a fine-tune file the job names; its bytes are read now, as a deleted file must not matter."""
    file_id = require(body, param, str) if required else body.get(param)
    if file_id is None:
        return None
    stored = store.files.get(str(file_id))
    if stored is None:
        raise InvalidRequest(f"invalid {param} {file_id!r}: no such file")
    if stored.purpose != "fine-tune":
        raise InvalidRequest(f"invalid {param} {file_id!r}: its purpose is {stored.purpose!r}, not 'fine-tune'")
    return stored.id, stored.data


async def create_job(call: Call) -> Response:
    store = await settle(call)
    model = require(call.body, "model", str)
    training = _file(store, call.body, "training_file", required=True)
    validation = _file(store, call.body, "validation_file", required=False)
    assert training is not None  # required
    method, hyperparameters = method_of(call.body)
    seed = call.body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidRequest("'seed' must be an integer")
    now = call.controls.clock.now()
    job = FineTune(
        id=new_id("ftjob-"),
        created_at=int(now),
        settings=dataclasses.replace(store.settings),
        model=model,
        training_file=training[0],
        validation_file=validation[0] if validation else None,
        training=training[1],
        validation=validation[1] if validation else None,
        method=method,
        hyperparameters=hyperparameters,
        suffix=suffix_of(call.body),
        seed=secrets.randbelow(2**31) if seed is None else seed,
        metadata=metadata_of(call.body),
    )
    job.event(now, f"Created fine-tuning job: {job.id}")
    job.event(now, f"Validating training file: {job.training_file}")
    job.timeline.at(now + job.settings.tune_validating, job.validate)
    store.jobs[job.id] = job
    return JSONResponse(job.as_json())


async def list_jobs(call: Call) -> Response:
    store = await settle(call)
    # The SDK sends a metadata filter as metadata[key]=value query parameters.
    wanted = {key[9:-1]: value for key, value in call.request.query_params.items() if key.startswith("metadata[")}
    jobs = store.of_kind(FineTune)[::-1]
    chosen = [job for job in jobs if all((job.metadata or {}).get(k) == v for k, v in wanted.items())]
    return page(call, [job.as_json() for job in chosen], (20, 100))


async def _job(call: Call) -> FineTune | Response:
    job_id = str(call.request.path_params["job_id"])
    job = (await settle(call)).find(FineTune, job_id)
    return job if job is not None else not_found("fine-tuning job", job_id)


async def retrieve_job(call: Call) -> Response:
    job = await _job(call)
    return job if isinstance(job, Response) else JSONResponse(job.as_json())


async def cancel_job(call: Call) -> Response:
    job = await _job(call)
    if isinstance(job, Response):
        return job
    if job.status in UNFINISHED:
        job.cancel(call.controls.clock.now())
    elif job.status != "cancelled":
        return conflict("fine-tuning job", job.status)
    return JSONResponse(job.as_json())


async def list_events(call: Call) -> Response:
    job = await _job(call)
    return job if isinstance(job, Response) else page(call, job.events[::-1], (20, 100))


async def list_checkpoints(call: Call) -> Response:
    job = await _job(call)
    return job if isinstance(job, Response) else page(call, job.checkpoints[::-1], (10, 100))


def routes() -> list[BaseRoute]:
    jobs, by_id = "/v1/fine_tuning/jobs", "/v1/fine_tuning/jobs/{job_id}"
    return [
        Route(jobs, endpoint(DIALECT, "fine_tuning.jobs.create", create_job), methods=["POST"]),
        Route(jobs, endpoint(DIALECT, "fine_tuning.jobs.list", list_jobs), methods=["GET"]),
        Route(by_id, endpoint(DIALECT, "fine_tuning.jobs.retrieve", retrieve_job), methods=["GET"]),
        Route(by_id + "/cancel", endpoint(DIALECT, "fine_tuning.jobs.cancel", cancel_job), methods=["POST"]),
        Route(by_id + "/events", endpoint(DIALECT, "fine_tuning.jobs.events", list_events), methods=["GET"]),
        Route(
            by_id + "/checkpoints", endpoint(DIALECT, "fine_tuning.jobs.checkpoints", list_checkpoints), methods=["GET"]
        ),
    ]
