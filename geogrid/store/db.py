"""Engines and units of work: the only place geogrid opens database connections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from geogrid.config import Settings
from geogrid.errors import DatabaseUnavailable
from geogrid.store.embedded import EmbeddedCluster

#: What a unit of work can be bound to: an engine, or (in tests) an open connection.
Bind = Engine | Connection


def database_url(settings: Settings, start: bool = False, database: str | None = None) -> URL:
    """The SQLAlchemy URL geogrid connects to.

    ``GEOGRID_DATABASE_URL`` when set; else the embedded cluster, started first when
    *start* is true. *database* names another database on the same server.
    """
    if settings.database_url:
        url = make_url(settings.database_url)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
    else:
        cluster = EmbeddedCluster(settings.home)
        status = cluster.up() if start else cluster.status()
        url = make_url(status.sqlalchemy_url())
    return url.set(database=database) if database else url


def make_engine(settings: Settings, start: bool = False, database: str | None = None, *,
                actor: str | None = None) -> Engine:  # fmt: skip
    """One engine per process and database, with the statement timeout applied.

    *actor* names whoever makes the changes through this engine in the audit trail
    (the CLI: ``cli:<os user>``); a unit of work can name someone else for its transaction.
    """
    url = database_url(settings, start=start, database=database)
    options = "-c timezone=UTC"
    if settings.statement_timeout_ms:
        options += f" -c statement_timeout={settings.statement_timeout_ms}"
    if actor:
        options += f" -c {ACTOR_SETTING}={_option_value(actor)}"
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"options": options}, future=True)


#: The setting the audit triggers read to name who made a change (migration 0007).
ACTOR_SETTING = "geogrid.actor"


def _option_value(text: str) -> str:
    """*text* as one value of libpq's ``options`` (spaces and backslashes escaped)."""
    return text.replace("\\", "\\\\").replace(" ", "\\ ")


@contextmanager
def unit_of_work(bind: Bind, *, actor: str | None = None) -> Iterator[Connection]:
    """One transaction: commits when the block ends, rolls back on any error.

    Given an engine, a connection is checked out for the block. Given a connection
    already in a transaction (the test fixtures do this), the block runs in a
    savepoint inside it, so the caller's rollback undoes everything. *actor* names
    who makes this transaction's changes in the audit trail.
    """
    if isinstance(bind, Engine):
        try:
            conn = bind.connect()
        except sa.exc.OperationalError as exc:
            raise DatabaseUnavailable("cannot reach the database: {orig}", orig=exc.orig) from exc
        with conn, conn.begin():
            set_actor(conn, actor)
            yield conn
    else:
        with bind.begin_nested():
            set_actor(bind, actor)
            yield bind


def set_actor(conn: Connection, actor: str | None) -> None:
    """Name *actor* as the author of this transaction's changes (nothing when None)."""
    if actor is not None:
        conn.execute(sa.text("SELECT set_config(:name, :actor, true)"), {"name": ACTOR_SETTING, "actor": actor})


def server_versions(conn: Connection) -> dict[str, str]:
    """PostgreSQL and PostGIS versions of the connected server."""
    pg = conn.execute(sa.text("SHOW server_version")).scalar_one()
    postgis = conn.execute(sa.text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")).scalar()
    full = conn.execute(sa.text("SELECT postgis_full_version()")).scalar() if postgis else None
    return {"postgresql": pg, "postgis": postgis or "not installed", "postgis_full": full or ""}


@contextmanager
def transaction_settings(conn: Connection, **values: str) -> Iterator[None]:
    """PostgreSQL settings for the statements inside, restored after (the caller's transaction goes on).

    Not restored when the block fails: the transaction is aborted then, and its rollback
    (or the savepoint's) undoes the settings anyway, while a statement now would hide the error.
    """
    before = {n: conn.execute(sa.text("SELECT current_setting(:n)"), {"n": n}).scalar() for n in values}
    for n, value in values.items():
        conn.execute(sa.text("SELECT set_config(:n, :v, true)"), {"n": n, "v": value})
    yield
    for n, value in before.items():
        conn.execute(sa.text("SELECT set_config(:n, :v, true)"), {"n": n, "v": value})
