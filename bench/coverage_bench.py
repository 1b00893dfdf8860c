"""Benchmark: patrol coverage, geogrid (PostGIS) against a straightforward GeoPandas approach.

Default workload (issue 5): 100 workers x 8 h at one fix per 10 s (288,000 fixes) over
10,000 cells of 100 m x 100 m (10 x 10 km); each worker is the helper of a 1 x 1 km
block of 100 cells and walks a random path through it. Prints fixes per second for

- geogrid's ``compute_coverage`` (fraction per cell and person, visits, the patrol rule,
  missed cells, stored in the ``coverage`` table), and
- GeoPandas: one line per worker, buffered by the sight radius, ``overlay`` with the cells,
  areas per (worker, cell),

and the ratio of the medians over ``--rounds`` rounds; then the time to bring the day
up to date after one worker uploads one more track (that worker's rows only). Run: ``.venv/bin/python bench/coverage_bench.py [--workers N] [--hours H]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import time

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa

from geogrid.config import Settings
from geogrid.grids.metric import from_metric
from geogrid.patrols.compute import compute_coverage, ensure_coverage
from geogrid.testing import scratch_database

SRID = 32650
ORIGIN = (500_000.0, 4_180_000.0)
CELL_M = 100.0
BLOCK = 10  # cells per side of one worker's block
DAY = dt.date(2026, 11, 20)
#: The cells and duties stand from before DAY (a past day is computed with its own boundaries and duties).
SINCE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def build(n_workers: int, rng: np.random.Generator, block: int = BLOCK):
    """Cells (metric) in blocks of *block* x *block*, one block per worker, on a square layout."""
    side = math.ceil(math.sqrt(n_workers))
    cells, owners = [], []
    x0, y0 = ORIGIN
    for w in range(n_workers):
        bx, by = (w % side) * block, (w // side) * block
        for i in range(block):
            for j in range(block):
                x, y = x0 + (bx + i) * CELL_M, y0 + (by + j) * CELL_M
                cells.append(shapely.box(x, y, x + CELL_M, y + CELL_M))
                owners.append(w)
    return np.array(cells), np.array(owners)


def walk(w: int, n_workers: int, fixes: int, rng: np.random.Generator, block: int = BLOCK) -> np.ndarray:
    """A random walk at ~1.2 m/s inside the worker's block (metric x, y per fix)."""
    side = math.ceil(math.sqrt(n_workers))
    bx, by = ORIGIN[0] + (w % side) * block * CELL_M, ORIGIN[1] + (w // side) * block * CELL_M
    size = block * CELL_M
    xy = np.empty((fixes, 2))
    x, y, heading = bx + size / 2, by + size / 2, rng.uniform(0, 2 * math.pi)
    for k in range(fixes):
        heading += rng.normal(0, 0.3)
        x, y = x + 12 * math.cos(heading), y + 12 * math.sin(heading)
        if not (bx < x < bx + size and by < y < by + size):
            heading += math.pi
            x, y = min(max(x, bx + 1), bx + size - 1), min(max(y, by + 1), by + size - 1)
        xy[k] = x, y
    return xy


def load_day(engine, n_workers: int, hours: float, rng: np.random.Generator, block: int = BLOCK):
    """The workload into *engine*: cells in blocks, a helper per block, each walking *hours* on DAY (a fix every
    10 s); returns the metric cells, the people's ids, their paths and the fixes' times."""
    cells_m, owners = build(n_workers, rng, block)
    cells_ll = from_metric(shapely.segmentize(cells_m, 25.0), SRID)
    per_worker = int(hours * 3600 / 10)
    start = dt.datetime(2026, 11, 20, 0, 30, tzinfo=dt.UTC)  # 08:30 in Asia/Shanghai
    times = [start + dt.timedelta(seconds=10 * k) for k in range(per_worker)]
    paths = [walk(w, n_workers, per_worker, rng, block) for w in range(n_workers)]
    with engine.begin() as conn:
        area = shapely.box(*shapely.total_bounds(cells_ll))
        conn.execute(sa.text("INSERT INTO grids (code, name, level, geom, valid_from) VALUES ('B', 'bench', "
                             "'township', ST_Multi(ST_GeomFromWKB(:w, 4326)), :since)"),
                     {"w": shapely.to_wkb(area), "since": SINCE})  # fmt: skip
        driver = conn.connection.driver_connection
        with driver.cursor().copy("COPY grids (code, name, level, parent_code, geom, valid_from) FROM STDIN") as copy:
            for n, wkb in enumerate(shapely.to_wkb(shapely.multipolygons(cells_ll[:, None]), hex=True)):
                copy.write_row((f"B{n + 1:05d}", f"cell {n + 1}", "cell", "B", wkb, SINCE))
        people = [conn.execute(sa.text("INSERT INTO people (name) VALUES (:n) RETURNING id"), {"n": f"w{w}"}).scalar()
                  for w in range(n_workers)]  # fmt: skip
        conn.execute(
            sa.text("INSERT INTO assignments (person_id, grid_code, duty, valid_from) "
                    "VALUES (:p, :c, 'grid_helper', :since)"),
            [{"p": people[owners[n]], "c": f"B{n + 1:05d}", "since": SINCE} for n in range(len(cells_ll))],
        )  # fmt: skip
        for w, path in enumerate(paths):
            ll = from_metric(shapely.points(path), SRID)
            track = conn.execute(
                sa.text("INSERT INTO patrol_tracks (person_id, started_at, ended_at, fix_count) "
                        "VALUES (:p, :s, :e, :n) RETURNING id"),
                {"p": people[w], "s": times[0], "e": times[-1], "n": per_worker},
            ).scalar()  # fmt: skip
            with driver.cursor().copy("COPY gps_fixes (person_id, fixed_at, geom, track_id) FROM STDIN") as copy:
                for k, wkb in enumerate(shapely.to_wkb(ll, hex=True)):
                    copy.write_row((people[w], times[k], wkb, track))
        conn.execute(sa.text("ANALYZE"))
    return cells_m, people, paths, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--database", default="geogrid_cov_bench")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="Timed rounds of each; medians are compared.")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    settings = Settings.from_env(levels=("township", "cell"))
    with scratch_database(settings, args.database) as engine:
        t = time.perf_counter()
        cells_m, people, paths, times = load_day(engine, args.workers, args.hours, rng)
        per_worker = len(times)
        fixes = per_worker * args.workers
        print(
            f"{len(cells_m):,} cells, {args.workers} workers, {fixes:,} fixes loaded in {time.perf_counter() - t:.1f} s"
        )

        # Rounds, each: geogrid's computation (it replaces the day's rows) and the GeoPandas
        # approach; medians compared (single timings on this machine vary by ~30%).
        geogrid_times, geopandas_times = [], []
        for round_ in range(args.rounds):
            t = time.perf_counter()
            with engine.begin() as conn:
                written = compute_coverage(conn, settings, DAY)
                compliant = conn.execute(
                    sa.text("SELECT count(*) FILTER (WHERE compliant), count(*) FROM coverage")
                ).one()
            geogrid_times.append(time.perf_counter() - t)

            t = time.perf_counter()
            cells_gdf = gpd.GeoDataFrame({"cell": np.arange(len(cells_m))}, geometry=cells_m, crs=SRID)
            lines = gpd.GeoDataFrame({"worker": np.arange(args.workers)},
                                     geometry=[shapely.LineString(p) for p in paths], crs=SRID)  # fmt: skip
            seen = lines.assign(geometry=lines.buffer(settings.sight_m))
            pieces = gpd.overlay(seen, cells_gdf, how="intersection")
            fractions = pieces.area / (CELL_M * CELL_M)
            geopandas_times.append(time.perf_counter() - t)
            print(f"round {round_ + 1}: geogrid {geogrid_times[-1]:.1f} s ({written:,} cell-person rows, "
                  f"{compliant[0]:,} compliant); geopandas {geopandas_times[-1]:.1f} s ({len(pieces):,} worker-cell "
                  f"pieces, mean fraction {fractions.mean():.2f})")  # fmt: skip
        geogrid_s, geopandas_s = statistics.median(geogrid_times), statistics.median(geopandas_times)
        print(f"geogrid coverage: {fixes / geogrid_s:,.0f} fixes/s (median {geogrid_s:.1f} s)")
        print(f"geopandas buffer + overlay: {fixes / geopandas_s:,.0f} fixes/s (median {geopandas_s:.1f} s)")
        print(f"ratio geogrid / geopandas: {geopandas_s / geogrid_s:.2f}x (target: at least 2x)")

        # A worker uploads one more track: the maps and reports (ensure_coverage) recompute
        # that worker's rows only.
        extra = walk(0, args.workers, 360, rng)
        evening = [times[-1] + dt.timedelta(hours=1, seconds=10 * k) for k in range(len(extra))]
        with engine.begin() as conn:
            track = conn.execute(
                sa.text("INSERT INTO patrol_tracks (person_id, started_at, ended_at, fix_count) "
                        "VALUES (:p, :s, :e, :n) RETURNING id"),
                {"p": people[0], "s": evening[0], "e": evening[-1], "n": len(extra)},
            ).scalar()  # fmt: skip
            with conn.connection.driver_connection.cursor().copy(
                "COPY gps_fixes (person_id, fixed_at, geom, track_id) FROM STDIN"
            ) as copy:
                for k, wkb in enumerate(shapely.to_wkb(from_metric(shapely.points(extra), SRID), hex=True)):
                    copy.write_row((people[0], evening[k], wkb, track))
        t = time.perf_counter()
        with engine.begin() as conn:
            redone = ensure_coverage(conn, settings, DAY)
        print(f"one more track for one worker: {len(redone or [])} of {args.workers} workers' rows recomputed in "
              f"{time.perf_counter() - t:.2f} s (the whole day: {geogrid_s:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
