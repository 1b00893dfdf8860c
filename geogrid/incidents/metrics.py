"""Indicators per grid and period, rolled up the hierarchy, and early warning on rising categories.

Rates follow the grid centers' own indicators (三率, 办结率): closure, on-time,
return-visit and satisfaction rates. Early warning flags a cell whose count of a
category in the last 7 days is improbably high against its own baseline (the weekly
mean of the 8 weeks before), by the Poisson upper tail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.errors import InvalidInput
from geogrid.grids import hierarchy

_METRICS = f"""
WITH moved AS (
    -- The cell an incident was in when the period ended: the one it left at its first move since.
    SELECT DISTINCT ON (e.incident_id) e.incident_id, e.details->'from_grid'->>'code' AS code
      FROM incident_events e
     WHERE CAST(:end AS timestamptz) IS NOT NULL AND e.at >= :end AND e.details ? 'from_grid'
     ORDER BY e.incident_id, e.at, e.id
),
facts AS (
    SELECT i.id, coalesce(m.code, g.code) AS code, i.status, i.deadline, i.closed_at,
           bool_or(e.to_status = 'handled_on_spot') AS on_spot,
           bool_or(e.to_status = 'escalated') AS escalated,
           bool_or(e.to_status IN ('resolved', 'handled_on_spot')) AS resolved_once,
           bool_or(e.details ? 'return_visit') AS visited,
           (array_agg((e.details->>'satisfied')::boolean ORDER BY e.at DESC)
                FILTER (WHERE e.details ? 'return_visit'))[1] AS satisfied
      FROM incidents i
      JOIN grids g ON g.id = i.grid_id
      LEFT JOIN moved m ON m.incident_id = i.id
      LEFT JOIN incident_events e ON e.incident_id = i.id
     WHERE (CAST(:start AS timestamptz) IS NULL OR i.reported_at >= :start)
       AND (CAST(:end AS timestamptz) IS NULL OR i.reported_at < :end)
     GROUP BY i.id, coalesce(m.code, g.code)
),
-- The grids of the level as they stood when the period ended (now when it has no end),
-- and every grid under each; a cell retired before then counts under its last parent.
tree AS (
    SELECT d.root AS ancestor, d.code
      FROM geogrid_descendants(ARRAY(SELECT g.code FROM grids g WHERE {hierarchy.valid_at("g")} AND g.level = :level),
                               CAST(:at AS timestamptz)) d
),
placed AS (
    SELECT f.*, coalesce(t.ancestor, a.ancestor) AS ancestor
      FROM facts f
      LEFT JOIN tree t ON t.code = f.code
      LEFT JOIN grid_ancestry a ON t.code IS NULL AND a.code = f.code AND a.ancestor_level = :level
)
SELECT p.ancestor AS code,
       (SELECT g.name FROM grids g WHERE g.code = p.ancestor
         ORDER BY {hierarchy.valid_at("g")} DESC, g.version DESC LIMIT 1) AS name,
       CAST(:level AS text) AS level,
       count(*) AS registered,
       count(*) FILTER (WHERE p.on_spot) AS handled_on_spot,
       count(*) FILTER (WHERE p.escalated) AS escalated,
       count(*) FILTER (WHERE p.status = 'closed') AS closed,
       count(*) FILTER (WHERE p.status = 'closed' AND p.closed_at <= p.deadline) AS closed_on_time,
       count(*) FILTER (WHERE p.resolved_once) AS resolved_once,
       count(*) FILTER (WHERE p.visited) AS visited,
       count(*) FILTER (WHERE p.satisfied) AS satisfied
  FROM placed p
 WHERE p.ancestor IS NOT NULL
   AND (CAST(:within AS text) IS NULL
        OR p.ancestor IN (SELECT code FROM grid_ancestry WHERE ancestor = :within))
 GROUP BY p.ancestor
 ORDER BY p.ancestor
"""


def metrics(
    conn: Connection,
    *,
    level: str,
    within: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[dict]:
    """Indicators for every grid of *level* (inside *within*, when given), over [start, end).

    A period that has ended is counted on the grids as they stood at its end, each
    incident in the cell it was in then (a split since moves open incidents to the
    pieces, and last week's report stays as it was).
    """
    at = end - dt.timedelta(microseconds=1) if end is not None else None
    params = {"level": level, "within": within, "start": start, "end": end, "at": at}
    rows = conn.execute(sa.text(_METRICS), params)
    out = []
    for row in rows.mappings():
        r = dict(row)
        r["closure_rate"] = _rate(r["closed"], r["registered"])
        r["on_time_rate"] = _rate(r["closed_on_time"], r["closed"])
        r["return_visit_rate"] = _rate(r["visited"], r["resolved_once"])
        r["satisfaction_rate"] = _rate(r["satisfied"], r["visited"])
        out.append(r)
    return out


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclasses.dataclass(frozen=True)
class Warning:
    """A cell where a category rose well above its own baseline."""

    grid_code: str
    category: str
    last_7_days: int
    weekly_baseline: float
    p_value: float


def poisson_tail(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean)."""
    if k <= 0:
        return 1.0
    term = math.exp(-mean)
    below = term
    for i in range(1, k):
        term *= mean / i
        below += term
    return max(0.0, 1.0 - below)


def early_warnings(
    conn: Connection,
    *,
    now: dt.datetime | None = None,
    alpha: float = 0.01,
    min_count: int = 3,
    min_cells: int = 3,
    baseline_floor: float = 0.5,
) -> dict:
    """Cells and categories rising now.

    A (cell, category) is flagged when its count in the 7 days before *now* is at least
    *min_count* and P(X >= count) < *alpha* for X ~ Poisson(weekly mean of the 8 weeks
    before, at least *baseline_floor*). A category flagged in *min_cells* cells or more
    at once is reported as widespread (普遍性问题).
    """
    if not 0 < alpha < 1:
        raise InvalidInput("alpha must be between 0 and 1")
    now = now or dt.datetime.now(dt.UTC)
    rows = conn.execute(
        sa.text(
            """
            SELECT g.code, i.category,
                   count(*) FILTER (WHERE i.reported_at >= :recent) AS recent,
                   count(*) FILTER (WHERE i.reported_at < :recent) AS before
              FROM incidents i JOIN grids g ON g.id = i.grid_id
             WHERE i.reported_at >= :since AND i.reported_at < :now
             GROUP BY g.code, i.category
            HAVING count(*) FILTER (WHERE i.reported_at >= :recent) >= :min_count
            """
        ),
        {"now": now, "recent": now - dt.timedelta(days=7), "since": now - dt.timedelta(days=63),
         "min_count": min_count},
    ).all()  # fmt: skip
    flagged = []
    for code, category, recent, before in rows:
        baseline = max(before / 8, baseline_floor)
        p = poisson_tail(recent, baseline)
        if p < alpha:
            flagged.append(Warning(code, category, recent, round(before / 8, 3), p))
    by_category: dict[str, list[str]] = {}
    for w in flagged:
        by_category.setdefault(w.category, []).append(w.grid_code)
    widespread = [
        {"category": c, "cells": sorted(codes)} for c, codes in sorted(by_category.items()) if len(codes) >= min_cells
    ]
    return {
        "rule": f"last 7 days >= {min_count} and Poisson P(X >= n | weekly mean of the previous 8 weeks) < {alpha}",
        "cells": [dataclasses.asdict(w) for w in sorted(flagged, key=lambda w: w.p_value)],
        "widespread": widespread,
    }
