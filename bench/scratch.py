"""A throw-away, migrated database on the benchmark's PostGIS, dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geogrid.config import Settings
from geogrid.store.db import database_url, make_engine
from geogrid.store.migrate import upgrade


@contextmanager
def scratch_database(settings: Settings, name: str) -> Iterator[Engine]:
    """Create database *name* (replacing one left by an interrupted run), migrate it, drop it at the end."""
    admin = sa.create_engine(database_url(settings, start=True, database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(settings, database=name)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
