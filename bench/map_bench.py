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

Run: ``.venv/bin/python bench/map_bench.py [--sizes 100,100000] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from assign_bench import build_cells, load_cells
from playwright.sync_api import sync_playwright

from geogrid import accounts
from geogrid.api import create_app
from geogrid.config import Settings
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,100000", help="Cell counts, comma-separated (smallest first).")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", default="geogrid_map_bench")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    settings = Settings.from_env(levels=("township", "cell"), secret_key="bench")
    results = {}
    with sync_playwright() as playwright:
        browser = launch(playwright)
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
        browser.close()
    small, big = results[sizes[0]], results[sizes[-1]]
    print(f"ratio {sizes[-1]:,} / {sizes[0]:,} cells: page bytes {big['page_bytes'] / small['page_bytes']:.2f}x, "
          f"fetched bytes {big['fetched_bytes'] / small['fetched_bytes']:.2f}x, "
          f"time to first render {big['first_ms'] / small['first_ms']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
