"""The two ways a batch runs, behind one small protocol, chosen by a dict lookup on `BatchRow.mode`.

- `managed`: Portico splits the input into chunks and sends every line through the gateway from the arq workers
  (`batch.managed`): `completion_window: "immediate"`, routing configs, and providers without a batch API.
- `native`: the provider's own batch API runs the job and Portico stages the input, polls, and converts the output
  back (`batch.native`): OpenAI, Bedrock and Vertex with `completion_window: "24h"`.
"""

from __future__ import annotations

from typing import Protocol

from batch.models import RequestCounts
from portico.context import Services
from portico.db.batches import BatchRow


class BatchMode(Protocol):
    async def start(self, services: Services, row: BatchRow) -> None:
        """Queue the first step of a freshly created batch (idempotent: deterministic job ids)."""
        ...

    async def cancel(self, services: Services, row: BatchRow) -> None:
        """The row is now `cancelling`: stop new work; a later step moves it to `cancelled` keeping what finished."""
        ...

    async def live_counts(self, services: Services, row: BatchRow) -> RequestCounts | None:
        """Request counts fresher than the row's, while the batch runs (None: the row's are current)."""
        ...


def modes() -> dict[str, BatchMode]:
    # Imported here: each mode's package imports the gateway and its own jobs, which import this module's users.
    from batch.managed.mode import MANAGED
    from batch.native.mode import NATIVE

    return {"managed": MANAGED, "native": NATIVE}
