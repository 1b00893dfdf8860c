"""The three map pages in a real browser (Debian's Chromium via Playwright), against a live server.

Each page must load with no console error and no request leaving 127.0.0.1; drawing a
split line on the planner map splits the cell; clicking an incident shows its cell;
HTML in user-supplied text stays text. Screenshots go to $GEOGRID_HOME/screenshots.
"""

from __future__ import annotations

import datetime as dt

import pytest
import shapely
import sqlalchemy as sa

from geogrid import demo
from geogrid.api import create_app
from geogrid.grids import edit
from geogrid.incidents.intake import NewIncident, register
from geogrid.patrols.ingest import import_patrol
from geogrid.testing import PageLog, live_server, open_map, screen_point, sign_in
from tests.conftest import demo_engine

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
DAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def site(databases, settings):
    """A seeded database of its own and the app serving it."""
    engine = demo_engine(databases)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE grids SET name = :n WHERE code = 'XWZ002002'"), {"n": "网格 " + XSS})
        cells = {c: edit.lock_current(conn, c).geom for c in ("XWZ001001", "XWZ001002", "XWZ002001", "XWZ002002")}
        here = cells["XWZ001001"].representative_point()
        xss_incident = register(conn, settings, NewIncident(lon=here.x, lat=here.y, category="garbage",
                                source="app", description=XSS, reporter=XSS), actor="seed")["id"]  # fmt: skip
        there = cells["XWZ002001"].representative_point()
        overdue = register(conn, settings, NewIncident(lon=there.x, lat=there.y, category="work_safety", source="phone",
                           reported_at=dt.datetime(2026, 11, 1, 9, 0)), actor="seed")["id"]  # fmt: skip
        person = conn.execute(sa.text("INSERT INTO people (name) VALUES (:n) RETURNING id"),
                              {"n": "王五 " + XSS}).scalar_one()  # fmt: skip
        conn.execute(sa.text("INSERT INTO assignments (person_id, grid_code, duty, valid_from) VALUES (:p, "
                             "'XWZ001002', 'grid_helper', :since)"), {"p": person, "since": demo.SINCE})  # fmt: skip
        import_patrol(conn, settings, person, "walk.csv", _walk_through(cells["XWZ001002"]))
        helper = conn.execute(sa.text("INSERT INTO people (name) VALUES ('赵六') RETURNING id")).scalar_one()
        conn.execute(sa.text("INSERT INTO assignments (person_id, grid_code, duty, valid_from) VALUES (:p, "
                             "'XWZ002002', 'grid_helper', :since)"), {"p": helper, "since": demo.SINCE})  # fmt: skip
    app = create_app(settings, bind=engine)
    with live_server(app) as base:
        yield {"base": base, "engine": engine, "xss_incident": xss_incident, "overdue": overdue, "cells": cells}
    engine.dispose()


def _walk_through(cell) -> bytes:
    """A walk across the cell's middle, west to east, a fix every 10 s at 09:00 local time."""
    minx, miny, maxx, maxy = cell.bounds
    y = cell.representative_point().y
    rows = ["time,lon,lat"]
    start = dt.datetime(2026, 11, 20, 9, 0)
    steps = 60
    for i in range(steps + 1):
        rows.append(f"{(start + dt.timedelta(seconds=10 * i)).isoformat()},{minx + (maxx - minx) * i / steps},{y}")
    return "\n".join(rows).encode()


@pytest.fixture
def page(browser, site):
    # The pages refuse eval (Content-Security-Policy); Playwright's JS predicates need it.
    # test_pages_keep_to_their_content_security_policy opens them with the policy in force.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = context.new_page()
    log = PageLog()
    log.watch(page, site["base"])
    sign_in(page, site["base"], demo.ADMIN_NAME, demo.ADMIN_PASSWORD)
    page.log = log
    yield page
    context.close()


@pytest.fixture
def shots(settings):
    return settings.home / "screenshots"


@pytest.mark.parametrize("path,name", [
    ("/map/grids", "planner"), ("/map/incidents", "command_center"), (f"/map/coverage?date={DAY}", "coverage"),
])  # fmt: skip
def test_each_page_loads_offline_with_no_errors(page, site, shots, path, name):
    open_map(page, site["base"] + path, shots, name)
    assert page.log.errors == []
    assert page.log.external == []
    # Something was drawn: the overlay canvas holds non-blank pixels.
    assert page.evaluate("""() => {
        const c = document.querySelector('.leaflet-overlay-pane canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
        return false; }""")


def test_drawing_a_line_across_a_cell_splits_it(page, site, shots):
    # XWZ002002 holds no incident and no patrol the other tests look at (a split moves them).
    open_map(page, site["base"] + "/map/grids")
    cell = site["cells"]["XWZ002002"]
    minx, miny, maxx, maxy = cell.bounds
    page.evaluate(f"""window[document.querySelector('.folium-map').id]
                      .fitBounds([[{miny}, {minx}], [{maxy}, {maxx}]], {{padding: [120, 120], animate: false}})""")
    inside = cell.representative_point()
    page.mouse.click(*screen_point(page, inside.x, inside.y))
    page.wait_for_function("document.getElementById('details').textContent.includes('XWZ002002')")
    page.click(".leaflet-draw-draw-polyline")
    for lon in (minx - 0.001, maxx + 0.0003):  # from outside to outside, across the cell
        page.mouse.move(*screen_point(page, lon, inside.y))
        page.mouse.down()
        page.mouse.up()
        page.wait_for_timeout(300)  # two quick clicks would be a double click
    page.click(".leaflet-draw-actions a[title='Finish drawing']")
    # A preview first: the pieces numbered on the map, who goes to which, the incidents that would move.
    page.wait_for_selector("#edit-preview:not([hidden]) #preview-apply")
    preview = page.text_content("#edit-preview")
    assert "赵六 (grid helper)" in preview and "open incident(s) would move" in preview
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "planner_split_preview.png"))
    first, second = page.eval_on_selector_all("#edit-preview th[data-code]", "ths => ths.map(t => t.dataset.code)")
    page.uncheck(f"#edit-preview input[data-grid='{second}']")  # 赵六 keeps the first piece only
    page.click("#preview-apply")
    page.wait_for_function("document.getElementById('notice').textContent.startsWith('Split XWZ002002')",
                           timeout=20_000)  # fmt: skip
    assert "1 duties carried" in page.text_content("#notice") and "0 open incident(s) moved" in page.text_content(
        "#notice"
    )
    open_map(page, page.url, shots, "planner_after_split")
    with site["engine"].connect() as conn:
        current = conn.execute(sa.text("SELECT valid_to IS NULL FROM grids WHERE code = 'XWZ002002' "
                                       "ORDER BY valid_from DESC LIMIT 1")).scalar_one()  # fmt: skip
        pieces = conn.execute(sa.text(
            "SELECT ST_AsText(geom) FROM grids WHERE parent_code = 'XWZ002' "
            "AND valid_to IS NULL AND code NOT IN ('XWZ002001', 'XWZ002002')"
        )).scalars().all()  # fmt: skip
        on_duty = conn.execute(sa.text("SELECT grid_code FROM assignments a JOIN people p ON p.id = a.person_id "
                                       "WHERE p.name = '赵六' AND a.valid_to IS NULL")).scalars().all()  # fmt: skip
    assert on_duty == [first]
    assert current is False  # retired, replaced by its pieces
    assert len(pieces) == 2
    assert shapely.union_all([shapely.from_wkt(p) for p in pieces]).symmetric_difference(cell).area < 1e-9
    assert page.log.errors == []


def test_a_refused_edit_is_explained_in_plain_words(page, site):
    open_map(page, site["base"] + "/map/grids")
    inside = site["cells"]["XWZ002001"].representative_point()
    page.mouse.click(*screen_point(page, inside.x, inside.y))
    page.wait_for_function("document.getElementById('details').textContent.includes('XWZ002001')")
    page.click("#merge")  # one cell selected: the page says what to do instead of posting
    assert "two or more" in page.text_content("#notice")
    # A corner dragged across the other village: the boundaries would cross themselves; refused, nothing moved.
    page.click("#reshape")
    page.wait_for_selector(".corner-handle")
    handle = page.locator(".corner-handle").first.bounding_box()
    far = site["cells"]["XWZ001002"].representative_point()
    page.mouse.move(handle["x"] + 7, handle["y"] + 7)
    page.mouse.down()
    page.mouse.move(*screen_point(page, far.x, far.y), steps=8)
    page.mouse.up()
    page.wait_for_function("document.getElementById('notice').className === 'error'")
    assert "cross itself" in page.text_content("#notice") or "break the tiling" in page.text_content("#notice")
    assert page.locator(".corner-handle").first.bounding_box() == handle  # back where it was


def test_clicking_an_incident_shows_its_cell_people_and_history(page, site, shots):
    open_map(page, site["base"] + "/map/incidents")
    assert page.evaluate("document.body.dataset.incidents") == "2"
    here = site["cells"]["XWZ001001"].representative_point()
    page.mouse.click(*screen_point(page, here.x, here.y))
    page.wait_for_function("document.getElementById('case').dataset.cell === 'XWZ001001'")
    details = page.text_content("#case")
    assert f"Case #{site['xss_incident']}" in details and "registered" in details
    # The cell is drawn highlighted on the map.
    assert (
        page.evaluate("""() => { const c = JSON.parse(document.getElementById('geogrid-config').textContent);
        return window[c.picked].getLayers().length; }""")
        == 2
    )
    page.wait_for_timeout(400)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "command_center_incident.png"))
    assert page.log.errors == []


def test_search_by_id_and_filters(page, site):
    open_map(page, site["base"] + "/map/incidents")
    page.click("[data-tab=map]")
    page.fill("#q", str(site["overdue"]))
    page.click("#search button")
    page.wait_for_function("document.getElementById('case').dataset.cell === 'XWZ002001'")
    assert "OVERDUE" in page.text_content("#case")
    page.click("#filter-box summary")
    page.check("#f-overdue")
    page.click("#filters button")
    page.wait_for_function("document.body.dataset.incidents === '1'")
    page.fill("#q", "115.2601,37.7601")
    page.click("#search button")
    page.wait_for_function("document.getElementById('details').textContent.includes('grids here')")
    here = page.text_content("#details")
    # Exactly the grids that hold the point: one per level, not every grid whose box does.
    with site["engine"].connect() as conn:
        holders = conn.execute(sa.text(
            "SELECT code FROM grids WHERE valid_to IS NULL AND ST_Covers(geom, ST_SetSRID(ST_MakePoint("
            "115.2601, 37.7601), 4326)) ORDER BY code")).scalars().all()  # fmt: skip
    assert len(holders) == 3 and all(code in here for code in holders)
    assert here.count("XWZ0") == 2  # the village and the grid (the township is XWZ)
    page.fill("#q", "37.7601, 115.2601")  # typed lat first
    page.click("#search button")
    page.wait_for_function("document.getElementById('details').textContent.includes('read as lat,lon')")
    assert all(code in page.text_content("#details") for code in holders)


def test_the_two_level_category_picker_filters_by_class_or_category(page, site):
    # The seed holds a garbage incident (01 市容环境 / 0101) and a work-safety one (04 突发事件 / 0401).
    open_map(page, site["base"] + "/map/incidents")
    page.wait_for_function("document.body.dataset.incidents === '2'")
    page.click("#filter-box summary")
    page.select_option("#f-class", "04")
    shown = page.eval_on_selector_all("#f-category option:not([hidden])", "os => os.map(o => o.value)")
    assert shown == ["", "work_safety", "public_facility_safety", "public_matters"]
    page.click("#filters button")  # the whole class
    page.wait_for_function("document.body.dataset.incidents === '1'")
    page.select_option("#f-class", "01")
    page.select_option("#f-category", "uncivil_dog_keeping")
    page.click("#filters button")
    page.wait_for_function("document.body.dataset.incidents === '0'")
    page.select_option("#f-category", "garbage")
    page.click("#filters button")
    page.wait_for_function("document.body.dataset.incidents === '1'")
    assert page.log.errors == []


def test_html_in_user_text_stays_text(page, site):
    open_map(page, site["base"] + "/map/incidents")
    page.click("[data-tab=map]")
    page.fill("#q", str(site["xss_incident"]))
    page.click("#search button")
    page.wait_for_function("document.getElementById('case').dataset.cell === 'XWZ001001'")
    assert XSS in page.text_content("#case")  # shown as the characters it is made of
    open_map(page, site["base"] + "/map/grids")
    open_map(page, site["base"] + f"/map/coverage?date={DAY}")
    assert "王五 " + XSS in page.text_content("#workers")
    assert page.evaluate("window.__xss") is None
    injected = "img[src=x], #details script, #case script, #workers script"
    assert page.evaluate(f"document.querySelectorAll('{injected}').length") == 0
    assert page.log.dialogs == [] and page.log.errors == []


def test_coverage_page_colours_cells_and_toggles_a_workers_tracks(page, site):
    open_map(page, site["base"] + f"/map/coverage?date={DAY}")
    config = page.evaluate("JSON.parse(document.getElementById('geogrid-config').textContent)")
    (worker,) = config["workers"]
    on_map = f"window['{config['fraction']}']._map !== null && window['{worker['var']}']._map != null"
    assert page.evaluate(on_map)
    page.click("[data-tab=workers]")
    page.uncheck(f"#workers input[data-person='{worker['person_id']}']")
    assert page.evaluate(f"window['{worker['var']}']._map") is None
    page.check("input[name=mode][value=rule]")
    assert page.evaluate(f"window['{config['rule']}']._map != null && window['{config['fraction']}']._map == null")
    # XWZ001002 was walked once: patrolled but short of the two-a-day rule, so it is listed as missed.
    page.click("[data-tab=missed]")
    assert "XWZ001002" in page.text_content("#missed")
    assert "of 2 visits counted" in page.text_content("#missed")
    # Only this worker: their tracks shown, the map on them, and the address keeps it for sharing.
    page.click("[data-tab=workers]")
    page.click(f"#workers [data-only='{worker['person_id']}']")
    page.wait_for_function(f"location.search.includes('person={worker['person_id']}')")
    assert page.evaluate(f"window['{worker['var']}']._map != null")
    assert f"date={DAY}" in page.evaluate("location.search")


def test_the_coverage_address_keeps_the_worker_and_zooms_to_the_grid(page, site):
    open_map(page, site["base"] + f"/map/coverage?date={DAY}")
    config = page.evaluate("JSON.parse(document.getElementById('geogrid-config').textContent)")
    (worker,) = config["workers"]
    # A shared address with a worker: only theirs shown.
    open_map(page, site["base"] + f"/map/coverage?date={DAY}&person={worker['person_id']}")
    (again,) = page.evaluate("JSON.parse(document.getElementById('geogrid-config').textContent)")["workers"]
    page.wait_for_function(f"window['{again['var']}']._map != null")
    assert page.is_checked(f"#workers input[data-person='{worker['person_id']}']")
    # A grid: the map on it (its bounds fill the view, inside it).
    open_map(page, site["base"] + f"/map/coverage?date={DAY}&grid=XWZ001002")
    cell = site["cells"]["XWZ001002"]
    page.wait_for_function(f"""() => {{ const m = window[document.querySelector('.folium-map').id];
        const b = m.getBounds(); return b.contains([{cell.centroid.y}, {cell.centroid.x}]) && m.getZoom() >= 15; }}""")
    assert page.log.errors == []


def test_tiled_layers_answer_clicks(browser, site, settings):
    import dataclasses

    app = create_app(dataclasses.replace(settings, tile_threshold=1), bind=site["engine"])
    with live_server(app) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        page = context.new_page()
        log = PageLog()
        log.watch(page, base)
        sign_in(page, base, demo.ADMIN_NAME, demo.ADMIN_PASSWORD)
        open_map(page, base + "/map/incidents")
        page.wait_for_function("document.body.dataset.incidents === '2'")
        here = site["cells"]["XWZ001001"].representative_point()
        page.evaluate(f"window[document.querySelector('.folium-map').id].setView([{here.y}, {here.x}], 16, "
                      "{animate: false})")  # fmt: skip
        page.wait_for_timeout(800)  # the tile arrives and is drawn
        page.mouse.click(*screen_point(page, here.x, here.y))
        page.wait_for_function("document.getElementById('case').dataset.cell === 'XWZ001001'")
        page.click("[data-tab=map]")
        page.check("#heat-toggle")
        # The planner and supervisor maps with tiled cells: a click asks the API what is there.
        inner = site["cells"]["XWZ001002"].representative_point()
        for path, expected in (("/map/grids", "XWZ001002"), (f"/map/coverage?date={DAY}", "XWZ001002")):
            open_map(page, base + path)
            page.evaluate(f"window[document.querySelector('.folium-map').id].setView([{inner.y}, {inner.x}], 17, "
                          "{animate: false})")  # fmt: skip
            page.wait_for_timeout(500)
            page.mouse.click(*screen_point(page, inner.x, inner.y))
            page.wait_for_function(f"document.getElementById('details').textContent.includes('{expected}')")
        assert "of 2 visits counted" in page.text_content("#details")  # the coverage API answered for the cell
        assert log.errors == [] and log.external == []
        context.close()


def test_the_supervisor_sees_the_workers_day_and_decides_a_repair(page, site, settings):
    from geogrid.patrols import repairs

    with site["engine"].begin() as conn:
        person = conn.execute(sa.text("SELECT id FROM people WHERE name LIKE '王五%'")).scalar_one()
        asked = repairs.request_repair(conn, settings, person_id=person, grid_code="XWZ001002", day=DAY,
                                       claimed_at=dt.datetime(2026, 11, 20, 7, 0, tzinfo=dt.UTC),
                                       reason="下午补巡，终端没电", actor="王五")  # fmt: skip
    try:
        open_map(page, site["base"] + f"/map/coverage?date={DAY}")
        # The workers' table: the day's figures per worker, from the patrol indicators.
        page.click("[data-tab=workers]")
        page.wait_for_selector(f"#worker-table tr[data-person='{person}']")
        cells = page.eval_on_selector_all(f"#worker-table tr[data-person='{person}'] td",
                                          "tds => tds.map(t => t.textContent)")  # fmt: skip
        assert cells[0].startswith("王五") and cells[1:4] == ["1", "0", "0"]  # on duty, met, missed days
        # Only this worker: their day replayed with a slider (the way up to the moment chosen).
        page.click(f"#workers [data-only='{person}']")
        page.wait_for_selector("#replay:not([hidden])")
        last = page.text_content("#replay-time")
        page.fill("#replay-slider", "0")
        page.dispatch_event("#replay-slider", "input")
        assert page.text_content("#replay-time") == "09:00" and last > "09:00"
        # The request waits in the repairs tab: approved with a note, it counts for the rule.
        page.click("[data-tab=repairs]")
        page.fill(f"#repairs li[data-id='{asked['id']}'] input", "已核实")
        page.click(f"#repairs li[data-id='{asked['id']}'] [data-decide=approve]")
        page.wait_for_selector(f"#repairs li.approved[data-id='{asked['id']}']")
        with site["engine"].connect() as conn:
            from geogrid.patrols.compute import ensure_coverage

            ensure_coverage(conn, settings, DAY)
            cell = conn.execute(sa.text("SELECT compliant, repairs, visit_count FROM coverage WHERE day = :d "
                                        "AND person_id = :p AND grid_code = 'XWZ001002'"),
                                {"d": DAY, "p": person}).one()  # fmt: skip
            conn.rollback()
        # The walk was too thin to count for the rule: the repair makes 1 of 2, still short; never a visit.
        assert (cell.compliant, cell.repairs, cell.visit_count) == (False, 1, 1)
        assert page.log.errors == []
    finally:
        with site["engine"].begin() as conn:
            conn.execute(sa.text("DELETE FROM patrol_repairs WHERE id = :i"), {"i": asked["id"]})
