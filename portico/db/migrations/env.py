"""Alembic environment: always driven programmatically with a live connection (see `portico.db.engine`)."""

from alembic import context

# Imported to register their tables.
from portico.db import batches, credentials, fine_tuning, integrations, logs, responses  # noqa: F401
from portico.db.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
