"""The life of an incident: dispatch, handle, escalate up the hierarchy, resolve, return visit.

States: reported -> dispatched -> in_progress -> resolved -> closed, with escalated
(to the level above: cell -> ... -> township -> city, optionally to a department),
handled_on_spot, and reopened when the return visit finds the resident unsatisfied.
Every transition is an append-only event; a transition the state machine does not
allow is a 409.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.errors import Conflict, InvalidInput, NotFound
from geogrid.grids import hierarchy
from geogrid.incidents.taxonomy import category as find_category

#: Where each state may go next (the return visit decides resolved/handled_on_spot -> closed/reopened).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "reported": ("dispatched", "handled_on_spot", "escalated", "in_progress"),
    "dispatched": ("in_progress", "escalated"),
    "in_progress": ("resolved", "escalated"),
    "escalated": ("dispatched", "in_progress", "escalated", "resolved"),
    "reopened": ("dispatched", "in_progress", "escalated"),
    "resolved": (),
    "handled_on_spot": (),
    "closed": (),
}
#: States in which the clock no longer runs.
DONE = ("resolved", "handled_on_spot", "closed")
#: Above the top level of the grid hierarchy sits the city platform.
CITY = "city"
VISIT_METHODS = ("phone", "visit")


def transition(
    conn: Connection,
    settings: Settings,
    incident_id: int,
    to: str,
    *,
    actor: str,
    note: str = "",
    department: str | None = None,
    at: dt.datetime | None = None,
) -> dict:
    """Move an incident to state *to*; returns the event. 409 when not allowed from here.

    *at* backdates the step (replaying records kept elsewhere, or the demo); default now.
    """
    if to not in TRANSITIONS:
        raise InvalidInput("unknown state {to!r}; states are {TRANSITIONS}", to=to, TRANSITIONS=", ".join(TRANSITIONS))
    incident = _lock(conn, incident_id)
    allowed = TRANSITIONS[incident["status"]]
    if to not in allowed:
        if incident["status"] in ("resolved", "handled_on_spot"):
            raise Conflict("incident {incident_id} is {status}: a return visit closes or reopens it, not {to}",
                           current_status=incident["status"], allowed=list(allowed), incident_id=incident_id,
                           status=incident["status"], to=to)  # fmt: skip
        raise Conflict(
            "incident {incident_id} is {status}: it can go to {next_states}, not {to}",
            current_status=incident["status"],
            allowed=list(allowed),
            incident_id=incident_id,
            status=incident["status"],
            next_states=", ".join(allowed),
            to=to,
        )
    updates: dict = {"status": to}
    details: dict = {}
    now = _moment(conn, at)
    if to == "escalated":
        level = escalation_target(conn, settings, incident)
        hours = find_category(incident["category"], settings.categories_file).hours_at(level)
        updates.update(escalation_level=level, department=department, deadline=now + dt.timedelta(hours=hours))
        details = {"level": level, "department": department, "deadline": updates["deadline"].isoformat()}
    elif department:
        updates["department"] = department
        details["department"] = department
    _apply(conn, incident_id, updates)
    return _event(conn, incident_id, actor, incident["status"], to, note, details, now)


def return_visit(
    conn: Connection, incident_id: int, *, actor: str, method: str, satisfied: bool, note: str = "",
    at: dt.datetime | None = None,
) -> dict:  # fmt: skip
    """Record the return visit (回访): satisfied closes the incident, unsatisfied reopens it (*at*: as above)."""
    if method not in VISIT_METHODS:
        raise InvalidInput(
            "a return visit is by {VISIT_METHODS}, not {method!r}",
            VISIT_METHODS=" or ".join(VISIT_METHODS),
            method=method,
        )
    if not isinstance(satisfied, bool):
        raise InvalidInput("'satisfied' must be true or false")
    incident = _lock(conn, incident_id)
    if incident["status"] not in ("resolved", "handled_on_spot"):
        raise Conflict(
            "incident {incident_id} is {status}: a return visit follows resolved or handled_on_spot",
            current_status=incident["status"],
            incident_id=incident_id,
            status=incident["status"],
        )
    to = "closed" if satisfied else "reopened"
    updates = {"status": to}
    now = _moment(conn, at)
    if satisfied:
        updates["closed_at"] = now
    _apply(conn, incident_id, updates)
    details = {"return_visit": True, "method": method, "satisfied": satisfied}
    return _event(conn, incident_id, actor, incident["status"], to, note, details, now)


def _moment(conn: Connection, at: dt.datetime | None) -> dt.datetime:
    """*at* (checked: aware, not in the future) or the transaction's now()."""
    now = conn.execute(sa.text("SELECT now()")).scalar_one()
    if at is None:
        return now
    if at.tzinfo is None or at > now:
        raise InvalidInput("a backdated step needs a time zone and may not be in the future")
    return at


def escalation_target(conn: Connection, settings: Settings, incident: dict) -> str:
    """The level above where the incident is handled now (the top level escalates to the city)."""
    chain = levels_above(conn, incident["grid_id"])
    current = incident["escalation_level"] or (chain[0] if chain else None)
    if current == CITY:
        raise Conflict("incident {id} is already at the city platform; it cannot go higher", id=incident["id"])
    if current is None or current not in chain:
        return CITY
    i = chain.index(current)
    return chain[i + 1] if i + 1 < len(chain) else CITY


def ancestry(conn: Connection, grid_id: int | None) -> list[dict]:
    """A grid version and the current grids above it: code, name, level, from the grid up."""
    return [{k: g[k] for k in ("code", "name", "level")} for g in hierarchy.ancestors(conn, grid_id)]


def levels_above(conn: Connection, grid_id: int | None) -> list[str]:
    """Levels of a grid and its ancestors, from the grid up."""
    return [g["level"] for g in ancestry(conn, grid_id)]


def responsible_people(conn: Connection, grid_id: int | None) -> list[dict]:
    """People assigned to the incident's cell and every grid above it, nearest first."""
    codes = [g["code"] for g in ancestry(conn, grid_id)]
    if not codes:
        return []
    rows = conn.execute(
        sa.text(
            "SELECT p.id, p.name, p.phone, a.duty, a.department, a.grid_code "
            "FROM assignments a JOIN people p ON p.id = a.person_id "
            "WHERE a.grid_code = ANY(:codes) AND a.valid_to IS NULL "
            "ORDER BY array_position(CAST(:codes AS text[]), a.grid_code), a.duty, p.name"
        ),
        {"codes": codes},
    ).mappings()
    return [dict(r) for r in rows]


def _lock(conn: Connection, incident_id: int) -> dict:
    row = (
        conn.execute(
            sa.text(
                "SELECT id, status, category, grid_id, escalation_level, department, deadline "
                "FROM incidents WHERE id = :id FOR UPDATE"
            ),
            {"id": incident_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("no incident {incident_id}", incident_id=incident_id)
    return dict(row)


def _apply(conn: Connection, incident_id: int, updates: dict) -> None:
    columns = ", ".join(f"{name} = :{name}" for name in updates)  # names are ours, values bound
    conn.execute(sa.text(f"UPDATE incidents SET {columns} WHERE id = :id"), {**updates, "id": incident_id})


def _event(conn, incident_id, actor, from_status, to_status, note, details, at) -> dict:
    import json

    row = conn.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, from_status, to_status, note, details) "
            "VALUES (:i, :at, :actor, :from_status, :to_status, :note, CAST(:details AS jsonb)) "
            "RETURNING id, at"
        ),
        {"i": incident_id, "at": at, "actor": actor, "from_status": from_status, "to_status": to_status,
         "note": note, "details": json.dumps(details, ensure_ascii=False)},
    ).one()  # fmt: skip
    return {
        "id": row.id, "incident_id": incident_id, "at": row.at.isoformat(), "actor": actor,
        "from": from_status, "to": to_status, "note": note, "details": details,
    }  # fmt: skip
