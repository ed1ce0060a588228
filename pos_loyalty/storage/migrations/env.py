"""Alembic environment: runs migrations on the engine handed over by `storage.migrate`."""

from alembic import context

from pos_loyalty.storage.tables import metadata

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
