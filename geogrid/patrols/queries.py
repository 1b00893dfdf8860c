"""Patrol coverage as the pages, tiles, API and CLI read it: the day's rows per cell and person,
per worker and rolled up, the cells as GeoJSON or vector tiles, the tracks, the missed
cells and the stored uncovered parts. Nothing here computes: bring the day up to date
first, once per request (:func:`geogrid.patrols.compute.ensure_coverage`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid import gcj02
from geogrid.config import Settings
from geogrid.grids import hierarchy
from geogrid.patrols.compute import _LEAF_IN_SCOPE, _SUBTREE, day_moment, day_notice, day_window
from geogrid.store.db import transaction_settings

#: What the maps leave out of a shape, in degrees: the points along a cell's edges that only densify it
#: (about 1 cm off the edge), and for tracks and uncovered parts what is under half a metre (6 decimals: 0.1 m).
EDGE = 1e-7
DRAWN = 5e-6
#: A track drawn for the day keeps its turns of more than about 1.5 m (a fix every 10 s moves 10-15 m).
WALKED = 1.5e-5


def coverage_report(conn: Connection, settings: Settings, day: dt.date, *, level: str | None = None,
                    grid: str | None = None, gettext=lambda text: text) -> dict:  # fmt: skip
    """The day's coverage: rows per cell and person, per worker, and compliance rolled up to *level*.

    ``notice`` says why a day has nothing to report (no boundaries then, no patrol data)
    instead of listing every assigned cell as missed, in words through *gettext*.
    """
    notice = day_notice(conn, settings, day)
    if notice is not None:
        return {"date": day.isoformat(), "notice": notice.text(gettext), "cells": [], "workers": [], "rollup": []}
    scope = {"day": day, "grid": grid, "at": day_moment(settings, day)}
    rows = (
        conn.execute(
            sa.text(
                f"""
            SELECT c.grid_code, c.person_id, p.name AS person, c.cell_m2, c.covered_m2, c.fraction,
                   c.visit_count, c.rule_visits, c.visits, c.assigned, c.compliant, c.reasons, c.repairs,
                   c.computed_at
              FROM coverage c JOIN people p ON p.id = c.person_id
             WHERE c.day = :day AND (CAST(:grid AS text) IS NULL OR c.grid_code IN ({_SUBTREE}))
             ORDER BY c.grid_code, p.name
            """
            ),
            scope,
        )
        .mappings()
        .all()
    )
    cells = [{**dict(r), "computed_at": r["computed_at"].isoformat()} for r in rows]
    workers: dict[int, dict] = {}
    for r in cells:
        empty = {"assigned": [], "patrolled": [], "missed": [], "compliant": []}
        w = workers.setdefault(r["person_id"], {"person_id": r["person_id"], "person": r["person"], **empty})
        if r["visit_count"]:
            w["patrolled"].append(r["grid_code"])
        if r["assigned"]:
            w["assigned"].append(r["grid_code"])
            (w["compliant"] if r["compliant"] else w["missed"] if not r["visit_count"] else []).append(r["grid_code"])
    rollup = []
    if level is not None:
        rollup = [
            dict(r)
            for r in conn.execute(
                sa.text(
                    """
                    SELECT a.ancestor AS code, a.ancestor_name AS name, count(DISTINCT c.grid_code) AS cells,
                           count(DISTINCT c.grid_code) FILTER (WHERE c.compliant) AS compliant_cells,
                           round(avg(c.fraction)::numeric, 4)::float AS mean_fraction
                      FROM coverage c JOIN grid_ancestry a ON a.code = c.grid_code
                     WHERE c.day = :day AND c.assigned AND a.ancestor_level = :level
                     GROUP BY a.ancestor, a.ancestor_name ORDER BY a.ancestor
                    """
                ),
                {"day": day, "level": level},
            ).mappings()
        ]
        for r in rollup:
            r["compliance_rate"] = round(r["compliant_cells"] / r["cells"], 4) if r["cells"] else None
    return {"date": day.isoformat(), "notice": None, "cells": cells, "workers": list(workers.values()),
            "rollup": rollup}  # fmt: skip


def coverage_gaps(conn: Connection, settings: Settings, day: dt.date, *, grid: str | None = None) -> dict:
    """The parts of leaf cells (under *grid*) nobody came within ``sight_m`` of on *day*, as GeoJSON, largest
    first: stored with the day's coverage (bring the day up to date first)."""
    rows = conn.execute(
        sa.text(
            f"""
            SELECT g.grid_code AS code, g.cell_m2, g.uncovered_m2,
                   ST_AsGeoJSON(ST_SimplifyPreserveTopology(g.geom, {DRAWN}), 6) AS geometry
              FROM coverage_gaps g
             WHERE g.day = :day AND g.geom IS NOT NULL
               AND (CAST(:grid AS text) IS NULL OR g.grid_code IN ({_SUBTREE}))
             ORDER BY g.uncovered_m2 DESC, g.grid_code
            """
        ),
        {"day": day, "grid": grid, "at": day_moment(settings, day)},
    ).mappings()
    features = [
        {"type": "Feature", "geometry": json.loads(r["geometry"]),
         "properties": {"code": r["code"], "uncovered_m2": round(r["uncovered_m2"], 1),
                        "uncovered_fraction": round(r["uncovered_m2"] / r["cell_m2"], 4) if r["cell_m2"] else None}}
        for r in rows
    ]  # fmt: skip
    return {"type": "FeatureCollection", "date": day.isoformat(), "features": features}


def coverage_cells_geojson(conn: Connection, settings: Settings, day: dt.date, *, grid: str | None = None) -> dict:
    """Leaf cells (under *grid*) with the day's coverage: best fraction, visits, compliance, people.

    A cell is compliant when someone assigned to it met the rule; ``assigned`` says
    whether anyone patrols it by duty (unassigned cells have no rule to meet).
    """
    rows = conn.execute(
        sa.text(
            f"""
            WITH cells AS (
                SELECT g.code, g.name, g.geom FROM grids g WHERE {_LEAF_IN_SCOPE}
            )
            SELECT c.code, c.name, ST_AsGeoJSON(ST_SimplifyPreserveTopology(c.geom, {EDGE}), 6) AS geometry,
                   coalesce(max(v.fraction), 0) AS fraction, coalesce(max(v.visit_count), 0) AS visits,
                   coalesce(bool_or(v.assigned), false) AS assigned,
                   coalesce(bool_or(v.compliant AND v.assigned), false) AS compliant,
                   coalesce(json_agg(json_build_object('person', p.name, 'fraction', round(v.fraction::numeric, 3),
                                     'visits', v.visit_count, 'compliant', v.compliant, 'reasons', v.reasons,
                                     'repairs', v.repairs)
                                     ORDER BY p.name) FILTER (WHERE v.person_id IS NOT NULL), '[]') AS people
              FROM cells c
              LEFT JOIN coverage v ON v.grid_code = c.code AND v.day = :day
              LEFT JOIN people p ON p.id = v.person_id
             GROUP BY c.code, c.name, c.geom ORDER BY c.code
            """
        ),
        {"day": day, "grid": grid, "at": day_moment(settings, day)},
    ).mappings()
    features = [
        {"type": "Feature", "id": r["code"], "geometry": json.loads(r["geometry"]),
         "properties": {"code": r["code"], "name": r["name"], "fraction": round(float(r["fraction"]), 4),
                        "visits": r["visits"], "assigned": r["assigned"], "compliant": r["compliant"],
                        "people": r["people"]}}
        for r in rows
    ]  # fmt: skip
    return {"type": "FeatureCollection", "date": day.isoformat(), "features": features}


def person_day(conn: Connection, settings: Settings, day: dt.date, person: int) -> dict:
    """A worker's own cells on *day* (the leaf cells under their patrol duties that day) as GeoJSON, each with
    ``state``: ``done`` (the rule is met by visits), ``repaired`` (met with an approved 补签) or ``todo``; and
    the visits so far, the visits the rule counts, the fraction covered and, for one not done, why.
    """
    from geogrid.patrols.compute import PATROL_DUTIES

    rows = conn.execute(
        sa.text(
            f"""
            WITH held AS (
                SELECT a.grid_code FROM assignments a
                 WHERE a.person_id = :p AND {hierarchy.valid_at("a")} AND a.duty = ANY(CAST(:duties AS text[]))
            ),
            mine AS (SELECT DISTINCT code FROM geogrid_descendants(ARRAY(SELECT grid_code FROM held),
                                                                  CAST(:at AS timestamptz)))
            SELECT g.code, g.name, ST_AsGeoJSON(ST_SimplifyPreserveTopology(g.geom, {EDGE}), 7) AS geometry,
                   coalesce(v.fraction, 0) AS fraction, coalesce(v.visit_count, 0) AS visits,
                   coalesce(v.rule_visits, 0) AS rule_visits, coalesce(v.compliant, false) AS compliant,
                   coalesce(v.repairs, 0) AS repairs, coalesce(v.reasons, ARRAY['not_patrolled']) AS reasons,
                   v.visits AS times
              FROM mine m
              JOIN grids g ON g.code = m.code AND {hierarchy.valid_at("g")} AND {hierarchy.is_leaf("g", "at")}
              LEFT JOIN coverage v ON v.day = :day AND v.person_id = :p AND v.grid_code = g.code
             ORDER BY g.code
            """
        ),
        {"p": person, "day": day, "at": day_moment(settings, day), "duties": list(PATROL_DUTIES)},
    ).mappings()
    features = []
    for r in rows:
        # rule_visits counts approved repairs too: met by visits alone, or only with the repairs.
        walked = r["rule_visits"] - r["repairs"]
        state = "todo" if not r["compliant"] else "done" if walked >= settings.rule_visits else "repaired"
        times = [
            {"entry": v.get("entry"), "exit": v.get("exit"), "fraction": v.get("fraction")} for v in (r["times"] or [])
        ]
        features.append({
            "type": "Feature", "id": r["code"], "geometry": json.loads(r["geometry"]),
            "properties": {"code": r["code"], "name": r["name"], "state": state, "visits": r["visits"],
                           "rule_visits": r["rule_visits"], "needed": settings.rule_visits,
                           "fraction": round(float(r["fraction"]), 4), "repairs": r["repairs"],
                           "reasons": [] if r["compliant"] else list(r["reasons"]), "times": times},
        })  # fmt: skip
    counts = {s: sum(f["properties"]["state"] == s for f in features) for s in ("done", "repaired", "todo")}
    return {"type": "FeatureCollection", "date": day.isoformat(), "counts": counts, "features": features}


#: The grid a request is about (:grid, as it was at :at), when it names one; a fix within :r metres of it is near.
_GRID_SCOPE = f"""scope AS (
                SELECT ST_Union(g.geom) AS geom FROM grids g
                 WHERE CAST(:grid AS text) IS NOT NULL AND {hierarchy.valid_at("g")} AND g.code = :grid
            )"""
_NEAR_SCOPE = """(CAST(:grid AS text) IS NULL
                    OR (f.geom && ST_Expand((SELECT geom FROM scope), 0.01)
                        AND ST_DWithin(f.geom::geography, (SELECT geom FROM scope)::geography, :r)))"""


def tracks_geojson(conn: Connection, settings: Settings, day: dt.date, *, grid: str | None = None,
                   person: int | None = None) -> dict:  # fmt: skip
    """The day's kept fixes as one line per track, with the worker's id and name (near *grid*; of *person*)."""
    start, end = day_window(settings, day)
    rows = conn.execute(
        sa.text(
            f"""
            WITH {_GRID_SCOPE}
            SELECT f.track_id, f.person_id, p.name AS person, min(f.fixed_at) AS started, max(f.fixed_at) AS ended,
                   count(*) AS fixes,
                   ST_AsGeoJSON(ST_Simplify(CASE WHEN count(*) = 1 THEN (array_agg(f.geom))[1]
                                     ELSE ST_MakeLine(array_agg(f.geom ORDER BY f.fixed_at)) END, {WALKED}), 6)
                       AS geometry
              FROM gps_fixes f JOIN people p ON p.id = f.person_id
             WHERE f.fixed_at >= :s AND f.fixed_at < :e
               AND (CAST(:person AS bigint) IS NULL OR f.person_id = :person) AND {_NEAR_SCOPE}
             GROUP BY f.track_id, f.person_id, p.name
             ORDER BY p.name, min(f.fixed_at)
            """
        ),
        {"s": start, "e": end, "grid": grid, "person": person, "r": settings.sight_m, "at": day_moment(settings, day)},
    ).mappings()
    features = [
        {"type": "Feature", "id": r["track_id"], "geometry": json.loads(r["geometry"]),
         "properties": {"track_id": r["track_id"], "person_id": r["person_id"], "person": r["person"],
                        "started": r["started"].isoformat(), "ended": r["ended"].isoformat(), "fixes": r["fixes"]}}
        for r in rows
    ]  # fmt: skip
    return {"type": "FeatureCollection", "date": day.isoformat(), "features": features}


def track_counts(conn: Connection, settings: Settings, day: dt.date, *, grid: str | None = None) -> list[dict]:
    """Who has tracks on *day* (near *grid*) and how many, by name: the coverage page's list of workers."""
    start, end = day_window(settings, day)
    rows = conn.execute(
        sa.text(
            f"""
            WITH {_GRID_SCOPE}
            SELECT t.person_id, p.name AS person, count(*) AS tracks
              FROM patrol_tracks t JOIN people p ON p.id = t.person_id
             WHERE t.ended_at >= :s AND t.started_at < :e
               AND EXISTS (SELECT 1 FROM gps_fixes f WHERE f.track_id = t.id AND f.fixed_at >= :s AND f.fixed_at < :e
                           AND {_NEAR_SCOPE})
             GROUP BY t.person_id, p.name ORDER BY p.name, t.person_id
            """
        ),
        {"s": start, "e": end, "grid": grid, "r": settings.sight_m, "at": day_moment(settings, day)},
    ).mappings()
    return [dict(r) for r in rows]


def replay_fixes(conn: Connection, settings: Settings, day: dt.date, person: int) -> list[list]:
    """A worker's kept fixes of *day* in time order: [seconds since the day's start, lon, lat, track id]."""
    start, end = day_window(settings, day)
    rows = conn.execute(sa.text("""
        SELECT extract(epoch FROM fixed_at - :s)::int, round(ST_X(geom)::numeric, 6)::float8,
               round(ST_Y(geom)::numeric, 6)::float8, track_id
          FROM gps_fixes WHERE person_id = :p AND fixed_at >= :s AND fixed_at < :e ORDER BY fixed_at
    """), {"p": person, "s": start, "e": end}).all()  # fmt: skip
    return [list(r) for r in rows]


def leaf_count(conn: Connection, *, grid: str | None = None, at: dt.datetime | None = None) -> int:
    """How many leaf cells lie under *grid* (or anywhere), current or as they were at *at*."""
    return conn.execute(
        sa.text(
            f"""
            SELECT count(*) FROM grids g WHERE {_LEAF_IN_SCOPE}
            """
        ),
        {"grid": grid, "at": at},
    ).scalar_one()


def missed_cells(conn: Connection, settings: Settings, day: dt.date, *, grid: str | None = None,
                 limit: int = 500) -> tuple[list, int]:  # fmt: skip
    """Assigned cells that fell short of the rule on *day* (worst first, at most *limit*), and how many in all."""
    rows = (
        conn.execute(
            sa.text(
                f"""
            SELECT c.grid_code AS code, g.name, max(c.fraction) AS fraction, max(c.visit_count) AS visits,
                   json_agg(json_build_object('person', p.name, 'reasons', c.reasons) ORDER BY p.name) AS people,
                   count(*) OVER () AS total
              FROM coverage c JOIN grids g ON g.id = c.grid_id JOIN people p ON p.id = c.person_id
             WHERE c.day = :day AND c.assigned
               AND (CAST(:grid AS text) IS NULL OR c.grid_code IN ({_SUBTREE}))
             GROUP BY c.grid_code, g.name
            HAVING NOT bool_or(c.compliant)
             ORDER BY max(c.fraction), c.grid_code
             LIMIT :limit
            """
            ),
            {"day": day, "grid": grid, "limit": limit, "at": day_moment(settings, day)},
        )
        .mappings()
        .all()
    )
    return [{k: v for k, v in r.items() if k != "total"} for r in rows], (rows[0]["total"] if rows else 0)


def coverage_tile(conn: Connection, settings: Settings, day: dt.date, z: int, x: int, y: int, *,
                  bins: Sequence[float], grid: str | None = None, datum: str = "wgs84") -> bytes:  # fmt: skip
    """Mapbox vector tile of the leaf cells with *day*'s coverage (layer ``coverage``).

    The cells are drawn grouped: one feature for all the cells of the tile in the same *bins* of the covered
    fraction (upper bounds, ascending: the map's colours) with the same ``assigned`` and ``compliant``; its
    ``fraction`` is the lowest of them (same colour) and ``cells`` their number. A click asks the API.
    Bring the day up to date first (:func:`geogrid.patrols.compute.ensure_coverage`).
    """
    # A plan for each tile's own box: a generic plan of this statement (psycopg prepares it after 5 runs on a
    # connection) joins every cell in the area to the day's coverage, 50x slower (bench/map_bench.py --coverage).
    with transaction_settings(conn, plan_cache_mode="force_custom_plan"):
        return _coverage_tile(conn, settings, day, z, x, y, bins=bins, grid=grid, datum=datum)


def _coverage_tile(conn: Connection, settings: Settings, day: dt.date, z: int, x: int, y: int, *,
                   bins: Sequence[float], grid: str | None, datum: str) -> bytes:  # fmt: skip
    tile = conn.execute(
        sa.text(
            f"""
            WITH bounds AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),
            -- Each cell's shape in the tile, made once (not again to filter), then its day: grouping the
            -- coverage by cell alone, never by shape.
            shaped AS MATERIALIZED (
                SELECT g.code, ST_AsMVTGeom(ST_Transform({gcj02.SHIFTED.format(geom="g.geom")}, 3857), b.env,
                                            :extent, 64, true) AS geom
                  FROM grids g, bounds b
                 WHERE g.geom && {gcj02.SEARCH_BOX.format(env="b.env")} AND {_LEAF_IN_SCOPE}
            ),
            features AS (
                SELECT s.geom, s.code, coalesce(v.fraction, 0)::float8 AS fraction, coalesce(v.visits, 0) AS visits,
                       coalesce(v.assigned, false) AS assigned, coalesce(v.compliant, false) AS compliant
                  FROM shaped s
                  LEFT JOIN LATERAL (
                      SELECT max(c.fraction) AS fraction, max(c.visit_count) AS visits, bool_or(c.assigned) AS assigned,
                             bool_or(c.compliant AND c.assigned) AS compliant
                        FROM coverage c WHERE c.day = :day AND c.grid_code = s.code
                  ) v ON true
                 WHERE s.geom IS NOT NULL
            ),
            -- The cells that look the same drawn as one feature: a browser draws a tile of 1,500 cells as a
            -- dozen features, not 1,500 (same fill, same outline; the tiles take no clicks).
            drawn AS (
                SELECT ST_Collect(geom) AS geom, min(fraction) AS fraction, assigned, compliant, count(*) AS cells
                  FROM features
                 GROUP BY width_bucket(fraction, CAST(:bins AS float8[])), assigned, compliant
            )
            SELECT ST_AsMVT(drawn, 'coverage', :extent, 'geom') FROM drawn
            """
        ),
        {
            "day": day,
            "grid": grid,
            "bins": list(bins),
            "z": z,
            "x": x,
            "y": y,
            "at": day_moment(settings, day),
            # The map asks for 512-pixel tiles one zoom out (geogrid.layers.base.vector_grid): below zoom 15 a
            # cell is a few pixels, and a grid of 2,048 per tile (4 per pixel) is finer than the screen.
            "extent": 4096 if z >= 14 else 2048,
            **gcj02.tile_params(datum, z, x, y),
        },
    ).scalar()
    return bytes(tile or b"")


def coverage_stamp(conn: Connection, day: dt.date) -> tuple:
    """What changes whenever *day*'s coverage is computed again: when it last was, and how many rows it has (a
    tile of the day made before is out of date once this changes)."""
    return tuple(conn.execute(sa.text("SELECT max(computed_at), count(*) FROM coverage WHERE day = :d"),
                              {"d": day}).one())  # fmt: skip


def latest_patrol_day(conn: Connection, settings: Settings) -> dt.date:
    """The most recent local day with patrol fixes up to today; today when there are none."""
    zone = ZoneInfo(settings.timezone)
    today = dt.datetime.now(zone).date()
    latest = conn.execute(
        sa.text("SELECT max(fixed_at) FROM gps_fixes WHERE fixed_at < :end"), {"end": day_window(settings, today)[1]}
    ).scalar()
    return latest.astimezone(zone).date() if latest is not None else today
