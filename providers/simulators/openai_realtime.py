"""The OpenAI Realtime API simulator: a WebSocket at /v1/realtime?model=… speaking the JSON event protocol.

On connect it sends `session.created`; `session.update` answers `session.updated`; a user message item followed by
`response.create` streams the simulators' deterministic reply as `response.output_text.delta` events, then
`response.output_text.done` and `response.done`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from providers.simulators.behaviour import word_deltas

REPLY_PREFIX = "Simulated reply to: "


async def _send(socket: WebSocket, event_type: str, **fields: Any) -> None:
    await socket.send_text(json.dumps({"type": event_type, **fields}))


def _text_of(item: dict[str, Any]) -> str:
    parts = item.get("content") or []
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict)).strip()


async def _respond(socket: WebSocket, said: str) -> None:
    reply = REPLY_PREFIX + " ".join(said.split())[:200]
    await _send(socket, "response.created", response={"status": "in_progress"})
    for delta in word_deltas(reply):
        await _send(socket, "response.output_text.delta", delta=delta)
    await _send(socket, "response.output_text.done", text=reply)
    await _send(socket, "response.done", response={"status": "completed", "output_text": reply})


async def realtime(socket: WebSocket) -> None:
    if not socket.headers.get("authorization", "").startswith("Bearer "):
        await socket.close(code=1008, reason="missing bearer token")
        return
    model = socket.query_params.get("model", "")
    await socket.accept()
    await _send(socket, "session.created", session={"model": model})
    said = ""
    try:
        while True:
            event = json.loads(await socket.receive_text())
            kind = event.get("type")
            if kind == "session.update":
                await _send(socket, "session.updated", session={"model": model, **(event.get("session") or {})})
            elif kind == "conversation.item.create":
                said = _text_of(event.get("item") or {})
                await _send(socket, "conversation.item.created", item=event.get("item"))
            elif kind == "response.create":
                await _respond(socket, said)
            else:
                await _send(socket, "error", error={"type": "invalid_request_error", "message": f"unknown {kind}"})
    except WebSocketDisconnect:
        return


def routes() -> list[BaseRoute]:
    return [WebSocketRoute("/v1/realtime", realtime)]
