"""Moving a job's row to a state its provider reports, through every state in between (DESIGN.md §3).

Batches and fine-tuning jobs keep their rows in stores of the same shape: `transition` (compare-and-set of the
status, with other columns) and `save` (other columns only). A `JobWalker` binds one kind's state machine to its
store, so a poll that finds the provider two states ahead walks the row through both, and one that finds it behind
(in_progress, then validating again) only updates the other columns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol

from portico.context import Services
from portico.state_machine import S, StateMachine


class Transition(Protocol):
    def __call__(self, services: Services, row: Any, new: Any, **changes: Any) -> Awaitable[Any]: ...


class Save(Protocol):
    def __call__(self, services: Services, row: Any, **changes: Any) -> Awaitable[None]: ...


@dataclass(frozen=True)
class JobWalker(Generic[S]):
    machine: StateMachine[S]
    transition: Transition
    save: Save
    state_of: Callable[[Any], S]

    async def walk(self, services: Services, row: Any, target: S, **changes: Any) -> None:
        """Move `row` to `target` through the states in between, the last move carrying `changes`."""
        path = self.machine.path(self.state_of(row), target)
        if not path:
            await self.save_if_changed(services, row, **changes)
            return
        for step in path[:-1]:
            await self.transition(services, row, step)
        await self.transition(services, row, path[-1], **changes)

    async def save_if_changed(self, services: Services, row: Any, **changes: Any) -> None:
        changed = {name: value for name, value in changes.items() if getattr(row, name) != value}
        if changed:
            await self.save(services, row, **changed)
