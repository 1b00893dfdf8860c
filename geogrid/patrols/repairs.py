"""补签: repairing a missed patrol.

A worker asks that a patrol of one of their cells on one day be counted: a reason, and the time they say they
were there (a photo will join it with the worker's page). Their supervisor approves or refuses it with a note.
An approved repair counts for the patrol rule of that cell and day (``coverage.repairs``, geogrid.patrols.compute)
and is shown as repaired; it is never a visit and never part of the covered fraction. A worker may ask for at most
``GEOGRID_REPAIR_LIMIT`` repairs (pending or approved) in a calendar month. Every step is audited (migration 0016).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.errors import Conflict, InvalidInput, NotFound
from geogrid.grids import hierarchy
from geogrid.patrols.compute import PATROL_DUTIES, day_moment, day_window

#: The earliest day a repair may be asked for (before it, no patrol system ran).
FIRST_DAY = dt.date(2000, 1, 1)
_COLUMNS = ("id, person_id, grid_code, day, claimed_at, reason, status, requested_by, requested_at, decided_by, "
            "decided_at, note")  # fmt: skip


def request_repair(conn: Connection, settings: Settings, *, person_id: int, grid_code: str, day: dt.date,
                   claimed_at: dt.datetime, reason: str, actor: str) -> dict:  # fmt: skip
    """Ask that *person_id*'s patrol of *grid_code* on *day* be counted; the new request (pending)."""
    if not reason.strip():
        raise InvalidInput("a repaired patrol (补签) needs a reason")
    if not 0 < person_id < 2**63:
        raise NotFound("no person {person_id}", person_id=person_id)
    today = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    if not FIRST_DAY <= day <= today:
        raise InvalidInput("a repaired patrol (补签) is for a day from {first} to today", first=FIRST_DAY.isoformat())
    start, end = day_window(settings, day)
    if not start <= claimed_at < end:
        raise InvalidInput("the time of the patrol must be on {day}", day=day.isoformat())
    if claimed_at > dt.datetime.now(dt.UTC):
        raise InvalidInput("the time of the patrol is still to come")
    at = day_moment(settings, day)
    held = conn.execute(sa.text(f"""
        SELECT 1 FROM assignments a
         WHERE a.person_id = :person AND a.duty = ANY(:duties) AND {hierarchy.valid_at("a")}
           AND :code IN (SELECT geogrid_subtree(ARRAY[a.grid_code], CAST(:at AS timestamptz)))
         LIMIT 1
    """), {"person": person_id, "duties": list(PATROL_DUTIES), "code": grid_code, "at": at}).first()  # fmt: skip
    if held is None:
        raise InvalidInput("{code} was not one of this worker's cells to patrol on {day}", code=grid_code,
                           day=day.isoformat())  # fmt: skip
    # One month's repairs at a time per worker: the limit is checked under a lock on the worker.
    conn.execute(sa.text("SELECT 1 FROM people WHERE id = :p FOR UPDATE"), {"p": person_id})
    month = day.replace(day=1)
    used = conn.execute(sa.text("""
        SELECT count(*) FROM patrol_repairs WHERE person_id = :p AND status IN ('pending', 'approved')
           AND day >= :month AND day < (CAST(:month AS date) + interval '1 month')
    """), {"p": person_id, "month": month}).scalar_one()  # fmt: skip
    if used >= settings.repair_limit:
        raise Conflict("{used} repaired patrols (补签) are already asked for in {month}: the limit is {limit} a month",
                       used=used, month=month.strftime("%Y-%m"), limit=settings.repair_limit)  # fmt: skip
    row = conn.execute(sa.text(f"""
        INSERT INTO patrol_repairs (person_id, grid_code, day, claimed_at, reason, requested_by)
        VALUES (:p, :code, :day, :at, :reason, :actor)
        ON CONFLICT (person_id, grid_code, day) DO NOTHING
        RETURNING {_COLUMNS}
    """), {"p": person_id, "code": grid_code, "day": day, "at": claimed_at, "reason": reason.strip(),
           "actor": actor}).mappings().first()  # fmt: skip
    if row is None:
        raise Conflict("a repaired patrol (补签) of {code} on {day} is already asked for", code=grid_code,
                       day=day.isoformat())  # fmt: skip
    return _plain(row)


def decide_repair(conn: Connection, repair_id: int, *, approve: bool, note: str, actor: str) -> dict:
    """Approve or refuse a pending request (409 when it was decided already)."""
    row = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM patrol_repairs WHERE id = :id FOR UPDATE"),
                       {"id": repair_id}).mappings().first()  # fmt: skip
    if row is None:
        raise NotFound("no repaired patrol (补签) {repair_id}", repair_id=repair_id)
    if row["status"] != "pending":
        raise Conflict("repaired patrol (补签) {repair_id} is {status} already", repair_id=repair_id,
                       status=row["status"])  # fmt: skip
    row = conn.execute(sa.text(f"""
        UPDATE patrol_repairs SET status = :status, decided_by = :actor, decided_at = clock_timestamp(), note = :note
         WHERE id = :id RETURNING {_COLUMNS}
    """), {"id": repair_id, "status": "approved" if approve else "refused", "actor": actor,
           "note": note}).mappings().one()  # fmt: skip
    return _plain(row)


def get_repair(conn: Connection, repair_id: int) -> dict:
    """One request; a 404 when there is none."""
    row = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM patrol_repairs WHERE id = :id"),
                       {"id": repair_id}).mappings().first()  # fmt: skip
    if row is None:
        raise NotFound("no repair request {id}", id=repair_id)
    return _plain(row)


def list_repairs(conn: Connection, *, person_id: int | None = None, status: str | None = None,
                 limit: int = 200) -> list[dict]:  # fmt: skip
    """Requests, newest first (one worker's; in one state), with their photos' ids (``/api/photos/<id>``)."""
    rows = conn.execute(sa.text(f"""
        SELECT {", ".join("r." + c.strip() for c in _COLUMNS.split(","))}, p.name AS person,
               ARRAY(SELECT f.id FROM photos f WHERE f.repair_id = r.id ORDER BY f.id) AS photos
          FROM patrol_repairs r JOIN people p ON p.id = r.person_id
         WHERE (CAST(:p AS bigint) IS NULL OR r.person_id = :p) AND (CAST(:s AS text) IS NULL OR r.status = :s)
         ORDER BY r.requested_at DESC, r.id DESC LIMIT :limit
    """), {"p": person_id, "s": status, "limit": limit}).mappings()  # fmt: skip
    return [_plain(r) for r in rows]


def _plain(row) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(row).items()}
