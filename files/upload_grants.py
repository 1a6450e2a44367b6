"""One-time upload URLs: how an MCP client brings in a file larger than a tool argument can carry (4 MiB).

The tool returns `PUT <base>/portico/uploads/<token>`; the token is the credential, good for one successful upload
before it expires. Only its hash is stored. A refused upload (invalid JSONL, too large) releases the claim, so the
agent can fix the file and PUT again with the same URL.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterable

from sqlalchemy import select, update

from files import store
from files.models import CreateUploadUrlInput, FileObject, UploadUrl
from files.staging import stage
from portico.context import CallContext, Principal, Services
from portico.db.models import UploadGrant
from portico.errors import NotFound
from portico.ids import hash_secret, now
from portico.registry import operation

UPLOAD_PATH = "/portico/uploads"
_CLAIMED = "claimed"


@operation(
    name="files_create_upload_url",
    summary="Get a one-time URL to PUT a large file's bytes (no size limit of tool calls); the PUT returns the file.",
    toolset="files",
    input_model=CreateUploadUrlInput,
    output_model=UploadUrl,
    scope="completions.write",
)
async def create_upload_url(ctx: CallContext, args: CreateUploadUrlInput) -> UploadUrl:
    token = secrets.token_urlsafe(32)
    expires_at = now() + ctx.settings.upload_url_ttl_seconds
    async with ctx.services.sessions() as session, session.begin():
        session.add(
            UploadGrant(
                token_hash=hash_secret(token),
                workspace_id=ctx.workspace_id,
                api_key_id=ctx.principal.api_key_id,
                filename=args.filename,
                purpose=args.purpose.value,
                expires_at=expires_at,
            )
        )
    base = ctx.settings.public_url.rstrip("/") + "/v1" if ctx.settings.public_url else ctx.base_url
    return UploadUrl(
        upload_url=f"{base}{UPLOAD_PATH}/{token}", expires_at=expires_at, max_bytes=ctx.settings.upload_max_bytes
    )


async def _claim(services: Services, token: str) -> UploadGrant:
    """Atomically take the grant, so two concurrent PUTs cannot both upload."""
    token_hash = hash_secret(token)
    async with services.sessions() as session, session.begin():
        claimed = await session.execute(
            update(UploadGrant)
            .where(
                UploadGrant.token_hash == token_hash,
                UploadGrant.used_file_id.is_(None),
                UploadGrant.expires_at > now(),
            )
            .values(used_file_id=_CLAIMED)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound("This upload URL is unknown, expired or already used.", code="upload_url_invalid")
        return (await session.execute(select(UploadGrant).where(UploadGrant.token_hash == token_hash))).scalar_one()


async def _settle(services: Services, token_hash: str, file_id: str | None) -> None:
    async with services.sessions() as session, session.begin():
        await session.execute(
            update(UploadGrant).where(UploadGrant.token_hash == token_hash).values(used_file_id=file_id)
        )


async def receive_upload(services: Services, token: str, body: AsyncIterable[bytes]) -> FileObject:
    grant = await _claim(services, token)
    ctx = CallContext(
        principal=Principal(grant.api_key_id, "", grant.workspace_id, "upload-grant", frozenset()),
        services=services,
        workspace_id=grant.workspace_id,
    )
    try:
        staged = await stage(
            services.blobs,
            grant.workspace_id,
            body,
            filename=grant.filename,
            purpose=grant.purpose,
            max_bytes=services.settings.upload_max_bytes,
        )
        created = await store.record(ctx, staged)
    except BaseException:
        await _settle(services, grant.token_hash, None)
        raise
    await _settle(services, grant.token_hash, created.id)
    return created
