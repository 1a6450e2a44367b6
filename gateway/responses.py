"""The Responses API (`/responses*`, 4 operations), served by any provider through chat completions.

Portico stores each response (unless `store: false`) with the conversation that led to it, so a later request's
`previous_response_id` continues it whichever provider answers, and `/input_items` lists what was sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select

from gateway.inference import ChatBody, InferenceCall, checked, complete_chat, read_inference
from gateway.responses_translate import chat_request, input_items, items_to_messages, response_object
from portico.context import CallContext
from portico.db.responses import ResponseInputItem, StoredResponse
from portico.errors import InvalidRequest, NotFound
from portico.ids import new_id, now
from portico.pagination import CursorParams
from portico.registry import operation

DATA_SCOPE = "completions.write"
Json = dict[str, Any]


class ResponseBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]]
    stream: Literal[False] = Field(False, description="Streaming Responses are not served yet; use chat streaming.")


class ResponseIdInput(BaseModel):
    response_id: str = Field(description="The response's id, e.g. 'resp_…'.")


class InputItemsInput(CursorParams, ResponseIdInput):
    order: Literal["asc", "desc"] = Field("desc", description="'asc' or 'desc' by position in the input.")


class ResponseOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["response"] = "response"
    status: str
    model: str
    output: list[dict[str, Any]]


class DeletedResponse(BaseModel):
    id: str
    object: Literal["response"] = "response"
    deleted: bool = True


class InputItemList(BaseModel):
    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


async def _stored(ctx: CallContext, response_id: str, param: str = "response_id") -> StoredResponse:
    query = select(StoredResponse).where(
        StoredResponse.id == response_id, StoredResponse.workspace_id == ctx.workspace_id
    )
    async with ctx.services.sessions() as session:
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound.object("response", response_id, param=param)
    return row


async def _history(ctx: CallContext, previous_id: Any) -> list[Json]:
    if not previous_id:
        return []
    previous = await _stored(ctx, str(previous_id), param="previous_response_id")
    return list(previous.conversation)


async def _save(ctx: CallContext, response: Json, conversation: list[Json], items: list[Json]) -> None:
    async with ctx.services.sessions() as session, session.begin():
        session.add(
            StoredResponse(
                id=response["id"],
                workspace_id=ctx.workspace_id,
                body=response,
                conversation=conversation,
                created_at=now(),
            )
        )
        await session.flush()
        session.add_all(
            ResponseInputItem(response_id=response["id"], position=i, item_id=item["id"], item=item)
            for i, item in enumerate(items)
        )


@operation(
    name="responses_create",
    summary="Create a model response (OpenAI Responses API) at any provider; continue one with previous_response_id.",
    toolset="responses",
    input_model=InferenceCall,
    output_model=None,
    scope=DATA_SCOPE,
    method="POST",
    path="/responses",
    mcp=False,
    rest_reader=read_inference,
    mcp_alternatives=("chat",),
)
async def create(ctx: CallContext, call: InferenceCall) -> Json:
    checked(ResponseBody, call.body)
    request = call.body
    items = input_items(request["input"])
    history = await _history(ctx, request.get("previous_response_id"))
    chat_body = chat_request(request, history, items)
    checked(ChatBody, chat_body)
    chat = await complete_chat(ctx, call.model_copy(update={"body": chat_body}))
    response = response_object(request, chat, new_id("resp_"))
    if request.get("store", True):
        reply = (chat.get("choices") or [{}])[0].get("message") or {"role": "assistant", "content": ""}
        conversation = [*history, *items_to_messages(items), {k: v for k, v in reply.items() if v is not None}]
        await _save(ctx, response, conversation, items)
    return response


@operation(
    name="responses_retrieve",
    summary="Get a stored response by id.",
    toolset="responses",
    input_model=ResponseIdInput,
    output_model=ResponseOut,
    scope=DATA_SCOPE,
    method="GET",
    path="/responses/{response_id}",
    read_only=True,
    idempotent=True,
    resource_uri="portico://responses/{response_id}",
)
async def retrieve(ctx: CallContext, args: ResponseIdInput) -> ResponseOut:
    return ResponseOut.model_validate((await _stored(ctx, args.response_id)).body)


@operation(
    name="responses_delete",
    summary="Delete a stored response; it can no longer be continued. Irreversible.",
    toolset="responses",
    input_model=ResponseIdInput,
    output_model=DeletedResponse,
    scope=DATA_SCOPE,
    method="DELETE",
    path="/responses/{response_id}",
    destructive=True,
    idempotent=True,
)
async def delete_response(ctx: CallContext, args: ResponseIdInput) -> DeletedResponse:
    row = await _stored(ctx, args.response_id)
    async with ctx.services.sessions() as session, session.begin():
        await session.execute(delete(ResponseInputItem).where(ResponseInputItem.response_id == row.id))
        await session.execute(delete(StoredResponse).where(StoredResponse.id == row.id))
    return DeletedResponse(id=row.id)


@operation(
    name="responses_input_items",
    summary="List the input items a stored response was created from (cursor pagination).",
    toolset="responses",
    input_model=InputItemsInput,
    output_model=InputItemList,
    scope=DATA_SCOPE,
    method="GET",
    path="/responses/{response_id}/input_items",
    read_only=True,
    idempotent=True,
)
async def list_input_items(ctx: CallContext, args: InputItemsInput) -> InputItemList:
    row = await _stored(ctx, args.response_id)
    query = select(ResponseInputItem.item).where(ResponseInputItem.response_id == row.id)
    async with ctx.services.sessions() as session:
        items = list((await session.execute(query.order_by(ResponseInputItem.position))).scalars())
    if args.order == "desc":
        items.reverse()
    ids = [item["id"] for item in items]
    start = ids.index(args.after) + 1 if args.after in ids else 0
    end = ids.index(args.before) if args.before in ids else len(items)
    if (args.after and args.after not in ids) or (args.before and args.before not in ids):
        raise InvalidRequest("The cursor is not an item of this response.", param="after" if args.after else "before")
    page = items[start:end][: args.limit]
    has_more = start + len(page) < end
    return InputItemList(
        data=page,
        first_id=page[0]["id"] if page else None,
        last_id=page[-1]["id"] if page else None,
        has_more=has_more,
    )
