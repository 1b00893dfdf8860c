"""Backups: ``pg_dump`` of the geogrid database to one file, ``pg_restore`` back, with a fingerprint.

The fingerprint (row counts of every table and a checksum of the grids' codes,
versions and shapes) is printed by both, so a restore can be checked against the
backup it came from.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from geogrid.config import Settings
from geogrid.errors import GeogridError, InvalidInput
from geogrid.store.db import database_url, make_engine
from geogrid.store.embedded import choose_install

#: Tables whose rows a fingerprint counts.
TABLES = ("grids", "people", "assignments", "users", "api_tokens", "incidents", "incident_events",
          "patrol_tracks", "gps_fixes", "coverage", "audit_log")  # fmt: skip


class BackupFailed(GeogridError):
    """pg_dump or pg_restore failed."""


def fingerprint(settings: Settings, database: str | None = None) -> dict:
    """Row counts per table and an md5 over the grids (code, version, validity, geometry)."""
    engine = make_engine(settings, start=True, database=database)
    try:
        with engine.connect() as conn:
            out = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
            out["grids_md5"] = conn.execute(sa.text(
                "SELECT md5(coalesce(string_agg(code || ':' || version || ':' || valid_from || ':' "
                "|| coalesce(valid_to::text, '') || ':' || encode(ST_AsBinary(geom), 'hex'), ',' "
                "ORDER BY code, version), '')) FROM grids"
            )).scalar_one()  # fmt: skip
    finally:
        engine.dispose()
    return out


def backup(settings: Settings, path: Path) -> dict:
    """Dump the database to *path* (custom format); returns its fingerprint."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInput("{path} is a folder; give a file name for the backup", path=path)
    url = database_url(settings, start=True)
    _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(path), _libpq(url)], "pg_dump")
    return fingerprint(settings)


def restore(settings: Settings, path: Path, *, replace: bool = False, database: str | None = None) -> dict:
    """Load a backup as the database (or *database* on the same server); returns the fingerprint.

    The database is dropped and made anew first (partitioned tables cannot be cleaned
    object by object), so a restore never mixes old and restored rows; one that holds
    grids is only replaced with *replace*. Connections to it are closed.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput("no backup file {path}", path=path)
    if not replace and _holds_grids(settings, database):
        raise InvalidInput("the database already holds grids; restore with --replace to overwrite it")
    url = database_url(settings, start=True, database=database)
    if not re.fullmatch(r"[A-Za-z0-9_-]+", url.database or ""):
        raise InvalidInput("cannot restore into a database named {database!r}", database=url.database)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    except sa.exc.DBAPIError as err:
        raise BackupFailed(f"cannot make the database {url.database} anew: {err.orig}") from None
    finally:
        admin.dispose()
    _run([_tool("pg_restore"), "--no-owner", "--single-transaction", "--exit-on-error", "--dbname", _libpq(url),
          str(path)], "pg_restore")  # fmt: skip
    return fingerprint(settings, database)


def _holds_grids(settings: Settings, database: str | None) -> bool:
    try:
        return fingerprint(settings, database)["grids"] > 0
    except sa.exc.DBAPIError:
        return False  # no schema yet (or no database): nothing to lose


def _tool(name: str) -> str:
    return choose_install().tool(name)


def _libpq(url: URL) -> str:
    """A libpq connection URI for *url* (drops the SQLAlchemy driver; keeps a socket ``host``)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise BackupFailed(f"{what} failed: {lines[-1] if lines else f'exit code {result.returncode}'}")
