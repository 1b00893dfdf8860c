"""The command center's case board: the cases waiting at each stage of the flow, overdue first.

Queues (a case is in exactly one, or in none once it is done):
待立案 ``to_accept`` (reported), 待派遣 ``to_dispatch`` (accepted, reopened), 处置中
``handling`` (dispatched, in progress, rework, escalated), 待核查 ``to_check`` (the handler
replied, or it was handled on the spot), 待回访 ``to_visit`` (closed, no return visit since),
挂账 ``pending`` and 缓办 ``postponed``. Besides, 待审批 ``approvals``: the cases with a request
for more time (延期 or 缓办) waiting for the center's decision, whichever queue they are in.
Filters: a grid (and everything under it), a category (code, event code or class), a
department, a person.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.errors import InvalidInput
from geogrid.incidents.queries import OVERDUE

QUEUES = {
    "to_accept": ("reported",),
    "to_dispatch": ("accepted", "reopened"),
    "handling": ("dispatched", "in_progress", "rework", "escalated"),
    "to_check": ("resolved", "handled_on_spot"),
    "to_visit": ("closed",),
    "pending": ("pending",),
    "postponed": ("postponed",),
}
MAX_LIMIT = 200
#: A queue across the others: cases whose request for more time waits for a decision.
APPROVALS = "approvals"
NAMES = (*QUEUES, APPROVALS)
#: States in which a handler may ask for more time (geogrid.incidents.workflow.request_delay).
_ASKING_STATES = ("dispatched", "in_progress", "rework", "escalated", "reopened")
#: The case has a request for more time that nobody has decided yet.
_ASKING = """EXISTS (SELECT 1 FROM incident_events r WHERE r.incident_id = i.id
                     AND r.details->>'step' = 'delay_requested'
                     AND NOT EXISTS (SELECT 1 FROM incident_events d WHERE d.incident_id = i.id
                                     AND (d.details->>'request')::bigint = r.id))"""

_QUEUE = "CASE " + " ".join(
    f"WHEN i.status IN ({', '.join(repr(s) for s in states)}) THEN '{name}'" for name, states in QUEUES.items()
) + " END"  # fmt: skip
#: A closed case waits for its return visit until one is recorded after its (last) closing.
_VISITED = """EXISTS (SELECT 1 FROM incident_events v WHERE v.incident_id = i.id AND v.details ? 'return_visit'
                      AND v.at >= i.closed_at)"""
_FILTERS = """
       (CAST(:grid AS text) IS NULL OR g.code IN (SELECT geogrid_subtree(ARRAY[CAST(:grid AS text)])))
   AND (CAST(:categories AS text[]) IS NULL OR i.category = ANY(:categories))
   AND (CAST(:department AS text) IS NULL OR i.department = :department)
   AND (CAST(:person AS bigint) IS NULL OR i.handler_person_id = :person)
"""


def board(conn: Connection, *, queue: str | None = None, grid: str | None = None,
          categories: list[str] | None = None, department: str | None = None, person: int | None = None,
          limit: int = 50) -> dict:  # fmt: skip
    """Every queue's count (and overdue count), and the cases of *queue* (default: the first that has any),
    overdue first, then by the time left."""
    if queue is not None and queue not in NAMES:
        raise InvalidInput("unknown queue {queue!r}; queues are {queues}", queue=queue, queues=", ".join(NAMES))
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit must be 1..{MAX_LIMIT}", MAX_LIMIT=MAX_LIMIT)
    params = {"grid": grid, "categories": categories, "department": department, "person": person}
    open_states = [s for states in QUEUES.values() for s in states]
    counts = conn.execute(sa.text(f"""
        SELECT q.queue, count(*) AS total, count(*) FILTER (WHERE q.overdue) AS overdue
          FROM (SELECT {_QUEUE} AS queue, {OVERDUE} AS overdue, i.status, i.closed_at, i.id
                  FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id
                 WHERE i.status = ANY(:open_states) AND {_FILTERS}) q
         WHERE q.queue <> 'to_visit' OR NOT EXISTS (SELECT 1 FROM incident_events v WHERE v.incident_id = q.id
                                                    AND v.details ? 'return_visit' AND v.at >= q.closed_at)
         GROUP BY q.queue
    """), {**params, "open_states": open_states}).mappings().all()  # fmt: skip
    by_queue = {row["queue"]: row for row in counts}
    asking = conn.execute(sa.text(f"""
        SELECT count(*) AS total, count(*) FILTER (WHERE {OVERDUE}) AS overdue
          FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id
         WHERE i.status = ANY(:asking) AND {_FILTERS} AND {_ASKING}
    """), {**params, "asking": list(_ASKING_STATES)}).mappings().one()  # fmt: skip
    by_queue[APPROVALS] = asking
    queues = [{"queue": name, "count": by_queue[name]["total"] if name in by_queue else 0,
               "overdue": by_queue[name]["overdue"] if name in by_queue else 0} for name in NAMES]  # fmt: skip
    # Opened on the first stage with cases; decisions waiting come first of all.
    chosen = queue or next((q["queue"] for q in [queues[-1], *queues[:-1]] if q["count"]), "to_accept")
    visit_rule = f"AND NOT {_VISITED}" if chosen == "to_visit" else f"AND {_ASKING}" if chosen == APPROVALS else ""
    states = list(_ASKING_STATES if chosen == APPROVALS else QUEUES[chosen])
    rows = conn.execute(sa.text(f"""
        SELECT i.id, i.status, i.category, i.reported_at, i.deadline, i.department, i.review_at,
               g.code AS grid_code, g.name AS grid_name, p.name AS handler, {OVERDUE} AS overdue,
               extract(epoch FROM i.deadline - now())::bigint AS seconds_left
          FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id LEFT JOIN people p ON p.id = i.handler_person_id
         WHERE i.status = ANY(:states) AND {_FILTERS} {visit_rule}
         ORDER BY {OVERDUE} DESC, i.deadline NULLS LAST, i.id
         LIMIT :limit
    """), {**params, "states": states, "limit": limit}).mappings().all()  # fmt: skip
    cases = [{**{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}} for r in rows]
    return {"queues": queues, "queue": chosen, "cases": cases}
