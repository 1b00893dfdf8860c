"""The life of a case, by the standard case flow (CJ/T 315 / GB/T 30428) and the seeds' additions.

信息采集 ``reported`` -> 立案 ``accepted`` (or 不予立案 ``rejected``, with a reason) -> 派遣
``dispatched`` (to a department or a person; the case clock starts: the deadline of its
category at its level) -> 处置 ``in_progress`` -> 处理反馈 ``resolved`` (the handler reports
back) -> 核查 (the center or the grid worker checks on site): passed -> 结案 ``closed``,
failed -> 返工 ``rework`` (back to the handler, counted) -> 回访 (the return visit: satisfied
leaves it closed, unsatisfied ``reopened``).

Besides: 一级处置 ``handled_on_spot`` (the grid worker handles it at once; checked like a
reply), 上报 ``escalated`` up the levels (cell -> ... -> township -> city, optionally to a
department), 挂账 ``pending`` (beyond the center's powers: on a list with a reason and a
review date), 缓办 ``postponed`` (approved postponement until a date) and 延期 (an approved
extension of the deadline), both asked for by the handler with a reason and decided by the
center, and 督办 (a supervision notice on an overdue case, to its handler and their
superiors). Cases dispatched before 立案 existed count as accepted.

Every step is an append-only event (a step that changes no state repeats it, with the
step in ``details``); a step the flow does not allow from the current state is a 409.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.errors import Conflict, InvalidInput, NotFound
from geogrid.grids import hierarchy
from geogrid.incidents.taxonomy import category as find_category

#: Where each state may go next. From resolved or handled_on_spot, ``closed`` is the check
#: passing and ``rework`` it failing; the return visit reopens a closed case.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "reported": ("accepted", "rejected", "dispatched", "handled_on_spot", "escalated", "in_progress"),
    "accepted": ("dispatched", "handled_on_spot", "escalated", "in_progress", "pending"),
    "dispatched": ("in_progress", "resolved", "escalated", "pending"),
    "in_progress": ("resolved", "escalated", "pending"),
    "escalated": ("dispatched", "in_progress", "escalated", "resolved", "pending"),
    "reopened": ("dispatched", "in_progress", "escalated"),
    "rework": ("in_progress", "resolved", "escalated"),
    "resolved": ("closed", "rework"),
    "handled_on_spot": ("closed", "rework"),
    "pending": ("accepted", "dispatched"),
    "postponed": ("dispatched", "in_progress"),
    "closed": (),
    "rejected": (),
}
#: States in which the clock no longer runs (the handler's part is done, or the case is off the clock).
DONE = ("resolved", "handled_on_spot", "closed", "rejected", "pending", "postponed")
#: States that ask for a reason in the note.
NEEDS_REASON = ("rejected", "rework", "pending")
#: Kinds of more time a handler may ask for: 延期 (a later deadline) and 缓办 (postponed until a date).
DELAYS = ("extend", "postpone")
#: Above the top level of the grid hierarchy sits the city platform.
CITY = "city"
VISIT_METHODS = ("phone", "visit")
#: Departments a case is commonly dispatched to (the page offers them; any name is accepted).
DEPARTMENTS = ("城管", "住建", "交通", "水务", "环卫", "市场监管", "卫健", "应急管理", "公安", "供电", "燃气")


#: The steps a grid worker takes on their own cases from their phone, and how the case must be theirs: 接单
#: (``in_progress``) and 处理反馈 (``resolved``) as its handler, 一级处置 (``handled_on_spot``) on one they reported.
WORKER_STEPS = {"in_progress": "handler", "resolved": "handler", "handled_on_spot": "reporter"}


def worker_standing(conn: Connection, incident_id: int, person_id: int | None, user: str) -> set[str]:
    """How a grid worker stands to a case: ``handler`` (dispatched to them), ``reporter`` (they registered it),
    both, or neither; a case that does not exist is a 404."""
    row = conn.execute(
        sa.text(
            """
            SELECT i.handler_person_id IS NOT DISTINCT FROM CAST(:person AS bigint) AND :person IS NOT NULL,
                   EXISTS (SELECT 1 FROM incident_events e
                            WHERE e.incident_id = i.id AND e.from_status IS NULL AND e.actor = :user)
              FROM incidents i WHERE i.id = :id
            """
        ),
        {"id": incident_id, "person": person_id, "user": user},
    ).first()
    if row is None:
        raise NotFound("no incident {incident_id}", incident_id=incident_id)
    return {name for name, held in zip(("handler", "reporter"), row, strict=True) if held}


def transition(
    conn: Connection,
    settings: Settings,
    incident_id: int,
    to: str,
    *,
    actor: str,
    note: str = "",
    department: str | None = None,
    person_id: int | None = None,
    review_at: dt.datetime | None = None,
    at: dt.datetime | None = None,
) -> dict:
    """Move an incident to state *to*; returns the event. 409 when not allowed from here.

    ``dispatched`` takes a *department* and/or a *person_id*; ``pending`` (挂账) a *review_at*;
    ``rejected``, ``rework`` and ``pending`` a reason in *note*. *at* backdates the step
    (replaying records kept elsewhere, or the demo); default now.
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
    if to in NEEDS_REASON and not note.strip():
        raise InvalidInput("{to} needs a reason in the note", to=to)
    updates: dict = {"status": to}
    details: dict = {}
    now = _moment(conn, at)
    if to == "escalated":
        level = escalation_target(conn, settings, incident)
        hours = find_category(incident["category"], settings.categories_file).hours_at(level)
        updates.update(escalation_level=level, department=department, deadline=now + dt.timedelta(hours=hours))
        details = {"level": level, "department": department, "deadline": updates["deadline"].isoformat()}
    elif to == "dispatched":
        # 派遣: to a department or a person; the case clock starts (again) with its category's hours at its level.
        if person_id is not None:
            person = conn.execute(sa.text("SELECT id, name FROM people WHERE id = :id"), {"id": person_id}).first()
            if person is None:
                raise NotFound("no person {person_id}", person_id=person_id)
            updates["handler_person_id"] = person.id
            details["person"] = {"id": person.id, "name": person.name}
        if department:
            updates["department"] = department
            details["department"] = department
        hours = find_category(incident["category"], settings.categories_file).hours_at(incident["escalation_level"])
        updates["deadline"] = now + dt.timedelta(hours=hours)
        details["deadline"] = updates["deadline"].isoformat()
    elif to == "pending":
        if review_at is None:
            raise InvalidInput("a case goes on the pending list (挂账) with a review date")
        updates["review_at"] = review_at
        details["review_at"] = review_at.isoformat()
    elif to == "closed":  # the check passed: 结案
        updates["closed_at"] = now
        details["check"] = "passed"
    elif to == "rework":  # the check failed: back to the handler, counted
        details["check"] = "failed"
    elif department:
        updates["department"] = department
        details["department"] = department
    if incident["status"] in ("pending", "postponed"):
        updates["review_at"] = None
    _apply(conn, incident_id, updates)
    return _event(conn, incident_id, actor, incident["status"], to, note, details, now)


def request_delay(conn: Connection, incident_id: int, *, actor: str, kind: str, reason: str,
                  hours: float | None = None, until: dt.datetime | None = None,
                  at: dt.datetime | None = None) -> dict:  # fmt: skip
    """A handler asks for more time (延期: *hours* more; 缓办: postponed *until*), with a *reason*.

    The center decides with :func:`decide_delay`; one request at a time."""
    if kind not in DELAYS:
        raise InvalidInput("more time is {DELAYS}, not {kind!r}", DELAYS=" or ".join(DELAYS), kind=kind)
    if not reason.strip():
        raise InvalidInput("a request for more time needs a reason")
    incident = _lock(conn, incident_id)
    if incident["status"] in DONE or incident["status"] in ("reported", "accepted"):
        raise Conflict(
            "incident {incident_id} is {status}: more time is asked for while it is being handled",
            current_status=incident["status"], incident_id=incident_id, status=incident["status"],
        )  # fmt: skip
    if open_delay(conn, incident_id) is not None:
        raise Conflict("incident {incident_id} already has a request for more time waiting for a decision",
                       incident_id=incident_id)  # fmt: skip
    details: dict = {"step": "delay_requested", "kind": kind}
    if kind == "extend":
        if hours is None or not 0 < hours <= 24 * 365:
            raise InvalidInput("an extension (延期) is a number of hours, more than 0 and at most a year")
        details["hours"] = hours
    else:
        now = _moment(conn, None)
        if until is None or until <= now:
            raise InvalidInput("a postponement (缓办) needs a date to resume, after now")
        details["until"] = until.isoformat()
    status = incident["status"]
    return _event(conn, incident_id, actor, status, status, reason, details, _moment(conn, at))


def decide_delay(conn: Connection, incident_id: int, *, actor: str, approve: bool, note: str = "",
                 at: dt.datetime | None = None) -> dict:  # fmt: skip
    """The center approves or refuses the open request: an approved 延期 moves the deadline, an
    approved 缓办 takes the case off the clock (``postponed``) until its date."""
    if not isinstance(approve, bool):
        raise InvalidInput("'approve' must be true or false")
    incident = _lock(conn, incident_id)
    request = open_delay(conn, incident_id)
    if request is None:
        raise Conflict("incident {incident_id} has no request for more time to decide", incident_id=incident_id)
    status, now = incident["status"], _moment(conn, at)
    details: dict = {"step": "delay_approved" if approve else "delay_refused", "request": request["id"],
                     "kind": request["details"]["kind"]}  # fmt: skip
    to = status
    if approve and request["details"]["kind"] == "extend":
        deadline = (incident["deadline"] or now) + dt.timedelta(hours=float(request["details"]["hours"]))
        _apply(conn, incident_id, {"deadline": deadline})
        details["deadline"] = deadline.isoformat()
    elif approve:
        to = "postponed"
        until = dt.datetime.fromisoformat(request["details"]["until"])
        _apply(conn, incident_id, {"status": to, "review_at": until})
        details["until"] = until.isoformat()
    return _event(conn, incident_id, actor, status, to, note, details, now)


def open_delay(conn: Connection, incident_id: int) -> dict | None:
    """The request for more time still waiting for a decision, or None."""
    row = conn.execute(sa.text(
        "SELECT r.id, r.details, r.actor, r.at, r.note AS reason FROM incident_events r "
        "WHERE r.incident_id = :i AND r.details->>'step' = "
        "'delay_requested' AND NOT EXISTS (SELECT 1 FROM incident_events d WHERE d.incident_id = r.incident_id "
        "AND (d.details->>'request')::bigint = r.id) ORDER BY r.id DESC LIMIT 1"
    ), {"i": incident_id}).mappings().first()  # fmt: skip
    return dict(row) if row else None


def supervise(conn: Connection, incident_id: int, *, actor: str, note: str = "", at: dt.datetime | None = None) -> dict:
    """督办: a supervision notice on an overdue case to its handler and their superiors; 409 when not overdue."""
    incident = _lock(conn, incident_id)
    now = _moment(conn, at)
    if incident["status"] in DONE or incident["deadline"] is None or incident["deadline"] >= now:
        raise Conflict("incident {incident_id} is not overdue: supervision (督办) is for cases past their deadline",
                       incident_id=incident_id)  # fmt: skip
    people = responsible_people(conn, incident["grid_id"])
    handler = None
    if incident["handler_person_id"] is not None:
        handler = conn.execute(sa.text("SELECT id, name, phone FROM people WHERE id = :id"),
                               {"id": incident["handler_person_id"]}).mappings().first()  # fmt: skip
    cell = [p for p in people if p["grid_code"] == (people[0]["grid_code"] if people else None)]
    above = [p for p in people if p not in cell and p["duty"] in ("grid_chief", "grid_manager")]
    to_whom = ([dict(handler)] if handler else cell) + above[:3]
    details = {"step": "supervised", "department": incident["department"],
               "to": [{"id": p["id"], "name": p["name"], "phone": p["phone"]} for p in to_whom],
               "overdue_hours": round((now - incident["deadline"]).total_seconds() / 3600, 1)}  # fmt: skip
    status = incident["status"]
    return _event(conn, incident_id, actor, status, status, note, details, now)


def return_visit(
    conn: Connection, incident_id: int, *, actor: str, method: str, satisfied: bool, note: str = "",
    at: dt.datetime | None = None,
) -> dict:  # fmt: skip
    """Record the return visit (回访) after 结案 (or after a reply or on-the-spot handling, where the visit is
    the check): satisfied closes the case (or leaves it closed), unsatisfied reopens it (*at*: as above)."""
    if method not in VISIT_METHODS:
        raise InvalidInput(
            "a return visit is by {VISIT_METHODS}, not {method!r}",
            VISIT_METHODS=" or ".join(VISIT_METHODS),
            method=method,
        )
    if not isinstance(satisfied, bool):
        raise InvalidInput("'satisfied' must be true or false")
    incident = _lock(conn, incident_id)
    if incident["status"] not in ("resolved", "handled_on_spot", "closed"):
        raise Conflict(
            "incident {incident_id} is {status}: a return visit follows closed, resolved or handled_on_spot",
            current_status=incident["status"],
            incident_id=incident_id,
            status=incident["status"],
        )
    to = "closed" if satisfied else "reopened"
    updates: dict = {"status": to}
    now = _moment(conn, at)
    if satisfied and incident["status"] != "closed":
        updates["closed_at"] = now
    elif not satisfied:
        updates["closed_at"] = None
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
                "SELECT id, status, category, grid_id, escalation_level, department, deadline, handler_person_id "
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
