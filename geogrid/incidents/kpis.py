"""The case indicators of docs/kpis.md: counts and rates per grid (rolled up to a level), per
department or per person, for any period, and the weighted ranking (综合评价).

Each case received in the period is read as it stood at the period's end, and counted per
unit, in one SQL pass over its events before the end; the rates are worked out here.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.errors import InvalidInput
from geogrid.grids import hierarchy

#: States that mean a case was taken on (立案), directly or by going further.
_TAKEN_ON = ("accepted", "dispatched", "in_progress", "escalated", "resolved", "handled_on_spot", "closed", "rework",
             "pending", "postponed", "reopened")  # fmt: skip

# Each case received in [:start, :end) as it stood at its period's end (``period_end``: the
# period's end, or for a trend the end of the day, week or month it was received in).
_FACTS = f"""
WITH cases AS (
    SELECT i.id, i.grid_id, i.deadline AS current_deadline, i.department AS current_department,
           i.handler_person_id AS current_person, {{bucket}} AS bucket, {{period_end}} AS period_end
      FROM incidents i
     WHERE i.reported_at >= :start AND i.reported_at < :end
),
ev AS (
    -- Latest first, so that each "latest" below is the first element of its aggregate: one sort
    -- instead of one per aggregate and case.
    SELECT e.* FROM incident_events e JOIN cases c ON c.id = e.incident_id WHERE e.at < c.period_end
     ORDER BY e.incident_id, e.at DESC, e.id DESC
),
steps AS (
    SELECT e.incident_id,
           (array_agg(e.to_status))[1] AS status,
           bool_or(e.to_status IN ({", ".join(repr(s) for s in _TAKEN_ON)})) AS taken_on,
           bool_or(e.to_status = 'rejected') AS rejected,
           bool_or(e.to_status IN ('dispatched', 'handled_on_spot')) AS dispatched,
           bool_or(e.to_status IN ('resolved', 'handled_on_spot', 'closed')) AS handled,
           bool_or(e.to_status = 'rework') AS reworked,
           bool_or(e.details->>'step' = 'delay_approved' AND e.details->>'kind' = 'extend') AS extended,
           max(e.at) FILTER (WHERE e.to_status = 'closed' AND e.from_status IS DISTINCT FROM 'closed') AS closed_at,
           (array_agg((e.details->>'deadline')::timestamptz) FILTER (WHERE e.details ? 'deadline'))[1] AS deadline,
           (array_agg(e.details->>'department') FILTER (WHERE e.details ? 'department'))[1] AS department,
           (array_agg((e.details->'person'->>'id')::bigint) FILTER (WHERE e.details ? 'person'))[1] AS person_id,
           count(*) FILTER (WHERE e.details ? 'return_visit') AS visits,
           (array_agg((e.details->>'satisfied')::boolean) FILTER (WHERE e.details ? 'return_visit'))[1] AS satisfied
      FROM ev e GROUP BY e.incident_id
),
moved AS (
    -- The cell a case was in when its period ended: the one it left at its first move since.
    SELECT DISTINCT ON (e.incident_id) e.incident_id, e.details->'from_grid'->>'code' AS code
      FROM incident_events e JOIN cases c ON c.id = e.incident_id
     WHERE e.at >= c.period_end AND e.details ? 'from_grid'
     ORDER BY e.incident_id, e.at, e.id
),
tree AS (
    SELECT d.root AS ancestor, d.code
      FROM geogrid_descendants(ARRAY(SELECT g.code FROM grids g WHERE {hierarchy.valid_at("g")} AND g.level = :level),
                               CAST(:at AS timestamptz)) d
),
facts AS (
    SELECT {{unit}} AS unit, c.bucket, c.period_end, s.status,
           coalesce(s.taken_on, false) AND NOT coalesce(s.rejected, false) AS accepted,
           coalesce(s.rejected, false) AS rejected, coalesce(s.dispatched, false) AS dispatched,
           coalesce(s.handled, false) AS handled, coalesce(s.reworked, false) AS reworked,
           coalesce(s.extended, false) AS extended, s.closed_at, coalesce(s.deadline, c.current_deadline) AS deadline,
           coalesce(s.visits, 0) AS visits, coalesce(s.satisfied, false) AS satisfied
      FROM cases c
      LEFT JOIN steps s ON s.incident_id = c.id
      {{grid_joins}}
),
judged AS (
    -- docs/kpis.md: 应结案 is a case taken on, not on the pending list, closed or past its deadline.
    SELECT f.*, f.accepted AND f.status IS DISTINCT FROM 'pending'
                AND (f.status = 'closed' OR f.deadline < f.period_end) AS due
      FROM facts f
)
SELECT unit, bucket, count(*) AS received,
       count(*) FILTER (WHERE accepted) AS accepted,
       count(*) FILTER (WHERE rejected) AS rejected,
       count(*) FILTER (WHERE accepted AND dispatched) AS dispatched,
       count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE due AND status = 'postponed') AS postponed,
       count(*) FILTER (WHERE due) AS due,
       count(*) FILTER (WHERE due AND status = 'closed') AS closed,
       count(*) FILTER (WHERE due AND status = 'closed' AND closed_at <= deadline) AS closed_on_time,
       count(*) FILTER (WHERE due AND reworked) AS reworked,
       count(*) FILTER (WHERE due AND extended) AS extended,
       count(*) FILTER (WHERE accepted AND handled) AS handled,
       count(*) FILTER (WHERE visits > 0) AS visited,
       count(*) FILTER (WHERE satisfied) AS satisfied
  FROM judged GROUP BY unit, bucket
"""
#: How each kind of unit is found for a case (grids: its cell as it was at the period's end, rolled up to the
#: level; at the deepest level the cell itself).
_UNITS = {
    "department": "coalesce(s.department, c.current_department)",
    "person": "coalesce(s.person_id, c.current_person)",
    "total": "'all'",
}
_GRID_JOINS = """
  LEFT JOIN grids g ON g.id = c.grid_id
  LEFT JOIN moved m ON m.incident_id = c.id
  LEFT JOIN tree t ON t.code = coalesce(m.code, g.code)
  LEFT JOIN grid_ancestry a ON t.code IS NULL AND a.code = coalesce(m.code, g.code) AND a.ancestor_level = :level
"""
_LEAF_JOINS = """
  LEFT JOIN grids g ON g.id = c.grid_id
  LEFT JOIN moved m ON m.incident_id = c.id
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


def indicators(conn: Connection, *, start: dt.datetime, end: dt.datetime, by: str = "grid",
               level: str | None = None, levels: tuple[str, ...] = (), named: bool = True) -> list[dict]:  # fmt: skip
    """The counts and rates of docs/kpis.md per unit (*by* grid of *level*, department, person or in total).
    Units carry their names unless *named* is false (then :func:`name` names the ones shown)."""
    if by not in BY:
        raise InvalidInput("indicators are by grid, department or person, not {by!r}", by=by)
    if end <= start:
        raise InvalidInput("the period must end after it starts")
    level = level or (levels[0] if levels else "township")
    at = end - dt.timedelta(microseconds=1)
    if by != "grid":
        unit, joins = _UNITS[by], ""
    elif levels and level == levels[-1]:
        # The deepest level: a case's unit is its own cell (or the one it left after the period).
        unit, joins = "CASE WHEN g.level = :level THEN coalesce(m.code, g.code) END", _LEAF_JOINS
    else:
        unit, joins = "coalesce(t.ancestor, a.ancestor)", _GRID_JOINS
    sql = _FACTS.format(unit=unit, grid_joins=joins, bucket="NULL", period_end="CAST(:end AS timestamptz)")
    rows = [dict(r) for r in conn.execute(sa.text(sql), {"start": start, "end": end, "level": level,
                                                            "at": at}).mappings()]  # fmt: skip
    if by == "grid":
        # Every grid of the level is a unit, those that received nothing too (with empty rates).
        seen = {r["unit"] for r in rows}
        rows += [{"unit": code, **dict.fromkeys(COUNTS, 0)} for code in conn.execute(sa.text(
            f"SELECT g.code FROM grids g WHERE {hierarchy.valid_at('g')} AND g.level = :level"),
            {"level": level, "at": at}).scalars() if code not in seen]  # fmt: skip
    out = []
    empty = rates(dict.fromkeys(COUNTS, 0))
    for row in sorted(rows, key=lambda r: (r["unit"] is None, str(r["unit"]))):
        totals = {k: row[k] for k in COUNTS}
        out.append({"by": by, "key": row["unit"], "name": None, **totals,
                    **(rates(totals) if totals["received"] else empty)})  # fmt: skip
    return name(conn, out, end) if named else out


def name(conn: Connection, units: list[dict], end: dt.datetime) -> list[dict]:
    """*units* with their names (a grid's as it was at the period's *end*, a person's, a department's own)."""
    if not units:
        return units
    by = units[0]["by"]
    names = _names(conn, by, [u["key"] for u in units if u["key"] is not None], end - dt.timedelta(microseconds=1))
    return [{**u, "name": names.get(u["key"])} for u in units]


def total(units: list[dict]) -> dict:
    """The counts and rates of all *units* together (every case is in exactly one unit)."""
    totals = {k: sum(u[k] for u in units) for k in COUNTS}
    return {"key": "all", **totals, **rates(totals)}


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
    """The whole area's indicators per day, week or month of *start*'s time zone: each period counts the cases it
    received, as they stood at its end (the rules of :func:`indicators`), all in one pass."""
    cuts = periods(start, end, step)
    zone = str(start.tzinfo)
    # A case's period: the step it was received in, starting no earlier than *start*, ending no later than *end*.
    bucket = "greatest(date_trunc(:step, i.reported_at, :zone), CAST(:start AS timestamptz))"
    period_end = ("least((date_trunc(:step, i.reported_at, :zone) AT TIME ZONE :zone + CAST(:one AS interval)) "
                  "AT TIME ZONE :zone, CAST(:end AS timestamptz))")  # fmt: skip
    sql = _FACTS.format(unit="'all'", grid_joins="", bucket=bucket, period_end=period_end)
    rows = conn.execute(sa.text(sql), {"start": start, "end": end, "step": step, "zone": zone, "one": f"1 {step}",
                                       "level": None, "at": None}).mappings().all()  # fmt: skip
    found = {row["bucket"]: row for row in rows}
    out = []
    for lower, upper in cuts:
        row = found.pop(lower, None)
        totals = {k: row[k] for k in COUNTS} if row else dict.fromkeys(COUNTS, 0)
        out.append({"from": lower.isoformat(), "to": upper.isoformat(), **totals, **rates(totals)})
    assert not found, f"cases outside the periods: {list(found)}"
    return out


def rates(totals: dict[str, int]) -> dict[str, float | None]:
    """Each rate of :data:`RATES` (None when its denominator is 0)."""
    out = {}
    open_due = totals["due"] - totals["postponed"]
    for rate, (part, whole) in _RATE_PARTS:
        denominator = open_due if whole is None else totals[whole]
        out[rate] = round(totals[part] / denominator, 4) if denominator > 0 else None
    return out


_RATE_PARTS = tuple(
    (rate, (part, None if whole == "due-postponed" else whole)) for rate, (part, whole) in RATES.items()
)


def ranking(units: list[dict], weights: dict[str, float] | None = None, min_cases: int = 5) -> list[dict]:
    """The units ranked by their weighted score (0-100); those with fewer than *min_cases* due are unranked."""
    weights = weights or WEIGHTS
    scored = []
    for unit in units:
        if unit["due"] < min_cases:
            scored.append({**unit, "score": None})
            continue
        parts = {k: (1 - unit[k] if k in _LOWER_IS_BETTER else unit[k]) * 100
                 for k in weights if unit.get(k) is not None}  # fmt: skip
        total = sum(weights[k] for k in parts)
        scored.append({**unit, "score": round(sum(weights[k] * v for k, v in parts.items()) / total, 1) if total
                       else None})  # fmt: skip
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
