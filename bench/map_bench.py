"""Benchmark: the planner map with 100 and with 100,000 cells, bytes and time to first render.

For each size, a township of N Voronoi cells (20 x 20 km) is loaded into a throw-away
database and ``/map/grids`` is opened in headless Chromium (Debian's, via Playwright)
against a live server on 127.0.0.1. Prints, per size:

- bytes: the page itself, and everything the browser fetched until first render;
- time to first render: navigation start until the page reports ready (map drawn,
  tiling checked), median of ``--runs``;
- time until the cells themselves are drawn after zooming to where they show
  (embedded: at once; vector tiles: the tile layer's ``load`` event);
- how long the background tiling check (gaps, overlaps) took to report;

and the ratios big / small. Above ``GEOGRID_TILE_THRESHOLD`` (default 3,000) features
a level is served as vector tiles instead of embedded GeoJSON.

The command center's board and dashboard (``--cases 1000,100000``, over ``--case-cells``
10,000 cells): for each number of cases, spread over the last 30 days with events through the
standard case flow (立案, 派遣, 反馈, 核查, 结案, 回访; some 返工, 延期, 挂账, 缓办, 不予立案), the
median time of the API calls each page makes (the board: ``/api/cases/board``; the
dashboard: ``/api/indicators`` by the cell level with the first 200 of the ranking and the
total, ``/api/indicators/trend`` by day, for the last 7 days) and of opening ``/dashboard`` in Chromium until its charts
are drawn; then the ratios big / small (target: under 1 s each with 100,000 cases).

The supervisor's coverage page (``--coverage demo,300``): opening ``/map/coverage`` for a
patrolled day in Chromium until it is ready, for the demo township and for a day of 300
workers, each the helper of a 6 x 6 block of 100 m cells (10,800 cells) walking
``--coverage-hours`` (a fix every 10 s): the first open (which brings the day up to date)
and the median of the next ``--runs`` (which only read; target under 1 s for both sizes).

Run: ``.venv/bin/python bench/map_bench.py [--sizes 100,100000] [--cases 1000,100000]
[--coverage demo,300] [--runs 3]`` (an empty list leaves that part out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time

import numpy as np
import sqlalchemy as sa
from assign_bench import build_cells, load_cells
from playwright.sync_api import sync_playwright

from geogrid import accounts
from geogrid.api import create_app
from geogrid.config import Settings
from geogrid.incidents.workflow import DEPARTMENTS
from geogrid.testing import launch, live_server, scratch_database, sign_in


def load(engine, n_cells: int, rng: np.random.Generator) -> None:
    """The assignment benchmark's township of *n_cells* Voronoi cells, and a planner to sign in as."""
    load_cells(engine, *build_cells(n_cells, rng))
    with engine.begin() as conn:
        accounts.create_user(conn, "bench", "planner", password="bench-password")


def measure(browser, base: str, runs: int) -> dict:
    """Median first render and cells-drawn times over *runs* fresh browser contexts (cold caches)."""
    firsts, cells_ms, topology_ms, page_bytes, fetched = [], [], [], 0, 0
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)  # JS predicates
        page = context.new_page()
        sign_in(page, base, "bench", "bench-password")
        started = time.perf_counter()
        response = page.goto(base + "/map/grids")
        page.wait_for_function("document.body.dataset.ready === '1'", timeout=120_000)
        firsts.append((time.perf_counter() - started) * 1000)
        page_bytes = len(response.body())
        fetched = page.evaluate(
            "performance.getEntriesByType('navigation')[0].encodedBodySize + "
            "performance.getEntriesByType('resource').reduce((s, r) => s + r.encodedBodySize, 0)"
        )
        # Zoom to where the deepest level shows and time until its tiles are drawn.
        cells_ms.append(
            page.evaluate("""() => new Promise((resolve) => {
            const config = JSON.parse(document.getElementById('geogrid-config').textContent);
            const map = window[document.querySelector('.folium-map').id];
            const info = config.levels[config.levels.length - 1];
            const layer = window[info.var];
            if (info.kind !== 'tiles') { resolve(0); return; }
            const t0 = performance.now();
            const done = () => resolve(performance.now() - t0);
            map.setView(map.getCenter(), Math.max(info.min_zoom, map.getZoom()), {animate: false});
            setTimeout(() => { if (layer.isLoading()) layer.once('load', done); else done(); }, 0);
        })""")
        )
        # The tiling check runs in the background after first render; wait for it so runs
        # do not overlap, and report how long it took.
        page.wait_for_function("document.body.dataset.topology !== undefined", timeout=900_000)
        topology_ms.append((time.perf_counter() - started) * 1000)
        context.close()
    return {"first_ms": statistics.median(firsts), "cells_ms": statistics.median(cells_ms),
            "page_bytes": page_bytes, "fetched_bytes": fetched, "topology_ms": statistics.median(topology_ms)}  # fmt: skip


# -- the command center's board and dashboard -------------------------------------------

#: (final state, share, the states it went through after 信息采集).
FLOWS = (
    ("closed", 0.62, ("accepted", "dispatched", "in_progress", "resolved", "closed")),
    ("reported", 0.04, ()),
    ("rejected", 0.03, ("rejected",)),
    ("accepted", 0.03, ("accepted",)),
    ("dispatched", 0.08, ("accepted", "dispatched")),
    ("in_progress", 0.08, ("accepted", "dispatched", "in_progress")),
    ("resolved", 0.05, ("accepted", "dispatched", "in_progress", "resolved")),
    ("rework", 0.03, ("accepted", "dispatched", "in_progress", "resolved", "rework")),
    ("pending", 0.02, ("accepted", "pending")),
    ("postponed", 0.02, ("accepted", "dispatched", "postponed")),
)
CATEGORIES = (("garbage", 48), ("illegal_parking", 2), ("road_damage", 72), ("flyposting", 24), ("water", 24))


def load_cases(engine, n_cases: int, rng: np.random.Generator, days: int = 30) -> str:
    """*n_cases* cases in the cells already loaded, reported over the last *days* days, each with the events of
    its way through the case flow (COPY, like an export from another system); 300 handlers; an operator."""
    with engine.begin() as conn:
        cells = conn.execute(sa.text("SELECT id, ST_X(p), ST_Y(p) FROM (SELECT id, ST_PointOnSurface(geom) p "
                                     "FROM grids WHERE level = 'cell') s ORDER BY id")).all()  # fmt: skip
        people = conn.execute(sa.text("INSERT INTO people (name, phone) SELECT '承办人' || n, '1380000' || "
                                      "lpad(n::text, 4, '0') FROM generate_series(1, 300) n RETURNING id")).scalars().all()  # fmt: skip
        _, token = accounts.create_user(conn, "operator", "operator", password="bench-password")
        first = conn.execute(sa.text("SELECT coalesce(max(id), 0) + 1 FROM incidents")).scalar_one()
    now = dt.datetime.now(dt.UTC)
    shares = np.array([share for _, share, _ in FLOWS])
    flows = rng.choice(len(FLOWS), n_cases, p=shares / shares.sum())
    where = rng.integers(0, len(cells), n_cases)
    kinds = rng.integers(0, len(CATEGORIES), n_cases)
    ages = rng.uniform(0.05, days, n_cases)  # days ago
    hours = rng.exponential(10, (n_cases, 6)) + 0.2  # between steps
    departments = rng.integers(0, len(DEPARTMENTS), n_cases)
    handlers = rng.integers(0, len(people), n_cases)
    visited = rng.random(n_cases) < 0.6
    incidents, events = [], []
    for n in range(n_cases):
        final, _, states = FLOWS[flows[n]]
        category, limit = CATEGORIES[kinds[n]]
        cell_id, x, y = cells[where[n]]
        reported = now - dt.timedelta(days=float(ages[n]))
        at, previous, deadline, closed_at = reported, "reported", reported + dt.timedelta(hours=limit), None
        steps = [(reported, None, "reported", {})]
        for k, state in enumerate(states):
            at = min(at + dt.timedelta(hours=float(hours[n, k])), now)
            details = {}
            if state == "dispatched":
                deadline = at + dt.timedelta(hours=limit)
                details = {"department": DEPARTMENTS[departments[n]], "deadline": deadline.isoformat(),
                           "person": {"id": people[handlers[n]], "name": f"承办人{handlers[n] + 1}"}}  # fmt: skip
            elif state == "closed":
                closed_at, details = at, {"check": "passed"}
            elif state == "pending":
                details = {"review_at": (at + dt.timedelta(days=30)).isoformat()}
            steps.append((at, previous, state, details))
            previous = state
        if final == "closed" and visited[n]:
            at = min(at + dt.timedelta(hours=6), now)
            steps.append((at, "closed", "closed", {"return_visit": True, "method": "phone", "satisfied": True}))
        dispatched = "dispatched" in states
        incidents.append((first + n, f"SRID=4326;POINT({x} {y})", category, "hotline", reported.isoformat(),
                          cell_id, "inside", final, deadline.isoformat(), closed_at.isoformat() if closed_at else None,
                          DEPARTMENTS[departments[n]] if dispatched else None,
                          people[handlers[n]] if dispatched else None))  # fmt: skip
        events += [(first + n, a.isoformat(), "bench", f, s, json.dumps(d, ensure_ascii=False)) for a, f, s, d in steps]
    with engine.begin() as conn:
        driver = conn.connection.driver_connection
        with driver.cursor().copy(
            "COPY incidents (id, location, category, source, reported_at, grid_id, assignment, status, deadline, "
            "closed_at, department, handler_person_id) FROM STDIN"
        ) as copy:
            for row in incidents:
                copy.write_row(row)
        with driver.cursor().copy(
            "COPY incident_events (incident_id, at, actor, from_status, to_status, details) FROM STDIN"
        ) as copy:
            for row in events:
                copy.write_row(row)
        conn.execute(
            sa.text("SELECT setval(pg_get_serial_sequence('incidents', 'id'), (SELECT max(id) FROM incidents))")
        )
        conn.execute(sa.text("ANALYZE incidents"))
        conn.execute(sa.text("ANALYZE incident_events"))
    return token


CASE_CALLS = {
    "board": "/api/cases/board",
    "indicators by cell": "/api/indicators?by=grid&level=cell&limit=200&from={start}",
    "trend by day": "/api/indicators/trend?step=day&from={start}",
}


def measure_cases(browser, app, base: str, token: str, runs: int) -> dict:
    """Median time of each API call the board and the dashboard make, and of opening /dashboard in Chromium."""
    start = (dt.date.today() - dt.timedelta(days=6)).isoformat()
    client = app.test_client()
    out = {}
    for name, url in CASE_CALLS.items():
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(url.format(start=start), headers={"Authorization": f"Bearer {token}"})
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code, response.get_data()[:300])
        out[name] = statistics.median(times)
    pages = []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1366, "height": 768}, bypass_csp=True)
        page = context.new_page()
        sign_in(page, base, "operator", "bench-password")
        started = time.perf_counter()
        page.goto(base + "/dashboard")
        page.wait_for_function("document.body.dataset.ready === '1'", timeout=120_000)
        pages.append((time.perf_counter() - started) * 1000)
        context.close()
    out["dashboard page"] = statistics.median(pages)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,100000", help="Cell counts, comma-separated (smallest first).")
    parser.add_argument("--cases", default="1000,100000", help="Case counts for the board and the dashboard.")
    parser.add_argument("--case-cells", type=int, default=10_000, help="Cells the cases lie in.")
    parser.add_argument("--coverage", default="demo,300", help="The demo township and/or a number of workers.")
    parser.add_argument("--coverage-hours", type=float, default=2.0, help="Each worker's patrol, in hours.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", default="geogrid_map_bench")
    args = parser.parse_args()
    settings = Settings.from_env(levels=("township", "cell"), secret_key="bench")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        if args.sizes:
            planner(browser, settings, args, [int(s) for s in args.sizes.split(",")])
        if args.cases:
            command_center(browser, settings, args, [int(s) for s in args.cases.split(",")])
        if args.coverage:
            supervisor(browser, args, args.coverage.split(","))
        browser.close()


def planner(browser, settings, args, sizes: list[int]) -> None:
    results = {}
    for n in sizes:
        with scratch_database(settings, args.database) as engine:
            t = time.perf_counter()
            load(engine, n, np.random.default_rng(args.seed))
            print(f"{n:,} cells loaded in {time.perf_counter() - t:.1f} s")
            app = create_app(settings, bind=engine)
            with live_server(app) as base:
                results[n] = r = measure(browser, base, args.runs)
            print(f"/map/grids with {n:,} cells: page {r['page_bytes']:,} bytes, {r['fetched_bytes']:,} bytes "
                  f"fetched to first render, first render {r['first_ms']:.0f} ms, cells drawn "
                  f"{r['cells_ms']:.0f} ms after zooming to them (median of {args.runs}); tiling check reported "
                  f"{r['topology_ms'] / 1000:.1f} s after opening")  # fmt: skip
    small, big = results[sizes[0]], results[sizes[-1]]
    print(f"ratio {sizes[-1]:,} / {sizes[0]:,} cells: page bytes {big['page_bytes'] / small['page_bytes']:.2f}x, "
          f"fetched bytes {big['fetched_bytes'] / small['fetched_bytes']:.2f}x, "
          f"time to first render {big['first_ms'] / small['first_ms']:.2f}x")  # fmt: skip


def command_center(browser, settings, args, counts: list[int]) -> None:
    results = {}
    for n in counts:
        with scratch_database(settings, args.database) as engine:
            t = time.perf_counter()
            rng = np.random.default_rng(args.seed)
            load_cells(engine, *build_cells(args.case_cells, rng))
            token = load_cases(engine, n, rng)
            print(f"{n:,} cases over {args.case_cells:,} cells loaded in {time.perf_counter() - t:.1f} s")
            app = create_app(settings, bind=engine)
            with live_server(app) as base:
                results[n] = r = measure_cases(browser, app, base, token, args.runs)
            print(f"{n:,} cases: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in r.items()) +
                  f" (median of {args.runs})")  # fmt: skip
    small, big = results[counts[0]], results[counts[-1]]
    print(f"ratio {counts[-1]:,} / {counts[0]:,} cases: " +
          ", ".join(f"{name} {big[name] / small[name]:.2f}x" for name in big))  # fmt: skip
    slow = [name for name, ms in big.items() if ms >= 1000]
    print(f"target under 1 s with {counts[-1]:,} cases: " + ("met" if not slow else "NOT met for " + ", ".join(slow)))


def supervisor(browser, args, workloads: list[str]) -> None:
    from coverage_bench import DAY, load_day

    from geogrid import demo_township
    from geogrid.api.maps import COVERAGE_TILES
    from geogrid.patrols.queries import latest_patrol_day

    for workload in workloads:
        if workload == "demo":
            settings = Settings.from_env(secret_key="bench")
        else:
            settings = Settings.from_env(levels=("township", "cell"), secret_key="bench")
        with scratch_database(settings, args.database) as engine:
            t = time.perf_counter()
            with engine.begin() as conn:
                if workload == "demo":
                    demo_township.load(conn, settings)
                    name, password = demo_township.ADMIN_NAME, demo_township.ADMIN_PASSWORD
                    day = latest_patrol_day(conn, settings)
                else:
                    name, password = "supervisor", "bench-password"
                    accounts.create_user(conn, name, "supervisor", password=password)
                    day = DAY
            if workload != "demo":
                load_day(engine, int(workload), args.coverage_hours, np.random.default_rng(args.seed), block=6)
            with engine.connect() as conn:
                cells = conn.execute(sa.text("SELECT count(*) FROM grids WHERE valid_to IS NULL AND level = :l"),
                                     {"l": settings.levels[-1]}).scalar_one()  # fmt: skip
                workers = conn.execute(sa.text("SELECT count(DISTINCT person_id) FROM gps_fixes")).scalar_one()
            label = "the demo township" if workload == "demo" else f"{workers} workers"
            print(f"{label}: {cells:,} cells, {workers} workers loaded in {time.perf_counter() - t:.1f} s")
            app = create_app(settings, bind=engine)
            with live_server(app) as base:
                times, scripted, cold = [], [], []
                for run in range(2 * args.runs + 1):
                    if run > args.runs:  # the second series: every tile made again (geogrid.api.tilecache)
                        COVERAGE_TILES.clear()
                    context = browser.new_context(viewport={"width": 1366, "height": 768}, bypass_csp=True)
                    page = context.new_page()
                    sign_in(page, base, name, password)
                    started = time.perf_counter()
                    page.goto(base + f"/map/coverage?date={day.isoformat()}", timeout=600_000)
                    page.wait_for_function("document.body.dataset.ready === '1'", timeout=300_000)
                    (cold if run > args.runs else times).append((time.perf_counter() - started) * 1000)
                    # The page's own clock: when its script had the map and panel ready (before the
                    # browser has drawn the cells' tiles, which the time above includes).
                    scripted.append(int(page.evaluate("document.body.dataset.readyAt")))
                    context.close()
            opened, fresh = statistics.median(times[1:]), statistics.median(cold)
            print(f"/map/coverage, {label} ({cells:,} cells): first open (brings the day up to date) "
                  f"{times[0]:.0f} ms, then {opened:.0f} ms until ready and drawn with its tiles kept, "
                  f"{fresh:.0f} ms with every tile made again; the page's script ready at "
                  f"{statistics.median(scripted[1:]):.0f} ms (medians of {args.runs}); target under 1 s: "
                  f"{'met' if max(opened, fresh) < 1000 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
