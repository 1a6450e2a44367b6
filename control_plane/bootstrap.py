"""First start on an empty database: an organisation, its default workspace, and an organisation admin key."""

from __future__ import annotations

import logging

from sqlalchemy import select

from control_plane.scopes import ALL_SCOPES
from portico.context import Services
from portico.db.models import ApiKey, Organisation, Workspace
from portico.ids import hash_secret, mask_key, new_api_key, new_uuid, now

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = "ws-default"


async def bootstrap(services: Services) -> str | None:
    """Create the organisation on a new database. Returns the admin key when one was generated (to print once);
    None when the database already had an organisation or the key came from `PORTICO_ADMIN_API_KEY`."""
    async with services.sessions() as session, session.begin():
        if (await session.execute(select(Organisation.id).limit(1))).first() is not None:
            return None
        stamp = now()
        organisation = Organisation(id=new_uuid(), name="Portico", created_at=stamp)
        workspace = Workspace(
            id=DEFAULT_WORKSPACE,
            slug=DEFAULT_WORKSPACE,
            organisation_id=organisation.id,
            name="Default",
            description="Created on first start.",
            is_default=True,
            metadata_={},
            usage_limits=[],
            rate_limits=[],
            created_at=stamp,
            last_updated_at=stamp,
        )
        configured = services.settings.admin_api_key
        secret = configured.get_secret_value() if configured else new_api_key()
        admin = ApiKey(
            id=new_uuid(),
            organisation_id=organisation.id,
            workspace_id=None,
            key_type="organisation-service",
            name="Organisation admin",
            description="Created on first start; holds every scope.",
            key_hash=hash_secret(secret),
            key_mask=mask_key(secret),
            creation_mode="auto",
            scopes=sorted(ALL_SCOPES),
            defaults={},
            rate_limits=[],
            alert_emails=[],
            created_at=stamp,
            last_updated_at=stamp,
        )
        session.add(organisation)
        await session.flush()
        session.add(workspace)
        await session.flush()
        session.add(admin)
    log.info("created organisation %s with default workspace %s", organisation.id, DEFAULT_WORKSPACE)
    return None if configured else secret
