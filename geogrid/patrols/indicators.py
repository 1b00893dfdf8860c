"""Patrol indicators of docs/kpis.md, per worker or per grid (rolled up to a level), for any run of days.

- 巡查覆盖率 ``coverage_rate``: cell-days that met the patrol rule / cell-days assigned. A cell-day is one
  leaf cell on one day with someone on patrol duty on it; for a grid it meets the rule when one of the people
  on duty met it, for a worker when they did.
- 巡查里程 ``km``: the length of the worker's tracks, each cut at local midnight (a worker's only).
- 在岗时长 ``hours``: from each track's first fix to its last, cut the same way (a worker's only).
- 补签 ``repairs`` (a worker): approved repaired patrols counted in the period;
- 漏巡 ``missed_days`` (a worker): days with at least one of their cells not patrolled at all;
  ``missed_cell_days`` (a grid): cell-days that none of the people on duty patrolled at all.

Days with no patrol data from anyone are not judged (nothing was uploaded: no day is blamed for that).
Each day is brought up to date first (:func:`geogrid.patrols.compute.prepare_day`).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.errors import InvalidInput
from geogrid.grids import hierarchy
from geogrid.patrols.compute import day_window, prepare_day

#: The longest run of days asked for at once (each day may have to be computed first).
MAX_DAYS = 93
BY = ("person", "grid")


def judged_days(conn: Connection, settings: Settings, start: dt.date, end: dt.date) -> list[dt.date]:
    """The days *start* to *end* (both included, none to come) that have patrol data, each brought up to date."""
    if end < start:
        raise InvalidInput("the period must end after it starts")
    today = dt.datetime.now(dt.UTC).astimezone(_zone(settings)).date()
    end = min(end, today)
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    if len(days) > MAX_DAYS:
        raise InvalidInput("at most {MAX_DAYS} days at once", MAX_DAYS=MAX_DAYS)
    return [day for day in days if prepare_day(conn, settings, day) is None]


def indicators(conn: Connection, settings: Settings, *, start: dt.date, end: dt.date, by: str = "person",
               level: str | None = None, days: list[dt.date] | None = None) -> list[dict]:  # fmt: skip
    """The patrol indicators per worker (*by* ``person``) or per grid of *level*, for the days *start* to *end*
    (both included), in name or code order. *days*: those :func:`judged_days` gave already (several tables of
    one period bring its days up to date once)."""
    if by not in BY:
        raise InvalidInput("patrol indicators are by person or grid, not {by!r}", by=by)
    judged = days if days is not None else judged_days(conn, settings, start, end)
    if by == "person":
        return _by_person(conn, settings, judged)
    level = level or settings.levels[0]
    return _by_grid(conn, settings, judged, level)


def _by_person(conn: Connection, settings: Settings, days: list[dt.date]) -> list[dict]:
    if not days:
        return []
    duty = conn.execute(sa.text("""
        SELECT c.person_id, p.name,
               count(*) FILTER (WHERE c.assigned) AS cell_days,
               count(*) FILTER (WHERE c.assigned AND c.compliant) AS met,
               count(DISTINCT c.day) FILTER (WHERE c.assigned AND c.visit_count = 0) AS missed_days,
               count(DISTINCT c.day) FILTER (WHERE c.visit_count > 0) AS patrol_days,
               coalesce(sum(c.repairs), 0) AS repairs
          FROM coverage c JOIN people p ON p.id = c.person_id
         WHERE c.day = ANY(:days)
         GROUP BY c.person_id, p.name
    """), {"days": days}).mappings().all()  # fmt: skip
    walked = {r["person_id"]: r for r in conn.execute(sa.text("""
        WITH pieces AS (
            SELECT f.person_id, f.track_id, date_trunc('day', f.fixed_at AT TIME ZONE :zone) AS day,
                   CASE WHEN count(*) > 1 THEN ST_Length(ST_MakeLine(array_agg(f.geom ORDER BY f.fixed_at))::geography)
                        ELSE 0 END AS metres,
                   extract(epoch FROM max(f.fixed_at) - min(f.fixed_at)) AS seconds
              FROM gps_fixes f
             WHERE f.fixed_at >= :s AND f.fixed_at < :e
               AND (f.fixed_at AT TIME ZONE :zone)::date = ANY(:days)
             GROUP BY f.person_id, f.track_id, 3
        )
        SELECT person_id, sum(metres) / 1000 AS km, sum(seconds) / 3600 AS hours FROM pieces GROUP BY person_id
    """), {"zone": settings.timezone, "days": days, "s": day_window(settings, min(days))[0],
           "e": day_window(settings, max(days))[1]}).mappings()}  # fmt: skip
    names = {r["person_id"]: r["name"] for r in duty}
    if walked:
        names.update(conn.execute(sa.text("SELECT id, name FROM people WHERE id = ANY(:ids)"),
                                  {"ids": [k for k in walked if k not in names]}).all())  # fmt: skip
    counts = {r["person_id"]: r for r in duty}
    out = []
    for person in sorted(names, key=lambda k: (names[k], k)):
        c, w = counts.get(person), walked.get(person)
        cell_days, met = (c["cell_days"], c["met"]) if c else (0, 0)
        out.append({
            "by": "person", "key": person, "name": names[person], "days": len(days), "cell_days": cell_days,
            "met": met, "coverage_rate": round(met / cell_days, 4) if cell_days else None,
            "missed_days": c["missed_days"] if c else 0, "patrol_days": c["patrol_days"] if c else 0,
            "repairs": int(c["repairs"]) if c else 0,
            "km": round(float(w["km"]), 2) if w else 0.0, "hours": round(float(w["hours"]), 2) if w else 0.0,
        })  # fmt: skip
    return out


def _by_grid(conn: Connection, settings: Settings, days: list[dt.date], level: str) -> list[dict]:
    at = day_window(settings, max(days))[1] - dt.timedelta(microseconds=1) if days else None
    units = conn.execute(sa.text(
        f"SELECT g.code, g.name FROM grids g WHERE {hierarchy.valid_at('g')} AND g.level = :level ORDER BY g.code"
    ), {"level": level, "at": at}).all()  # fmt: skip
    found = {}
    if days:
        found = {r["unit"]: r for r in conn.execute(sa.text("""
            WITH cell_days AS (
                SELECT c.day, c.grid_code, min(c.grid_id) AS grid_id, bool_or(c.assigned AND c.compliant) AS met,
                       bool_or(c.assigned AND c.visit_count > 0) AS patrolled
                  FROM coverage c
                 WHERE c.day = ANY(:days)
                 GROUP BY c.day, c.grid_code
                HAVING bool_or(c.assigned)
            )
            SELECT coalesce(a.ancestor, CASE WHEN g.level = :level THEN d.grid_code END) AS unit,
                   count(*) AS cell_days, count(*) FILTER (WHERE d.met) AS met,
                   count(*) FILTER (WHERE NOT d.patrolled) AS missed_cell_days
              FROM cell_days d
              JOIN grids g ON g.id = d.grid_id
              LEFT JOIN grid_ancestry a ON a.code = d.grid_code AND a.ancestor_level = :level
             GROUP BY 1
        """), {"days": days, "level": level}).mappings()}  # fmt: skip
    out = []
    for code, name in units:
        r = found.get(code)
        cell_days, met = (r["cell_days"], r["met"]) if r else (0, 0)
        out.append({"by": "grid", "key": code, "name": name, "days": len(days), "cell_days": cell_days, "met": met,
                    "coverage_rate": round(met / cell_days, 4) if cell_days else None,
                    "missed_cell_days": r["missed_cell_days"] if r else 0})  # fmt: skip
    return out


def _zone(settings: Settings):
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.timezone)
