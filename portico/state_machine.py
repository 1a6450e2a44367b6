"""Jobs as explicit state machines (DESIGN.md §3): a transition table and a guard that refuses to leave a terminal
state. Batches and fine-tuning jobs each declare theirs as data."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from portico.errors import Conflict

S = TypeVar("S", bound=StrEnum)


class IllegalTransition(Conflict):
    """A job was asked to move where its state machine does not allow (most often: out of a terminal state)."""


@dataclass(frozen=True)
class StateMachine(Generic[S]):
    name: str
    transitions: Mapping[S, frozenset[S]]

    @property
    def terminal(self) -> frozenset[S]:
        return frozenset(state for state, onward in self.transitions.items() if not onward)

    def can(self, current: S, new: S) -> bool:
        return current == new or new in self.transitions[current]

    def check(self, current: S, new: S) -> S:
        """`new` if the machine allows it from `current` (staying put is always allowed); otherwise a 409."""
        if not self.can(current, new):
            reason = "it is finished" if current in self.terminal else f"'{new}' does not follow '{current}'"
            raise IllegalTransition(f"A {self.name} in state '{current}' cannot become '{new}': {reason}.")
        return new

    def path(self, current: S, target: S) -> list[S] | None:
        """The shortest run of allowed moves from `current` to `target`: [] when already there, None if it cannot
        be reached. Jobs polling a provider walk it, so a provider that jumps ahead (queued to succeeded between two
        polls) still passes through every state in between."""
        paths: deque[list[S]] = deque([[current]])
        seen = {current}
        while paths:
            path = paths.popleft()
            if path[-1] == target:
                return path[1:]
            for onward in sorted(self.transitions[path[-1]]):
                if onward not in seen:
                    seen.add(onward)
                    paths.append([*path, onward])
        return None
