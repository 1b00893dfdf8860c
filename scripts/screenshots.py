"""Screenshots of the map pages, the dashboard and the daily judgement on the demo township, in Chinese.

Builds the demo and its own basemap in a throw-away database and folder, serves it on
127.0.0.1 and photographs each page at 1366 x 768 in Debian's Chromium, as a Chinese
browser sees it. Run: ``.venv/bin/python scripts/screenshots.py`` (writes
docs/screenshots/*.png).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import sync_playwright

from geogrid import demo_basemap, demo_township
from geogrid.api import create_app
from geogrid.config import Settings
from geogrid.testing import launch, live_server, open_map, scratch_database, screen_point, sign_in

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Write docs/screenshots/{planner,command_center,dashboard,judgement,coverage,worker}.png."""
    out = ROOT / "docs" / "screenshots"
    settings = Settings.from_env()
    home = Path(tempfile.mkdtemp(prefix="geogrid-screenshots-"))
    shown = dataclasses.replace(settings, home=home, language="zh_CN", secret_key="screenshots")
    with scratch_database(settings, "geogrid_screenshots") as engine:
        with engine.begin() as conn:
            demo_township.load(conn, settings)
            demo_basemap.ensure(conn, shown, 20261120)
            day = conn.execute(sa.text("SELECT max(day) - 1 FROM coverage")).scalar_one()
            spot = conn.execute(sa.text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(g.geom) AS p FROM grids g "
                "JOIN assignments a ON a.grid_code = g.parent_code JOIN users u ON u.person_id = a.person_id "
                "WHERE u.name = :n AND g.valid_to IS NULL ORDER BY g.code LIMIT 1) s"),
                {"n": demo_township.WORKER_NAME}).one()  # fmt: skip
            busy = conn.execute(sa.text(
                "SELECT i.id FROM incidents i JOIN incident_events e ON e.incident_id = i.id "
                "WHERE e.to_status = 'escalated' ORDER BY i.id LIMIT 1")).scalar_one()  # fmt: skip
        with live_server(create_app(shown, bind=engine)) as base, sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN",
                                    bypass_csp=True)  # JS predicates  # fmt: skip
            sign_in(page, base, demo_township.ADMIN_NAME, demo_township.ADMIN_PASSWORD)
            open_map(page, base + "/map/grids")
            page.wait_for_function("document.body.dataset.topology !== undefined", timeout=60_000)
            cell = page.evaluate("""() => { const c = JSON.parse(document.getElementById('geogrid-config').textContent);
                const l = window[c.levels[c.levels.length - 1].var]; const f = l.getLayers()[40].feature;
                const b = L.geoJSON(f).getBounds().getCenter(); return [b.lng, b.lat]; }""")
            page.mouse.click(*screen_point(page, *cell))
            page.wait_for_timeout(800)
            page.screenshot(path=str(out / "planner.png"))
            open_map(page, base + f"/map/incidents?case={busy}")
            page.wait_for_selector(f"#case[data-id='{busy}']")
            page.wait_for_timeout(1200)
            page.screenshot(path=str(out / "command_center.png"))
            page.goto(base + "/dashboard")
            page.wait_for_selector("body[data-ready='1']")
            page.wait_for_timeout(1200)  # the charts' animation
            page.screenshot(path=str(out / "dashboard.png"))
            page.goto(base + "/judgement")
            page.screenshot(path=str(out / "judgement.png"))
            open_map(page, base + f"/map/coverage?date={day}")
            page.wait_for_timeout(800)
            page.screenshot(path=str(out / "coverage.png"))
            # The grid worker's page on a phone, standing in their first cell.
            phone = browser.new_context(
                viewport={"width": 400, "height": 800},
                locale="zh-CN",
                bypass_csp=True,
                permissions=["geolocation"],
                geolocation={"longitude": spot[0], "latitude": spot[1], "accuracy": 10},
            )
            page = phone.new_page()
            sign_in(page, base, demo_township.WORKER_NAME, demo_township.WORKER_PASSWORD)
            page.wait_for_selector("body[data-ready='1']")
            page.wait_for_function("document.getElementById('position').textContent.includes('10')")
            page.wait_for_timeout(800)
            page.screenshot(path=str(out / "worker.png"))
            browser.close()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
