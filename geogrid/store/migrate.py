"""Apply the Alembic migrations: the only way geogrid's schema is created or changed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection) -> Config:
    """An Alembic config bound to *connection* (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Bring the database to *revision* in one transaction; returns (before, after)."""
    with engine.begin() as conn:
        before = current_revision(conn)
        command.upgrade(alembic_config(conn), revision)
        return before, current_revision(conn) or ""


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at, or None for an empty database."""
    return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision shipped with this version of geogrid."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """What autogenerate compares: not the day partitions of ``gps_fixes`` (made at run time)."""
    from geoalchemy2 import alembic_helpers

    table = obj if type_ == "table" else getattr(obj, "table", None)
    if reflected and compare_to is None and table is not None and table.name.startswith("gps_fixes_"):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)
