"""Keeping the garbage collector's full collections cheap in long-lived processes (`portico serve`/`up`/`worker`).

Start-up leaves 150-200k GC-tracked objects (SQLAlchemy, pydantic, MCP, cloud SDKs, arq) that live as long as the
process. Under load, objects of requests or batch lines in flight reach the oldest generation fast enough to trigger
a full collection every few seconds, each walking all of them: ~0.1 s of one core, finding nothing, with the event
loop stopped meanwhile (bench/gateway.py, bench/batches.py). Frozen, they are no longer scanned; a full collection
then takes a few ms.
"""

from __future__ import annotations

import gc


def freeze_start_up_objects() -> None:
    """Collect once, then move every object that exists now into the permanent generation."""
    gc.collect()
    gc.freeze()
