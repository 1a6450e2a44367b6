"""The two list styles of the spec, shared by every list operation.

- OpenAI cursor pagination: `limit`, `after`, `before`, `order` in; `data`, `first_id`, `last_id`, `has_more` out.
  Items sort by (created_at, id), so ids created in the same second still page deterministically.
- Portkey page pagination: `current_page` (0-based), `page_size` in; `data`, `total` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, Field
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")
Row = TypeVar("Row")


class CursorParams(BaseModel):
    limit: int = Field(20, ge=1, le=10000, description="How many objects to return (1-10000).")
    after: str | None = Field(None, description="Return objects after this id (the previous page's last_id).")
    before: str | None = Field(None, description="Return objects before this id (the next page's first_id).")
    order: Literal["asc", "desc"] = Field("desc", description="Sort by creation time: 'asc' or 'desc'.")


class CursorPage(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None
    last_id: str | None
    has_more: bool


class PageParams(BaseModel):
    # The spec names them in snake_case; the portkey-ai SDK sends camelCase for some lists (workspaces).
    current_page: int = Field(
        0, ge=0, description="Page number, from 0.", validation_alias=AliasChoices("current_page", "currentPage")
    )
    page_size: int = Field(
        50,
        ge=1,
        le=500,
        description="Objects per page (1-500).",
        validation_alias=AliasChoices("page_size", "pageSize"),
    )


class PortkeyPage(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    total: int
    data: list[T]


async def cursor_rows(
    session: AsyncSession,
    query: Select[Row],
    created_at: InstrumentedAttribute[int],
    id_column: InstrumentedAttribute[str],
    params: CursorParams,
) -> tuple[Sequence[Row], bool]:
    """One page of `query` (already filtered to the caller's workspace) and whether more follow.

    An `after`/`before` id that does not exist within the query's scope is ignored rather than leaking whether it
    exists elsewhere.
    """
    descending = params.order == "desc"
    for cursor, forward in ((params.after, True), (params.before, False)):
        if cursor is None:
            continue
        # Resolved within the query's own filters (its workspace above all): another workspace's id is no anchor.
        in_scope = query.with_only_columns(created_at).where(id_column == cursor)
        anchor = (await session.execute(in_scope)).scalar_one_or_none()
        if anchor is None:
            continue
        beyond = descending == forward  # walking toward older items
        if beyond:
            query = query.where(or_(created_at < anchor, and_(created_at == anchor, id_column < cursor)))
        else:
            query = query.where(or_(created_at > anchor, and_(created_at == anchor, id_column > cursor)))
    reverse = params.before is not None and params.after is None
    ascending = (not descending) != reverse
    ordering = (created_at.asc(), id_column.asc()) if ascending else (created_at.desc(), id_column.desc())
    rows = list((await session.execute(query.order_by(*ordering).limit(params.limit + 1))).scalars())
    has_more = len(rows) > params.limit
    rows = rows[: params.limit]
    if reverse:
        rows.reverse()
    return rows, has_more


def cursor_page(items: list[Any], has_more: bool) -> dict[str, Any]:
    return {
        "data": items,
        "first_id": items[0].id if items else None,
        "last_id": items[-1].id if items else None,
        "has_more": has_more,
    }


async def page_rows(
    session: AsyncSession, query: Select[Row], params: PageParams, *ordering: Any
) -> tuple[Sequence[Row], int]:
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    page = query.order_by(*ordering).offset(params.current_page * params.page_size).limit(params.page_size)
    return list((await session.execute(page)).scalars()), int(total)
