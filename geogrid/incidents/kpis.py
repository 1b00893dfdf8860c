"""The case indicators of docs/kpis.md: counts and rates per grid (rolled up to a level), per
department or per person, for any period, and the weighted ranking (综合评价).

Each case received in the period is read as it stood at the period's end (one SQL pass
over its events before the end); the counts and rates are then summed per unit here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.errors import InvalidInput
from geogrid.grids import hierarchy

#: States that mean a case was taken on (立案), directly or by going further.
_TAKEN_ON = ("accepted", "dispatched", "in_progress", "escalated", "resolved", "handled_on_spot", "closed", "rework",
             "pending", "postponed", "reopened")  # fmt: skip

_FACTS = f"""
WITH cases AS (
    SELECT i.id, i.grid_id, i.deadline AS current_deadline, i.department AS current_department,
           i.handler_person_id AS current_person
      FROM incidents i
     WHERE i.reported_at >= :start AND i.reported_at < :end
),
ev AS (
    SELECT e.* FROM incident_events e JOIN cases c ON c.id = e.incident_id WHERE e.at < :end
),
steps AS (
    SELECT e.incident_id,
           (array_agg(e.to_status ORDER BY e.at DESC, e.id DESC))[1] AS status,
           bool_or(e.to_status IN ({", ".join(repr(s) for s in _TAKEN_ON)})) AS taken_on,
           bool_or(e.to_status = 'rejected') AS rejected,
           bool_or(e.to_status IN ('dispatched', 'handled_on_spot')) AS dispatched,
           bool_or(e.to_status IN ('resolved', 'handled_on_spot', 'closed')) AS handled,
           bool_or(e.to_status = 'rework') AS reworked,
           bool_or(e.details->>'step' = 'delay_approved' AND e.details->>'kind' = 'extend') AS extended,
           max(e.at) FILTER (WHERE e.to_status = 'closed' AND e.from_status IS DISTINCT FROM 'closed') AS closed_at,
           (array_agg((e.details->>'deadline')::timestamptz ORDER BY e.at DESC, e.id DESC)
                FILTER (WHERE e.details ? 'deadline'))[1] AS deadline,
           (array_agg(e.details->>'department' ORDER BY e.at DESC, e.id DESC)
                FILTER (WHERE e.details ? 'department'))[1] AS department,
           (array_agg((e.details->'person'->>'id')::bigint ORDER BY e.at DESC, e.id DESC)
                FILTER (WHERE e.details ? 'person'))[1] AS person_id,
           count(*) FILTER (WHERE e.details ? 'return_visit') AS visits,
           (array_agg((e.details->>'satisfied')::boolean ORDER BY e.at DESC, e.id DESC)
                FILTER (WHERE e.details ? 'return_visit'))[1] AS satisfied
      FROM ev e GROUP BY e.incident_id
),
moved AS (
    -- The cell a case was in when the period ended: the one it left at its first move since.
    SELECT DISTINCT ON (e.incident_id) e.incident_id, e.details->'from_grid'->>'code' AS code
      FROM incident_events e JOIN cases c ON c.id = e.incident_id
     WHERE e.at >= :end AND e.details ? 'from_grid'
     ORDER BY e.incident_id, e.at, e.id
),
tree AS (
    SELECT d.root AS ancestor, d.code
      FROM geogrid_descendants(ARRAY(SELECT g.code FROM grids g WHERE {hierarchy.valid_at("g")} AND g.level = :level),
                               CAST(:at AS timestamptz)) d
)
SELECT c.id, s.status, coalesce(s.taken_on, false) AS taken_on, coalesce(s.rejected, false) AS rejected,
       coalesce(s.dispatched, false) AS dispatched, coalesce(s.handled, false) AS handled,
       coalesce(s.reworked, false) AS reworked, coalesce(s.extended, false) AS extended,
       s.closed_at, coalesce(s.deadline, c.current_deadline) AS deadline,
       coalesce(s.department, c.current_department) AS department,
       coalesce(s.person_id, c.current_person) AS person_id, coalesce(s.visits, 0) AS visits, s.satisfied,
       {{grid}} AS grid
  FROM cases c
  LEFT JOIN steps s ON s.incident_id = c.id
  {{grid_joins}}
"""
_GRID_JOINS = """
  LEFT JOIN grids g ON g.id = c.grid_id
  LEFT JOIN moved m ON m.incident_id = c.id
  LEFT JOIN tree t ON t.code = coalesce(m.code, g.code)
  LEFT JOIN grid_ancestry a ON t.code IS NULL AND a.code = coalesce(m.code, g.code) AND a.ancestor_level = :level
"""

COUNTS = ("received", "accepted", "rejected", "dispatched", "pending", "postponed", "due", "closed", "closed_on_time",
          "reworked", "extended", "handled", "visited", "satisfied")  # fmt: skip
#: Rate -> (numerator, denominator); a denominator ``due-postponed`` is 应结案 − 缓办.
RATES = {
    "acceptance_rate": ("accepted", "received"),  # 立案率
    "dispatch_rate": ("dispatched", "accepted"),  # 派遣率
    "closure_rate": ("closed", "due-postponed"),  # 结案率
    "on_time_rate": ("closed_on_time", "due-postponed"),  # 按期结案率
    "rework_rate": ("reworked", "due"),  # 返工率
    "extension_rate": ("extended", "due"),  # 延期率
    "handling_rate": ("handled", "accepted"),  # 处置率
    "satisfaction_rate": ("satisfied", "visited"),  # 回访满意率
    "completion_rate": ("closed", "accepted"),  # 办结率
}
#: The ranking's weights by default (GEOGRID_KPI_WEIGHTS); rework and extension count as 100 − rate.
WEIGHTS = {"closure_rate": 30, "on_time_rate": 30, "satisfaction_rate": 20, "rework_rate": 10, "extension_rate": 10}
_LOWER_IS_BETTER = ("rework_rate", "extension_rate")
BY = ("grid", "department", "person", "total")


@dataclasses.dataclass
class Case:
    """One case as it stood at the period's end (a row of the facts query)."""

    status: str | None
    taken_on: bool
    rejected: bool
    dispatched: bool
    handled: bool
    reworked: bool
    extended: bool
    closed_at: dt.datetime | None
    deadline: dt.datetime | None
    visits: int
    satisfied: bool | None

    def counts(self, end: dt.datetime) -> dict[str, bool]:
        """Which counts of docs/kpis.md this case is in."""
        accepted = self.taken_on and not self.rejected
        pending = self.status == "pending"
        closed = self.status == "closed"
        due = accepted and not pending and (closed or (self.deadline is not None and self.deadline < end))
        return {
            "received": True, "accepted": accepted, "rejected": self.rejected,
            "dispatched": accepted and self.dispatched, "pending": pending,
            "postponed": due and self.status == "postponed", "due": due, "closed": due and closed,
            "closed_on_time": due and closed and self.closed_at is not None and self.deadline is not None
            and self.closed_at <= self.deadline,
            "reworked": due and self.reworked, "extended": due and self.extended,
            "handled": accepted and self.handled, "visited": self.visits > 0, "satisfied": bool(self.satisfied),
        }  # fmt: skip


def indicators(conn: Connection, *, start: dt.datetime, end: dt.datetime, by: str = "grid",
               level: str | None = None, levels: tuple[str, ...] = ()) -> list[dict]:  # fmt: skip
    """The counts and rates of docs/kpis.md per unit (*by* grid of *level*, department or person)."""
    if by not in BY:
        raise InvalidInput("indicators are by grid, department or person, not {by!r}", by=by)
    if end <= start:
        raise InvalidInput("the period must end after it starts")
    level = level or (levels[0] if levels else "township")
    at = end - dt.timedelta(microseconds=1)
    # The cell a case was in (rolled up to *level*) is only worked out when the units are grids.
    facts = (_FACTS.format(grid="coalesce(t.ancestor, a.ancestor)", grid_joins=_GRID_JOINS) if by == "grid"
             else _FACTS.format(grid="NULL", grid_joins=""))  # fmt: skip
    rows = conn.execute(sa.text(facts), {"start": start, "end": end, "level": level, "at": at}).mappings().all()
    units: dict = {}
    for row in rows:
        key = {"grid": row["grid"], "department": row["department"], "person": row["person_id"], "total": "all"}[by]
        case = Case(**{f.name: row[f.name] for f in dataclasses.fields(Case)})
        totals = units.setdefault(key, dict.fromkeys(COUNTS, 0))
        for name, counted in case.counts(end).items():
            totals[name] += int(counted)
    names = _names(conn, by, [k for k in units if k is not None], at)
    out = []
    for key, totals in sorted(units.items(), key=lambda item: (item[0] is None, str(item[0]))):
        out.append({"by": by, "key": key, "name": names.get(key), **totals, **rates(totals)})
    return out


STEPS = ("day", "week", "month")
MAX_PERIODS = 400


def periods(start: dt.datetime, end: dt.datetime, step: str) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) cut into days, weeks (from Monday) or months of *start*'s time zone; the first and last may
    be partial."""
    if step not in STEPS:
        raise InvalidInput("step must be day, week or month, not {step!r}", step=step)
    if end <= start:
        raise InvalidInput("the period must end after it starts")
    zone = start.tzinfo
    day = start.astimezone(zone).date()
    if step == "week":
        day -= dt.timedelta(days=day.weekday())
    elif step == "month":
        day = day.replace(day=1)
    out = []
    while True:
        if step == "day":
            following = day + dt.timedelta(days=1)
        elif step == "week":
            following = day + dt.timedelta(days=7)
        else:
            following = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        lower = max(start, dt.datetime.combine(day, dt.time.min, tzinfo=zone))
        upper = min(end, dt.datetime.combine(following, dt.time.min, tzinfo=zone))
        if lower < upper:
            out.append((lower, upper))
        if upper >= end:
            return out
        if len(out) >= MAX_PERIODS:
            raise InvalidInput("at most {MAX_PERIODS} periods: choose a longer step", MAX_PERIODS=MAX_PERIODS)
        day = following


def trend(conn: Connection, *, start: dt.datetime, end: dt.datetime, step: str = "week") -> list[dict]:
    """The whole area's indicators per day, week or month: each period counts the cases it received, as they
    stood at its end (the same rules as :func:`indicators`)."""
    out = []
    for lower, upper in periods(start, end, step):
        units = indicators(conn, start=lower, end=upper, by="total")
        totals = {k: units[0][k] for k in COUNTS} if units else dict.fromkeys(COUNTS, 0)
        out.append({"from": lower.isoformat(), "to": upper.isoformat(), **totals, **rates(totals)})
    return out


def rates(totals: dict[str, int]) -> dict[str, float | None]:
    """Each rate of :data:`RATES` (None when its denominator is 0)."""
    out = {}
    for name, (part, whole) in RATES.items():
        denominator = totals["due"] - totals["postponed"] if whole == "due-postponed" else totals[whole]
        out[name] = round(totals[part] / denominator, 4) if denominator > 0 else None
    return out


def ranking(units: list[dict], weights: dict[str, float] | None = None, min_cases: int = 5) -> list[dict]:
    """The units ranked by their weighted score (0-100); those with fewer than *min_cases* due are unranked."""
    weights = weights or WEIGHTS
    scored = []
    for unit in units:
        parts = {k: (1 - unit[k] if k in _LOWER_IS_BETTER else unit[k]) * 100
                 for k in weights if unit.get(k) is not None}  # fmt: skip
        total = sum(weights[k] for k in parts)
        score = round(sum(weights[k] * v for k, v in parts.items()) / total, 1) if total else None
        scored.append({**unit, "score": score if unit["due"] >= min_cases else None})
    ranked = sorted((u for u in scored if u["score"] is not None), key=lambda u: (-u["score"], str(u["key"])))
    for n, unit in enumerate(ranked, start=1):
        unit["rank"] = n
    return ranked + [{**u, "rank": None} for u in scored if u["score"] is None]


def _names(conn: Connection, by: str, keys: list, at: dt.datetime) -> dict:
    if by in ("department", "total") or not keys:
        return {k: k for k in keys}
    if by == "person":
        rows = conn.execute(sa.text("SELECT id, name FROM people WHERE id = ANY(:ids)"), {"ids": keys})
        return dict(rows.all())
    rows = conn.execute(sa.text(
        f"SELECT DISTINCT ON (g.code) g.code, g.name FROM grids g WHERE g.code = ANY(:codes) "
        f"ORDER BY g.code, {hierarchy.valid_at('g')} DESC, g.version DESC"
    ), {"codes": keys, "at": at})  # fmt: skip
    return dict(rows.all())
