"""Patrol coverage per cell, person and day, the patrol rule and the uncovered parts: the computation.

The set work runs in PostGIS: the day's fixes and the cells near them are staged in
metres (one projected CRS for the day) with GiST indexes; a cell's covered share is
its intersection with the union of ``sight_m`` buffers around the person's tracks;
visits are the stretches of the track (its segments between fixes, entry and exit
times interpolated along them) within ``sight_m`` of the cell, split where the person
was away longer than ``visit_gap_s``: a terminal fixing every 30 s on a vehicle still
visits the cells its line passes. A day is computed with the boundaries and duties as
they stood at its end (:func:`day_moment`): an edit today never rewrites last week.
The rule (default: 2 visits, 4 h apart, each covering
60%) is applied per assigned cell; cells assigned to a grid helper or manager that
they did not patrol are recorded as missed. The part of each cell nobody came within
sight of is stored with the coverage (``coverage_gaps``), for the cells whose coverage
changed: the pages and tiles only read (geogrid.patrols.queries).

``compute_coverage`` works in steps, each one set statement over staged tables:
visits (cells driven through the track segments' index, runs merged as time ranges), each
person's day as lines whose M is the time, that day buffered once, what each visit
saw of its cell (its stretch of the day cut out by time), what each person saw of
each cell all day; the costly ones run on all cores. ``bench/coverage_bench.py``
measures it against GeoPandas. :func:`ensure_coverage` brings a day up to date (what
is stale of it only); a request calls it once, before it reads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid import inputs
from geogrid.config import Settings
from geogrid.errors import N_, InvalidInput
from geogrid.grids import hierarchy
from geogrid.store.db import transaction_settings

#: Duties whose holders patrol their cells.
PATROL_DUTIES = ("grid_helper", "grid_manager")


#: Grids at and below :grid as they were at :at (the day's moment).
_SUBTREE = hierarchy.subtree_sql("grid", "at")


#: Leaf grids (no children) at or below :grid (NULL: everywhere), as ``g``, as they were at :at.
_LEAF_IN_SCOPE = f"{hierarchy.in_scope('g', 'grid', 'at')} AND {hierarchy.is_leaf('g', 'at')}"


def day_window(settings: Settings, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The day from local midnight to local midnight, in UTC."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(settings.timezone))
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=1)).astimezone(dt.UTC)


def day_moment(settings: Settings, day: dt.date) -> dt.datetime:
    """The moment whose boundaries and duties a day's coverage uses: the end of the (local) day."""
    return day_window(settings, day)[1] - dt.timedelta(microseconds=1)


@dataclasses.dataclass(frozen=True)
class Notice:
    """Why a day has nothing to report: an English template and its fields (pages translate it)."""

    template: str
    fields: dict

    def __str__(self) -> str:
        return self.template.format(**self.fields)

    def text(self, gettext=lambda text: text) -> str:
        """The words, through *gettext* (a page's language)."""
        return gettext(self.template).format(**self.fields)


def day_notice(conn: Connection, settings: Settings, day: dt.date) -> Notice | None:
    """Why *day* has nothing to report (None when it has): no boundaries yet then, or no patrol data.

    A day in the future is refused (InvalidInput): there is nothing to compute yet, and
    reporting every cell as missed would blame people for a day still to come.
    """
    today = inputs.today(settings.timezone)
    if day > today:
        raise InvalidInput(
            "{day} is in the future; coverage is known up to today ({today})",
            day=day.isoformat(),
            today=today.isoformat(),
        )
    first = hierarchy.first_boundaries(conn)
    if first is None:
        return Notice(N_("there are no grid boundaries yet: import or draw them first"), {})
    if first > day_moment(settings, day):
        since = first.astimezone(ZoneInfo(settings.timezone)).date().isoformat()
        return Notice(N_("no boundaries on {day}: the first are valid from {first}"), {"day": day.isoformat(),
                                                                                         "first": since})  # fmt: skip
    start, end = day_window(settings, day)
    if conn.execute(sa.text("SELECT 1 FROM gps_fixes WHERE fixed_at >= :s AND fixed_at < :e LIMIT 1"),
                    {"s": start, "e": end}).first() is None:  # fmt: skip
        return Notice(N_("no patrol data on {day}: no track was uploaded for that day"), {"day": day.isoformat()})
    return None


def prepare_day(conn: Connection, settings: Settings, day: dt.date) -> Notice | None:
    """What a request does before it reads a day's coverage, once: why the day has nothing to show (then
    nothing is computed), or None once the day is up to date (:func:`ensure_coverage`)."""
    notice = day_notice(conn, settings, day)
    if notice is None:
        ensure_coverage(conn, settings, day)
    return notice


def compute_coverage(conn: Connection, settings: Settings, day: dt.date, *, grid: str | None = None,
                     people: Sequence[int] | None = None) -> int:  # fmt: skip
    """Recompute and store the coverage of *day* (in cells under *grid*, or everywhere); rows written.

    With *people*, only their rows are recomputed (a person's rows depend on nothing but
    their own fixes and duties, the cells and the settings), the others' left as they are.
    """
    _lock_day(conn, day)
    # JIT only adds compile time here; the visits' sorts stay in memory.
    with transaction_settings(conn, jit="off", work_mem="128MB"):
        return _compute(conn, settings, day, grid, None if people is None else [int(p) for p in people])


def _compute(conn: Connection, settings: Settings, day: dt.date, grid: str | None, people: list[int] | None) -> int:
    start, end = day_window(settings, day)
    tag = uuid.uuid4().hex[:10]
    tables = ("fixes", "segs", "cells", "visits", "pairs", "days", "seen", "seen_by_visit", "seen_by_pair")
    fixes, segs, cells, visits, pairs, days, seen, seen_by_visit, seen_by_pair = (f"cov_{t}_{tag}" for t in tables)
    srid = (
        settings.metric_srid
        or conn.execute(
            sa.text(
                "SELECT geogrid_utm_srid(coalesce("
                "(SELECT ST_Extent(geom)::geometry FROM gps_fixes WHERE fixed_at >= :s AND fixed_at < :e),"
                "(SELECT ST_Extent(geom)::geometry FROM grids WHERE valid_to IS NULL)))"
            ),
            {"s": start, "e": end},
        ).scalar()
    )
    if srid is None:
        return 0
    params = {"s": start, "e": end, "srid": srid, "r": settings.sight_m, "grid": grid, "people": people,
              "duties": list(PATROL_DUTIES), "gap": settings.visit_gap_s, "at": day_moment(settings, day)}  # fmt: skip
    # The day's fixes in metres, each carrying its time as M (epoch seconds), so a
    # visit's path can be cut out of the person's day by time (ST_LocateBetween).
    conn.execute(
        sa.text(
            f"CREATE UNLOGGED TABLE {fixes} AS SELECT person_id, track_id, fixed_at, ST_Transform(ST_SetSRID("
            "ST_MakePointM(ST_X(geom), ST_Y(geom), date_part('epoch', fixed_at)), 4326), :srid) AS g "
            f"FROM gps_fixes WHERE fixed_at >= :s AND fixed_at < :e AND {_PERSON_IN_SCOPE}"
        ),
        params,
    )
    conn.execute(sa.text(f"ANALYZE {fixes}"))
    # The track as segments from each fix to the next (a track's last fix, or a lone one,
    # as itself), each with its two times: a visit is found from the line the person
    # walked or drove, not only from where the terminal happened to fix.
    conn.execute(
        sa.text(
            f"""
            CREATE UNLOGGED TABLE {segs} AS
            SELECT person_id, t0, coalesce(t1, t0) AS t1, CASE WHEN t1 IS NULL THEN a ELSE ST_MakeLine(a, b) END AS g
              FROM (SELECT person_id, fixed_at AS t0, g AS a,
                           lead(fixed_at) OVER w AS t1, lead(g) OVER w AS b
                      FROM {fixes} WINDOW w AS (PARTITION BY person_id, track_id ORDER BY fixed_at)) s
            """
        )
    )
    conn.execute(sa.text(f"CREATE INDEX ON {segs} USING gist (g)"))
    conn.execute(sa.text(f"ANALYZE {segs}"))
    # Leaf cells in scope near the day's fixes, or assigned to someone who patrols.
    conn.execute(
        sa.text(
            f"""
            CREATE UNLOGGED TABLE {cells} AS
            WITH leaves AS (
                SELECT g.id, g.code, g.geom FROM grids g WHERE {_LEAF_IN_SCOPE}
            ),
            held AS MATERIALIZED (
                SELECT a.person_id, a.grid_code FROM assignments a
                 WHERE {hierarchy.valid_at("a")} AND a.duty = ANY(CAST(:duties AS text[])) AND {_PERSON_IN_SCOPE}
            ),
            duty(code, people) AS (
                -- A patrol duty on a grid covers every leaf cell below it: one walk for all people.
                SELECT d.code, array_agg(DISTINCT h.person_id)
                  FROM geogrid_descendants(ARRAY(SELECT DISTINCT grid_code FROM held), CAST(:at AS timestamptz)) d
                  JOIN held h ON h.grid_code = d.root
                 GROUP BY d.code
            )
            -- The area as geogrid_area_m2 measures it, from the shape in metres made once.
            -- reach: what lies within sight of the cell (where a segment comes into reach of it).
            SELECT l.id, l.code, m.g, ST_Area(m.g) AS area_m2, coalesce(d.people, '{{}}') AS duty_people,
                   ST_Buffer(m.g, :r, 'quad_segs=4') AS reach
              FROM leaves l LEFT JOIN duty d ON d.code = l.code
             CROSS JOIN LATERAL (SELECT ST_Transform(ST_Segmentize(l.geom, 0.0001), :srid) AS g) m
             WHERE d.code IS NOT NULL
                OR l.geom && (SELECT ST_Expand(ST_Transform(ST_SetSRID(ST_Extent(g), :srid), 4326), 0.001) FROM {fixes})
            """
        ),
        params,
    )
    conn.execute(sa.text(f"CREATE INDEX ON {cells} USING gist (g)"))
    conn.execute(sa.text(f"ANALYZE {cells}"))
    with transaction_settings(conn, **_ALL_CORES):
        _visits_and_seen(conn, params, fixes, segs, cells, visits, pairs, days, seen, seen_by_visit, seen_by_pair)
        rows = (
            conn.execute(
                sa.text(
                    f"""
                    WITH visit_lists AS (
                        SELECT v.person_id, v.grid_id,
                               json_agg(json_build_object(
                                   'entry', v.entry, 'exit', v.exit, 'dwell_s', extract(epoch FROM v.exit - v.entry),
                                   'fraction', s.fraction) ORDER BY v.entry) AS visits
                          FROM {visits} v
                          LEFT JOIN {seen_by_visit} s
                            ON s.person_id = v.person_id AND s.grid_id = v.grid_id AND s.entry = v.entry
                         GROUP BY v.person_id, v.grid_id
                    )
                    SELECT p.person_id, p.grid_id, p.code, p.area_m2, p.assigned, vl.visits, p.covered_m2
                      FROM {seen_by_pair} p JOIN visit_lists vl ON vl.person_id = p.person_id AND vl.grid_id = p.grid_id
                    """
                ),
                params,
            )
            .mappings()
            .all()
        )
    patrolled = {(r["person_id"], r["code"]) for r in rows}
    missed = (
        conn.execute(
            sa.text(f"SELECT c.id, c.code, c.area_m2, p AS person_id FROM {cells} c, unnest(c.duty_people) AS p")
        )
        .mappings()
        .all()
    )
    roots = dict(conn.execute(sa.text(f"SELECT * FROM geogrid_root_codes(ARRAY(SELECT code FROM {cells}))")).all())
    # 补签 approved for the day: counted for the rule of the cells they name (never as visits).
    repaired = dict(((p, c), n) for p, c, n in conn.execute(sa.text(
        f"SELECT person_id, grid_code, count(*) FROM patrol_repairs WHERE day = :day AND status = 'approved' "
        f"AND {_PERSON_IN_SCOPE} GROUP BY person_id, grid_code"), {"day": day, "people": people}).all())  # fmt: skip
    out = []
    for r in rows:
        visit_list = [dict(v) for v in r["visits"]]
        repairs = repaired.get((r["person_id"], r["code"]), 0) if r["assigned"] else 0
        rule, reasons = apply_rule(visit_list, settings, repairs)
        out.append(_row(day, r["code"], r["person_id"], r["grid_id"], roots.get(r["code"]), r["area_m2"],
                        r["covered_m2"], visit_list, rule, r["assigned"], reasons, repairs))  # fmt: skip
    for m in missed:
        if (m["person_id"], m["code"]) not in patrolled:
            repairs = repaired.get((m["person_id"], m["code"]), 0)
            rule, reasons = apply_rule([], settings, repairs)
            out.append(_row(day, m["code"], m["person_id"], m["id"], roots.get(m["code"]), m["area_m2"], 0.0, [],
                            rule, True, reasons, repairs))  # fmt: skip
    # The cells whose uncovered part may change: all in scope, or those these people saw before or see now.
    touched = None
    if people is not None:
        before = conn.execute(sa.text(
            f"SELECT grid_code FROM coverage WHERE day = :day AND covered_m2 > 0 AND {_PERSON_IN_SCOPE}"
        ), {"day": day, "people": people}).scalars()  # fmt: skip
        touched = set(before) | {r["grid_code"] for r in out if r["covered_m2"] > 0}
    conn.execute(
        sa.text(
            f"DELETE FROM coverage WHERE day = :day AND (CAST(:grid AS text) IS NULL OR grid_code IN "
            f"(SELECT code FROM {cells})) AND {_PERSON_IN_SCOPE}"
        ),
        {"day": day, "grid": grid, "people": people},
    )
    if out:
        conn.execute(
            sa.text(
                "INSERT INTO coverage (day, grid_code, person_id, grid_id, area_code, cell_m2, covered_m2, fraction, "
                "visit_count, rule_visits, visits, assigned, compliant, reasons, repairs) VALUES (:day, :grid_code, "
                ":person_id, :grid_id, :area_code, :cell_m2, :covered_m2, :fraction, :visit_count, :rule_visits, "
                "CAST(:visits AS jsonb), :assigned, :compliant, :reasons, :repairs)"
            ),
            out,
        )
    if touched is None:
        _store_all_gaps(conn, settings, day, grid, cells, seen_by_pair, srid)
    conn.execute(sa.text("DROP TABLE " + ", ".join(f"cov_{t}_{tag}" for t in tables)))
    if touched:
        _store_gaps(conn, settings, day, grid=grid, codes=sorted(touched))
    return len(out)


def _store_all_gaps(conn: Connection, settings: Settings, day: dt.date, grid: str | None, cells: str,
                    seen_by_pair: str, srid: int) -> None:  # fmt: skip
    """Store the uncovered part of every leaf cell under *grid* from a whole day's computation: each staged
    cell less the union of what everyone saw of it (worked out for the coverage already), and the cells
    nobody came near whole."""
    params = {"day": day, "grid": grid, "srid": srid, "min_m2": settings.sliver_m2, "at": day_moment(settings, day)}
    conn.execute(sa.text(
        f"DELETE FROM coverage_gaps WHERE day = :day AND (CAST(:grid AS text) IS NULL OR grid_code IN ({_SUBTREE}))"
    ), params)  # fmt: skip
    conn.execute(
        sa.text(
            f"""
            WITH seen AS (
                SELECT grid_id, ST_Union(seen) AS seen FROM {seen_by_pair} WHERE NOT ST_IsEmpty(seen) GROUP BY grid_id
            ),
            staged AS (
                SELECT c.id, c.code, c.area_m2,
                       CASE WHEN s.seen IS NULL THEN c.g ELSE ST_Difference(c.g, s.seen) END AS gap
                  FROM {cells} c LEFT JOIN seen s ON s.grid_id = c.id
            )
            INSERT INTO coverage_gaps (day, grid_code, grid_id, cell_m2, uncovered_m2, geom)
            SELECT :day, code, id, area_m2, CASE WHEN big THEN ST_Area(gap) ELSE 0 END,
                   CASE WHEN big THEN ST_Multi(ST_CollectionExtract(ST_Transform(gap, 4326), 3)) END
              FROM (SELECT *, NOT ST_IsEmpty(gap) AND ST_Area(gap) >= :min_m2 AS big FROM staged) g
            UNION ALL
            -- Cells nobody came near (not staged): all of each is uncovered.
            SELECT :day, g.code, g.id, a.m2, a.m2, g.geom
              FROM grids g
             CROSS JOIN LATERAL (SELECT ST_Area(ST_Transform(ST_Segmentize(g.geom, 0.0001), :srid)) AS m2) a
             WHERE {_LEAF_IN_SCOPE} AND NOT EXISTS (SELECT 1 FROM {cells} c WHERE c.id = g.id)
            """
        ),
        params,
    )


def _store_gaps(conn: Connection, settings: Settings, day: dt.date, *, grid: str | None,
                codes: list[str] | None) -> None:  # fmt: skip
    """Work out and store the uncovered part of every leaf cell under *grid* (or of *codes*) on *day*: the cell
    less what anyone's tracks came within ``sight_m`` of (empty parts under ``sliver_m2`` are no part)."""
    start, end = day_window(settings, day)
    params = {"grid": grid, "codes": codes, "s": start, "e": end, "r": settings.sight_m, "day": day,
              "srid": settings.metric_srid, "min_m2": settings.sliver_m2, "at": day_moment(settings, day)}  # fmt: skip
    conn.execute(sa.text(
        f"DELETE FROM coverage_gaps g WHERE day = :day AND (CAST(:codes AS text[]) IS NULL OR grid_code = ANY(:codes))"
        f" AND (CAST(:grid AS text) IS NULL OR grid_code IN ({_SUBTREE}))"), params)  # fmt: skip
    conn.execute(
        sa.text(
            f"""
            WITH cells AS MATERIALIZED (
                SELECT g.id, g.code, g.geom FROM grids g
                 WHERE {_LEAF_IN_SCOPE} AND (CAST(:codes AS text[]) IS NULL OR g.code = ANY(:codes))
            ),
            -- One metric CRS, so each track is buffered once, not once per cell.
            crs AS (
                SELECT coalesce(CAST(:srid AS integer), geogrid_utm_srid(ST_SetSRID(ST_Extent(geom)::geometry, 4326)))
                           AS srid
                  FROM cells
            ),
            paths AS MATERIALIZED (
                SELECT ST_Buffer(ST_Transform(path, (SELECT srid FROM crs)), :r, 'quad_segs=8') AS seen
                  FROM (SELECT CASE WHEN count(*) = 1 THEN (array_agg(geom))[1]
                                    ELSE ST_MakeLine(array_agg(geom ORDER BY fixed_at)) END AS path
                          FROM gps_fixes
                         WHERE fixed_at >= :s AND fixed_at < :e
                           AND geom && (SELECT ST_Expand(ST_SetSRID(ST_Extent(geom)::geometry, 4326), 0.01) FROM cells)
                         GROUP BY track_id) t
            ),
            -- Materialized: inlined, each cell's union and difference would be worked out once per use.
            measured AS MATERIALIZED (
                SELECT c.id, c.code, m.cell_m,
                       (SELECT ST_Union(ST_ClipByBox2D(p.seen, ST_Expand(m.cell_m, 1)::box2d)) FROM paths p
                         WHERE p.seen && m.cell_m) AS seen
                  FROM cells c CROSS JOIN crs
                 CROSS JOIN LATERAL (SELECT ST_Transform(ST_Segmentize(c.geom, 0.0001), crs.srid) AS cell_m) m
            ),
            gaps AS MATERIALIZED (
                SELECT id, code, ST_Area(cell_m) AS cell_m2,
                       CASE WHEN seen IS NULL THEN cell_m ELSE ST_Difference(cell_m, seen) END AS gap
                  FROM measured
            )
            INSERT INTO coverage_gaps (day, grid_code, grid_id, cell_m2, uncovered_m2, geom)
            SELECT :day, code, id, cell_m2, CASE WHEN big THEN ST_Area(gap) ELSE 0 END,
                   CASE WHEN big THEN ST_Multi(ST_CollectionExtract(ST_Transform(gap, 4326), 3)) END
              FROM (SELECT *, NOT ST_IsEmpty(gap) AND ST_Area(gap) >= :min_m2 AS big FROM gaps) g
            """
        ),
        params,
    )


def _visits_and_seen(conn, params, fixes, segs, cells, visits, pairs, days, seen, seen_by_visit, seen_by_pair) -> None:
    """Create the visits, (person, cell) pairs, and what each visit and each pair saw of its cell.

    Runs with parallel workers allowed (``_ALL_CORES``). Measured on
    ``bench/coverage_bench.py`` (39,000 visits, same results): visits 2.0 s -> 1.7 s; the
    visits' paths (a join of every visit with its fixes, sorted) and their coverage
    2.4 s + 3.6 s -> 4.8 s, all of it parallel now; each person's day buffered 2.4 s -> 1.2 s.
    """
    # Visits: stretches of track within reach of a cell, split where the person was away
    # longer than the gap. Driven from the cells through the segments' index (10,000
    # index scans, not 288,000 the other way). A segment within reach from end to end
    # stands for [t0, t1]; the few that come into reach (or leave it) on the way go
    # through geogrid_visit_range (migration 0009), times interpolated along them. Each
    # stretch is widened by the gap and the multirange of a (person, cell) merges those
    # that overlap or touch: one range per visit, without sorting every fix in windows.
    conn.execute(
        sa.text(
            f"""
            CREATE UNLOGGED TABLE {visits}_runs AS
            SELECT s.person_id, c.id AS grid_id,
                   CASE WHEN s.t1 = s.t0 OR (ST_Intersects(ST_StartPoint(s.g), c.reach)
                                            AND ST_Intersects(ST_EndPoint(s.g), c.reach))
                        THEN tstzrange(s.t0, s.t1 + make_interval(secs => :gap))
                        ELSE geogrid_visit_range(s.g, s.t0, s.t1, c.g, c.reach, :gap) END AS run
              FROM {cells} c
              JOIN {segs} s ON s.g && ST_Expand(c.g, :r) AND _ST_DWithin(s.g, c.g, :r)
            """
        ),
        params,
    )
    # (A statement of its own: in one with the aggregate, the stretches were cut after the
    # sort, serially, and every row carried both geometries through it: 10.4 s -> 1.6 s.)
    conn.execute(
        sa.text(
            f"""
            CREATE UNLOGGED TABLE {visits} AS
            SELECT person_id, grid_id, lower(r) AS entry, upper(r) - make_interval(secs => :gap) AS exit
              FROM (SELECT person_id, grid_id, range_agg(run) AS runs FROM {visits}_runs GROUP BY person_id, grid_id) v
             CROSS JOIN unnest(runs) AS r
            """
        ),
        params,
    )
    conn.execute(sa.text(f"DROP TABLE {visits}_runs"))
    conn.execute(
        sa.text(
            f"""
            CREATE UNLOGGED TABLE {pairs} AS
            SELECT v.person_id, v.grid_id, c.code, c.area_m2, v.person_id = ANY(c.duty_people) AS assigned
              FROM (SELECT DISTINCT person_id, grid_id FROM {visits}) v JOIN {cells} c ON c.id = v.grid_id
            """
        )
    )
    # Each person's day: one line per track (a gap is not walked), times as M. Stored
    # sparsely (fillfactor) so that parallel workers share the buffering below: a
    # parallel scan hands out whole pages.
    conn.execute(
        sa.text(
            f"""
            CREATE UNLOGGED TABLE {days} WITH (fillfactor = 10) AS
            SELECT person_id, CASE WHEN count(*) = 1 THEN (array_agg(line))[1] ELSE ST_Collect(line) END AS path
              FROM (SELECT person_id, CASE WHEN count(*) = 1 THEN (array_agg(g))[1]
                                           ELSE ST_MakeLine(array_agg(g ORDER BY fixed_at)) END AS line
                      FROM {fixes} GROUP BY person_id, track_id) t
             GROUP BY person_id
            """
        )
    )
    conn.execute(sa.text(f"CREATE INDEX ON {days} (person_id)"))
    conn.execute(sa.text(f"ANALYZE {days}"))
    # What each person could see all day, buffered once.
    conn.execute(
        sa.text(
            f"CREATE UNLOGGED TABLE {seen} AS SELECT person_id, ST_Buffer(path, :r, 'quad_segs=4') AS seen FROM {days}"
        ),
        params,
    )
    # What each visit saw of its cell (assigned cells only: the rule is about them): the
    # visit's stretch of the person's day, cut by time (M), clipped to the cell's box
    # widened by the sight radius (the rest is farther than that from the cell: a visit
    # runs until the person has been away for visit_gap_s, and wanders meanwhile), buffered.
    # The visits drive the parallel scan and nothing sorts them first: a parallel scan
    # hands out pages as they are asked for, so the costly rows spread over the workers
    # (after a sort, whoever read the pages first did all the buffering).
    conn.execute(
        sa.text(
            f"""
            CREATE UNLOGGED TABLE {seen_by_visit} AS
            SELECT v.person_id, v.grid_id, v.entry,
                   least(1.0, ST_Area(ST_Intersection(ST_Buffer(ST_ClipByBox2D(
                       ST_LocateBetween(d.path, date_part('epoch', v.entry), date_part('epoch', v.exit)),
                       ST_Expand(c.g::box2d, :r)), :r, 'quad_segs=4'), c.g)) / c.area_m2) AS fraction
              FROM {visits} v
              JOIN {cells} c ON c.id = v.grid_id AND v.person_id = ANY(c.duty_people)
             CROSS JOIN LATERAL (SELECT path FROM {days} d WHERE d.person_id = v.person_id) d
            """
        ),
        params,
    )
    # What each person saw of each cell they came near, all day.
    conn.execute(
        sa.text(
            f"""
            CREATE UNLOGGED TABLE {seen_by_pair} AS
            SELECT p.*, least(p.area_m2, ST_Area(i.seen)) AS covered_m2, i.seen
              FROM {pairs} p JOIN {cells} c ON c.id = p.grid_id JOIN {seen} s ON s.person_id = p.person_id
             CROSS JOIN LATERAL (SELECT ST_Intersection(ST_ClipByBox2D(s.seen, c.g), c.g) AS seen) i
            """
        )
    )


#: The rows of the people in :people (NULL: everyone's), as ``person_id``.
_PERSON_IN_SCOPE = "(CAST(:people AS bigint[]) IS NULL OR person_id = ANY(CAST(:people AS bigint[])))"


#: Let statements run in parallel whatever their size: buffering and intersecting cost
#: milliseconds per row, which the planner's defaults (tuned for cheap rows) do not
#: weigh; on 2 cores this halves the per-visit work.
_ALL_CORES = {"parallel_setup_cost": "0", "parallel_tuple_cost": "0", "min_parallel_table_scan_size": "0"}


def apply_rule(visits: list[dict], settings: Settings, repairs: int = 0) -> tuple[int, list[str]]:
    """How many visits count for the rule, and why the cell falls short (empty when compliant).

    A visit counts when it covered at least ``rule_min_fraction`` of the cell and began
    at least ``rule_hours_apart`` after the previous counted one. Each approved 补签
    (*repairs*) counts as one more: the supervisor judged that patrol done.
    """
    good = [v for v in visits if (v["fraction"] or 0) >= settings.rule_min_fraction]
    counted: list[dt.datetime] = []
    for visit in good:
        entry = _as_time(visit["entry"])
        if not counted or (entry - counted[-1]).total_seconds() >= settings.rule_hours_apart * 3600:
            counted.append(entry)
    reasons = []
    if len(counted) + repairs < settings.rule_visits:
        if not visits and not repairs:
            reasons.append("not_patrolled")
        else:
            reasons.append(f"visits_counted:{len(counted) + repairs}:{settings.rule_visits}")
            if len(good) < len(visits):
                reasons.append(f"thin_visits:{len(visits) - len(good)}:{settings.rule_min_fraction * 100:g}")
            if len(good) > len(counted):
                reasons.append(f"too_close:{settings.rule_hours_apart:g}")
    return len(counted) + repairs, reasons


#: What each reason code says (its fields after the colons fill {0}, {1}): the API keeps the
#: codes, pages and the CLI show these words (translated on the pages).
REASONS = {
    "not_patrolled": N_("not patrolled"),
    "visits_counted": N_("{0} of {1} visits counted"),
    "thin_visits": N_("{0} visit(s) covered under {1}%"),
    "too_close": N_("visits less than {0} h apart"),
}


def describe_reason(code: str, gettext=lambda text: text) -> str:
    """The words for a reason code (``visits_counted:1:2`` -> ``1 of 2 visits counted``), via *gettext*."""
    name, *fields = code.split(":")
    template = REASONS.get(name)
    if template is None:
        return code
    try:
        return gettext(template).format(*fields)
    except (IndexError, ValueError):
        return template.format(*fields)


def _as_time(value) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def _row(day, code, person, grid_id, area_code, cell_m2, covered_m2, visits, rule, assigned, reasons,
         repairs=0) -> dict:  # fmt: skip
    return {
        "day": day, "grid_code": code, "person_id": person, "grid_id": grid_id, "area_code": area_code,
        "cell_m2": cell_m2, "covered_m2": covered_m2, "fraction": min(1.0, covered_m2 / cell_m2) if cell_m2 else 0.0,
        "visit_count": len(visits), "rule_visits": rule, "visits": json.dumps(visits, default=str),
        "assigned": assigned, "compliant": not reasons, "reasons": reasons, "repairs": repairs,
    }  # fmt: skip


def ensure_coverage(conn: Connection, settings: Settings, day: dt.date) -> list[int] | None:
    """Recompute what is stale of *day*; whose rows were recomputed (None: everyone's, []: nothing).

    All of the day when it was never computed or boundaries changed since; otherwise
    only the people whose tracks for the day came in, or whose duties changed, since
    their rows were computed (one worker's upload costs that worker's share, not the day's).
    Two requests at once (supervisors opening the map after an upload) do the work once:
    the second waits for the first and then finds the day up to date.
    """
    everything, people = _stale(conn, settings, day)
    if not everything and not people:
        return []
    _lock_day(conn, day)
    everything, people = _stale(conn, settings, day)
    if everything:
        compute_coverage(conn, settings, day)
        return None
    if people:
        compute_coverage(conn, settings, day, people=people)
    return people


def _stale(conn: Connection, settings: Settings, day: dt.date) -> tuple[bool, list[int]]:
    """Whether all of *day* is stale, and else whose rows are."""
    start, end = day_window(settings, day)
    # Only changes in effect by the day's end count: an edit today leaves last week as it was.
    everything, people = conn.execute(
        sa.text(
            """
            WITH done AS (SELECT min(computed_at) AS oldest, max(computed_at) AS newest FROM coverage WHERE day = :day),
            changes(person_id, at) AS (
                SELECT person_id, updated_at FROM patrol_tracks WHERE ended_at >= :s AND started_at < :e
                UNION ALL
                SELECT person_id, recorded_at FROM assignments WHERE valid_from <= :e
                UNION ALL
                SELECT person_id, valid_to FROM assignments WHERE valid_to <= :e
                UNION ALL
                SELECT person_id, decided_at FROM patrol_repairs WHERE day = :day AND decided_at IS NOT NULL
            )
            SELECT coalesce(done.oldest <
                       (SELECT max(greatest(CASE WHEN valid_from <= :e THEN recorded_at END,
                                            CASE WHEN valid_to <= :e THEN valid_to END)) FROM grids), true),
                   ARRAY(SELECT c.person_id FROM changes c
                          GROUP BY c.person_id
                         -- A person without rows (no duty, nowhere near a cell) is compared
                         -- with the day's latest computation.
                         HAVING max(c.at) > coalesce(
                                    (SELECT min(v.computed_at) FROM coverage v
                                      WHERE v.day = :day AND v.person_id = c.person_id),
                                    done.newest)
                          ORDER BY c.person_id)
              FROM done
            """
        ),
        {"day": day, "s": start, "e": end},
    ).one()
    return everything, people


def _lock_day(conn: Connection, day: dt.date) -> None:
    """Hold *day*'s recomputation lock until the transaction ends (one recomputation of a day at a time)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key, :day)"), {"key": _LOCK_KEY, "day": day.toordinal()})


#: The advisory lock space of coverage recomputations (the second key is the day).
_LOCK_KEY = 0x636F7631  # "cov1"
