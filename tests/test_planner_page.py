"""The planner's map read as a planner reads it (issue 18, part 2), in Chromium, in Chinese, at 1366 x 768: names
and codes where they fit without covering each other, levels top down with a legend, a click that selects a grid
of the level shown, renaming a grid from the page, and the view kept after an edit."""

from __future__ import annotations

import dataclasses
import math

import pytest
import shapely
import sqlalchemy as sa

from geogrid.api import create_app
from geogrid.testing import live_server, open_map, screen_point
from tests.conftest import bearer, demo_engine, zh_page


@pytest.fixture(scope="module")
def site(databases, settings):
    engine = demo_engine(databases)
    chinese = dataclasses.replace(settings, language="zh_CN")
    with live_server(create_app(chinese, bind=engine)) as base:
        yield {"base": base, "engine": engine}
    engine.dispose()


def point_in(site, code: str) -> tuple[float, float]:
    """A point inside grid *code* as it is now."""
    inside = current_of(site, code)[1].representative_point()
    return inside.x, inside.y


def label_boxes(page) -> list[dict]:
    """The labels on the screen (inside the map), with their boxes."""
    return page.evaluate("""() => {
        const m = document.querySelector('.folium-map').getBoundingClientRect();
        return [...document.querySelectorAll('.grid-name .inner')].map((n) => {
            const r = n.getBoundingClientRect();
            return {text: n.textContent, x0: r.left, x1: r.right, y0: r.top, y1: r.bottom};
        }).filter((b) => b.x0 >= m.left && b.x1 <= m.right && b.y0 >= m.top && b.y1 <= m.bottom);
    }""")


def test_names_and_codes_show_where_they_fit_without_covering_each_other(browser, site, settings):
    context, page, log = zh_page(browser, site["base"])
    open_map(page, site["base"] + "/map/grids")
    opening = label_boxes(page)
    assert opening, "labels at the opening zoom"
    texts = " ".join(b["text"] for b in opening)
    assert "第1村" in texts and "XWZ001" in texts  # names with their codes
    for n, a in enumerate(opening):
        for b in opening[n + 1 :]:
            assert not (a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]), (a, b)
    # Closer in, the grids of the deeper levels have room for theirs.
    page.evaluate("(() => { const m = window[document.querySelector('.folium-map').id]; m.setZoom(m.getZoom() + 2, "
                  "{animate: false}); })()")  # fmt: skip
    page.wait_for_timeout(300)
    closer = " ".join(b["text"] for b in label_boxes(page))
    assert sum(code in closer for code in ("XWZ001001", "XWZ001002", "XWZ002001", "XWZ002002")) >= 2
    # Levels top down, each with its line in the legend, each line thinner than the one above.
    assert page.eval_on_selector_all("#level option", "os => os.map(o => o.value)") == ["", "township", "village",
                                                                                        "grid"]  # fmt: skip
    legend = page.eval_on_selector_all("#level-legend li", "ls => ls.map(l => [l.textContent.trim(), "
                                       "parseFloat(l.querySelector('.line').style.borderTopWidth)])")  # fmt: skip
    assert len(legend) == 3 and all(name for name, _ in legend)
    widths = [w for _, w in legend]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    page.screenshot(path=str(settings.home / "screenshots" / "planner_labels.png"))
    assert log.errors == []
    context.close()


def test_a_click_selects_a_grid_of_the_level_shown_after_switching_levels(browser, site):
    context, page, log = zh_page(browser, site["base"])
    open_map(page, site["base"] + "/map/grids")
    lon, lat = point_in(site, "XWZ001002")
    for level in ("grid", "", "village", ""):  # one level, all of them, another, all again
        page.select_option("#level", level)
        page.evaluate("document.getElementById('details').replaceChildren()")  # what the click brings, not the last
        page.mouse.click(*screen_point(page, lon, lat))
        expected = {"grid": "XWZ001002", "village": "XWZ001", "": "XWZ001002"}[level]  # all: the deepest level
        title = "document.querySelector('#details h3')"
        page.wait_for_function(f"{title} && {title}.textContent.startsWith('{expected} ')")
    assert log.errors == []
    context.close()


def test_a_grid_renamed_from_the_page_and_the_view_kept(browser, site):
    context, page, log = zh_page(browser, site["base"])
    open_map(page, site["base"] + "/map/grids")
    lon, lat = point_in(site, "XWZ002001")
    page.evaluate(f"window[document.querySelector('.folium-map').id].setView([{lat}, {lon}], 16, {{animate: false}})")
    page.select_option("#level", "grid")
    page.mouse.click(*screen_point(page, lon, lat))
    page.wait_for_selector("#rename-name")
    page.fill("#rename-name", "第2村 东片网格")
    page.click("#rename button[type=submit]")
    page.wait_for_function("document.getElementById('notice').textContent.includes('重命名')")
    page.wait_for_selector("body[data-ready='1']")
    view = page.evaluate("(() => { const m = window[document.querySelector('.folium-map').id]; const c = m.getCenter();"
                         " return [c.lat, c.lng, m.getZoom()]; })()")  # fmt: skip
    assert view[2] == 16 and abs(view[0] - lat) < 1e-4 and abs(view[1] - lon) < 1e-4  # where the planner was
    with site["engine"].connect() as conn:
        rows = conn.execute(sa.text("SELECT name, version, valid_to IS NULL FROM grids WHERE code = 'XWZ002001' "
                                    "ORDER BY version")).all()  # fmt: skip
    assert [tuple(r) for r in rows][-1] == ("第2村 东片网格", rows[-2][1] + 1, True) and rows[-2][2] is False
    assert "第2村 东片网格" in " ".join(b["text"] for b in label_boxes(page))
    assert log.errors == []
    context.close()


def test_rename_refuses_a_stale_version_and_an_empty_name(client, make_user, demo_grids):
    token = bearer(make_user("planner")[1])
    current = client.get("/api/grids/XWZ001001", headers=token).json["properties"]["version"]
    assert client.post("/api/grids/XWZ001001/rename", json={"name": " ", "version": current},
                       headers=token).status_code == 422  # fmt: skip
    assert client.post("/api/grids/XWZ001001/rename", json={"name": "新名", "version": current + 5},
                       headers=token).status_code == 409  # fmt: skip
    done = client.post("/api/grids/XWZ001001/rename", json={"name": "新名", "version": current}, headers=token)
    assert done.status_code == 200 and done.json["version"] == current + 1
    assert client.get("/api/grids/XWZ001001", headers=token).json["properties"]["name"] == "新名"
    worker = bearer(make_user("supervisor")[1])
    assert client.post("/api/grids/XWZ001001/rename", json={"name": "x", "version": current + 1},
                       headers=worker).status_code == 403  # fmt: skip


def test_a_shared_corner_dragged_moves_every_grid_through_it_and_is_undone(browser, site, settings):
    from geogrid.grids.topology import check_topology
    from tests.test_corners import current, shared_corner

    with site["engine"].connect() as conn:
        corner = shared_corner(conn)
        through = {code: current(conn, code)
                   for code in ("XWZ", "XWZ001", "XWZ002", "XWZ001001", "XWZ001002", "XWZ002001", "XWZ002002")
                   if current(conn, code)[1].boundary.distance(shapely.Point(corner)) < 1e-9}  # fmt: skip
    assert {"XWZ001", "XWZ001001", "XWZ001002"} <= set(through)  # two cells and their village's edge
    context, page, log = zh_page(browser, site["base"])
    open_map(page, site["base"] + "/map/grids")
    page.evaluate(f"window[document.querySelector('.folium-map').id].setView([{corner[1]}, {corner[0]}], 17, "
                  "{animate: false})")  # fmt: skip
    page.select_option("#level", "grid")
    _, cell = through["XWZ001001"]
    inside = cell.intersection(shapely.Point(corner).buffer(0.0003)).representative_point()  # near the corner
    page.mouse.click(*screen_point(page, inside.x, inside.y))
    page.wait_for_function("(document.querySelector('#details h3') || {}).textContent?.startsWith('XWZ001001')")
    page.click("#reshape")
    page.wait_for_selector(".corner-handle")
    handles = int(page.evaluate("document.body.dataset.corners"))
    assert 3 <= handles <= 12  # corners only, not the points that densify the edges
    x, y = screen_point(page, *corner)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 30, y + 12, steps=6)
    page.mouse.up()
    page.wait_for_function("document.getElementById('notice').textContent.includes('已移动')")
    page.wait_for_selector("body[data-ready='1']")
    with site["engine"].connect() as conn:
        after = {code: current(conn, code) for code in through}
        assert all(after[code][0] == through[code][0] + 1 for code in through)  # every one, one version more
        assert check_topology(conn, settings, "XWZ") == []
    assert page.evaluate("window[document.querySelector('.folium-map').id].getZoom()") == 17  # the view kept
    assert page.input_value("#level") == "grid"  # and the level shown
    page.screenshot(path=str(settings.home / "screenshots" / "planner_corner_moved.png"))
    page.click("#undo")
    page.wait_for_function("document.getElementById('notice').textContent.includes('已撤销')")
    with site["engine"].connect() as conn:
        for code, (version, shape) in through.items():
            now_version, now_shape = current(conn, code)
            assert now_version == version + 2 and now_shape.equals_exact(shape, 1e-12)
        assert check_topology(conn, settings, "XWZ") == []
    assert page.is_hidden("#undo")
    assert log.errors == []
    context.close()


def test_a_boundary_file_previewed_then_applied_or_cancelled(browser, site, settings, tmp_path):
    import geopandas as gpd
    import pandas as pd

    with site["engine"].connect() as conn:
        cells = gpd.GeoDataFrame.from_postgis(
            "SELECT code, name, geom FROM grids WHERE parent_code = 'XWZ002' AND valid_to IS NULL ORDER BY code",
            conn, geom_col="geom", crs="EPSG:4326").rename_geometry("geometry")  # fmt: skip
        versions = dict(conn.execute(sa.text("SELECT code, version FROM grids WHERE parent_code = 'XWZ002' "
                                             "AND valid_to IS NULL")).all())  # fmt: skip
    shrunk = cells.copy()
    shrunk.loc[0, "geometry"] = shrunk.loc[0, "geometry"].buffer(-0.0002)  # leaves a gap in the village
    shrunk.to_file(tmp_path / "缩小.geojson", driver="GeoJSON")
    renamed = cells.copy()
    renamed.loc[1, "name"] = "第2村 北片"
    # And a bow tie: an invalid shape, left out with the reason while the rest goes in.
    x, y = renamed.loc[1, "geometry"].representative_point().coords[0]
    bow = shapely.Polygon([(x, y), (x + 0.001, y + 0.001), (x + 0.001, y), (x, y + 0.001)])
    renamed = gpd.GeoDataFrame(
        pd.concat(
            [
                renamed,
                gpd.GeoDataFrame({"code": ["XWZ002099"], "name": ["坏图形"], "geometry": [bow]}, crs="EPSG:4326"),
            ],
            ignore_index=True,
        )
    )
    renamed.to_file(tmp_path / "改名.geojson", driver="GeoJSON")
    context, page, log = zh_page(browser, site["base"])
    open_map(page, site["base"] + "/map/grids")

    def preview(path):
        if not page.is_visible("#import-file"):
            page.click("#import-box summary")
        page.set_input_files("#import-file", str(path))
        page.select_option("#import-level", "grid")
        page.fill("#import-code-field", "code")
        page.fill("#import-name-field", "name")
        page.click("#import-preview")
        page.wait_for_selector("#preview-apply")

    preview(tmp_path / "缩小.geojson")
    text = page.text_content("#edit-preview")
    assert "变更 1 个" in text and "不变 1 个" in text and "变动面积" in text
    assert "拼接检查发现" in text and "XWZ002" in text  # the gap it would leave, said before anything is written
    assert "gap in" not in text and " wide" not in text  # in the page's words
    page.screenshot(path=str(settings.home / "screenshots" / "planner_import_preview.png"))
    page.click("#preview-cancel")
    with site["engine"].connect() as conn:
        assert dict(conn.execute(sa.text("SELECT code, version FROM grids WHERE parent_code = 'XWZ002' "
                                         "AND valid_to IS NULL")).all()) == versions  # fmt: skip
    preview(tmp_path / "改名.geojson")
    text = page.text_content("#edit-preview")
    assert "1 个要素被拒绝" in text and "第 3 个要素（XWZ002099）：图形无效，边界自相交" in text
    assert "仍完整拼接" in text
    page.click("#preview-apply")
    page.wait_for_function("document.getElementById('notice').textContent.includes('已导入')")
    with site["engine"].connect() as conn:
        name, version = conn.execute(sa.text("SELECT name, version FROM grids WHERE code = :c AND valid_to IS NULL"),
                                     {"c": renamed.loc[1, "code"]}).one()  # fmt: skip
    assert name == "第2村 北片" and version == versions[renamed.loc[1, "code"]] + 1
    assert log.errors == []
    context.close()


@pytest.mark.parametrize("shape", ["square", "voronoi"])
def test_cells_generated_from_the_page_previewed_then_applied(browser, site, settings, shape):
    from geogrid.grids.topology import check_topology
    from tests.test_corners import current

    grid = {"square": "XWZ002002", "voronoi": "XWZ002001"}[shape]
    _, ground = current_of(site, grid)
    context, page, log = zh_page(browser, site["base"])
    open_map(page, site["base"] + "/map/grids")
    page.select_option("#level", "grid")
    inside = ground.representative_point()
    page.mouse.click(*screen_point(page, inside.x, inside.y))
    page.wait_for_function(f"(document.querySelector('#details h3') || {{}}).textContent?.startsWith('{grid}')")
    page.click("#generate-box summary")
    page.select_option("#generate-shape", shape)
    if shape == "square":
        page.fill("#generate-area", "200000")
    else:
        page.fill("#generate-count", "3")
    page.click("#generate-preview")
    page.wait_for_selector("#preview-apply")
    shown = page.locator("#edit-preview li").count()
    assert shown >= 2 and (shape == "square" or shown == 3)
    with site["engine"].connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM grids WHERE parent_code = :g"), {"g": grid}).scalar() == 0
    page.screenshot(path=str(settings.home / "screenshots" / f"planner_generate_{shape}.png"))
    page.click("#preview-apply")
    page.wait_for_function("document.getElementById('notice').textContent.includes('个单元')")
    with site["engine"].connect() as conn:
        made = conn.execute(sa.text("SELECT count(*) FROM grids WHERE parent_code = :g AND valid_to IS NULL"),
                            {"g": grid}).scalar()  # fmt: skip
        assert made == shown and check_topology(conn, settings, grid) == []
        assert current(conn, grid)[1].equals(ground)  # the grid itself unchanged
    assert log.errors == []
    context.close()


def current_of(site, code: str):
    from tests.test_corners import current

    with site["engine"].connect() as conn:
        return current(conn, code)


def test_a_shared_edge_redrawn_on_the_map_follows_on_both_sides(browser, site, settings):
    from geogrid.grids.topology import check_topology
    from tests.test_corners import current, shared_edge

    with site["engine"].connect() as conn:
        start, end, bend = shared_edge(conn)
        before = {code: current(conn, code) for code in ("XWZ001001", "XWZ001002")}
    context, page, log = zh_page(browser, site["base"])
    open_map(page, site["base"] + "/map/grids")
    lane = shapely.LineString([start, end])
    minx, miny, maxx, maxy = lane.bounds
    page.evaluate(f"window[document.querySelector('.folium-map').id].fitBounds([[{miny}, {minx}], [{maxy}, {maxx}]], "
                  "{padding: [150, 150], animate: false})")  # fmt: skip
    page.select_option("#level", "grid")
    inside = before["XWZ001001"][1].intersection(lane.buffer(0.0008)).representative_point()
    page.mouse.click(*screen_point(page, inside.x, inside.y))
    page.wait_for_function("(document.querySelector('#details h3') || {}).textContent?.startsWith('XWZ001001')")
    page.click("#redraw")
    for point in (start, bend, end):
        page.mouse.click(*screen_point(page, *point))
        page.wait_for_timeout(350)
    page.click("#redraw-done")
    page.wait_for_function("document.getElementById('notice').textContent.includes('已改画')")
    with site["engine"].connect() as conn:
        after = {code: current(conn, code) for code in before}
        assert all(after[code][0] == before[code][0] + 1 for code in before)
        assert all(after[code][1].boundary.distance(shapely.Point(bend)) < 2e-6 for code in before)
        assert check_topology(conn, settings, "XWZ") == []
    page.screenshot(path=str(settings.home / "screenshots" / "planner_edge_redrawn.png"))
    page.click("#undo")
    page.wait_for_function("document.getElementById('notice').textContent.includes('已撤销')")
    assert log.errors == []
    context.close()


def test_a_corner_added_by_dragging_a_halfway_handle_and_taken_away_by_a_right_click(browser, site, settings):
    from tests.test_corners import current

    code = "XWZ001001"
    _, cell = current_of(site, code)
    context, page, log = zh_page(browser, site["base"])
    open_map(page, site["base"] + "/map/grids")
    minx, miny, maxx, maxy = cell.bounds
    page.evaluate(f"window[document.querySelector('.folium-map').id].fitBounds([[{miny}, {minx}], [{maxy}, {maxx}]], "
                  "{padding: [60, 60], animate: false})")  # fmt: skip
    page.select_option("#level", "grid")

    def edit_boundary() -> int:
        inside = cell.representative_point()
        page.mouse.click(*screen_point(page, inside.x, inside.y))
        page.wait_for_function(f"(document.querySelector('#details h3') || {{}}).textContent?.startsWith('{code}')")
        page.click("#reshape")
        page.wait_for_selector(".corner-handle")
        return int(page.evaluate("document.body.dataset.corners"))

    before = edit_boundary()
    half = page.locator(".corner-handle.add").first.bounding_box()
    x, y = half["x"] + half["width"] / 2, half["y"] + half["height"] / 2
    toward = screen_point(page, cell.centroid.x, cell.centroid.y)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + (toward[0] - x) * 0.25, y + (toward[1] - y) * 0.25, steps=6)
    page.mouse.up()
    page.wait_for_function("document.getElementById('notice').textContent.includes('已移动')")
    page.wait_for_selector("body[data-ready='1']")
    # The new corner has a handle (and a corner of a cell meeting this edge on the way, once a vertex here, too).
    added_count = edit_boundary()
    assert added_count in (before + 1, before + 2)
    with site["engine"].connect() as conn:
        version = current(conn, code)[0]
    # The new corner, right-clicked: taken away again.
    centres = (
        "hs => hs.map(h => { const r = h.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })"
    )
    boxes = page.eval_on_selector_all(".corner-handle:not(.add)", centres)
    added = min(boxes, key=lambda b: math.dist(b, (x + (toward[0] - x) * 0.25, y + (toward[1] - y) * 0.25)))
    page.mouse.click(*added, button="right")
    page.wait_for_function("document.getElementById('notice').textContent.includes('已从')")
    page.wait_for_selector("body[data-ready='1']")
    assert edit_boundary() == added_count - 1
    with site["engine"].connect() as conn:
        assert current(conn, code)[0] == version + 1
    assert log.errors == []
    context.close()


def test_a_grid_recoded_from_the_page_after_a_preview(browser, site, settings):
    code, lon, lat = "XWZ002002", *point_in(site, "XWZ002002")
    context, page, log = zh_page(browser, site["base"])
    open_map(page, site["base"] + "/map/grids")
    page.select_option("#level", "grid")
    page.mouse.click(*screen_point(page, lon, lat))
    page.wait_for_function(f"(document.querySelector('#details h3') || {{}}).textContent?.startsWith('{code}')")
    page.fill("#recode-code", "XWZ002009")
    page.click("#recode button[type=submit]")
    page.wait_for_selector("#preview-apply")
    assert "XWZ002002 → XWZ002009" in page.text_content("#edit-preview")
    with site["engine"].connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM grids WHERE code = 'XWZ002009'")).scalar() == 0
    page.click("#preview-apply")
    page.wait_for_function("document.getElementById('notice').textContent.includes('已改编码')")
    with site["engine"].connect() as conn:
        alive = conn.execute(sa.text("SELECT code FROM grids WHERE valid_to IS NULL AND code LIKE 'XWZ00200%' "
                                     "ORDER BY code")).scalars().all()  # fmt: skip
    assert "XWZ002009" in alive and code not in alive and not [c for c in alive if c.startswith(code)]
    assert log.errors == []
    context.close()
