"""The audit trail: who changed which records when (written by triggers, migration 0007)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.errors import InvalidInput

#: Tables whose changes the trail records (and the column naming each row).
AUDITED_TABLES = ("grids", "people", "assignments", "users", "api_tokens", "incidents", "incident_events",
                  "patrol_tracks", "gps_fixes", "sign_in_events", "patrol_repairs", "photos")  # fmt: skip


def audit_entries(conn: Connection, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
                  actor: str | None = None, table: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[dict]:  # fmt: skip
    """Entries of the trail, newest first, filtered by time, actor and table."""
    if table is not None and table not in AUDITED_TABLES:
        raise InvalidInput(
            "unknown table {table!r}; audited tables are {AUDITED_TABLES}",
            table=table,
            AUDITED_TABLES=", ".join(AUDITED_TABLES),
        )
    if not 1 <= limit <= 1000 or offset < 0:
        raise InvalidInput("limit must be 1..1000 and offset at least 0")
    rows = conn.execute(
        sa.text(
            """
            SELECT id, at, actor, table_name AS table, operation, row_count, keys
              FROM audit_log
             WHERE (CAST(:since AS timestamptz) IS NULL OR at >= :since)
               AND (CAST(:until AS timestamptz) IS NULL OR at < :until)
               AND (CAST(:actor AS text) IS NULL OR actor = :actor)
               AND (CAST(:table AS text) IS NULL OR table_name = :table)
             ORDER BY id DESC LIMIT :limit OFFSET :offset
            """
        ),
        {"since": since, "until": until, "actor": actor, "table": table, "limit": limit, "offset": offset},
    ).mappings()
    return [{**r, "at": r["at"].isoformat()} for r in rows]
