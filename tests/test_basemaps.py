"""Basemaps: one list (``geogrid basemap``), tiles geogrid serves from MBTiles, Tianditu and
GCJ-02 maps requested exactly as configured, and GCJ-02 shown by moving the projection,
never the data: a line drawn on a GCJ-02 map is stored in WGS84 within half a metre."""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import math
import re
import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from click.testing import CliRunner
from PIL import Image

from geogrid import basemaps, demo, demo_basemap, gcj02
from geogrid.api import create_app
from geogrid.cli import main
from geogrid.errors import InvalidInput
from geogrid.grids import edit
from geogrid.testing import PageLog, live_server, open_map, sign_in
from tests.conftest import ROOT, bearer, demo_engine

CITIES = json.loads((ROOT / "data" / "coordtransform" / "china_cities.json").read_text(encoding="utf-8"))
KEY = "0123456789abcdef0123456789abcdef"  # a made-up Tianditu key
AMAP = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"


def metres(lon1, lat1, lon2, lat2):
    """Distance in metres between nearby points (equirectangular: exact enough under a kilometre)."""
    k = 111_320.0
    return np.hypot((np.asarray(lon1) - lon2) * k * np.cos(np.radians(lat1)), (np.asarray(lat1) - lat2) * k)


# -- the GCJ-02 shift --------------------------------------------------------------------------


def test_the_shift_matches_664_reference_cities_and_inverts_exactly():
    wgs = np.array([c["wgs84"] for c in CITIES])
    gcj = np.array([c["gcj02"] for c in CITIES])
    lon, lat = gcj02.to_gcj02(wgs[:, 0], wgs[:, 1])
    # The public formula against gcoord's fixtures (taken from a live service): under a metre everywhere.
    assert metres(lon, lat, gcj[:, 0], gcj[:, 1]).max() < 1.0
    back_lon, back_lat = gcj02.to_wgs84(lon, lat)
    assert metres(back_lon, back_lat, wgs[:, 0], wgs[:, 1]).max() < 0.01  # the inverse: well under a centimetre
    moved = metres(lon, lat, wgs[:, 0], wgs[:, 1])
    assert moved.min() > 50 and moved.max() < 1200  # every city is shifted, by tens to hundreds of metres
    # Outside China's box nothing moves (Taipei is inside it; Tokyo and Paris are not).
    assert gcj02.to_gcj02(139.69, 35.69) == (139.69, 35.69) and gcj02.to_gcj02(2.35, 48.85) == (2.35, 48.85)


@pytest.mark.parametrize("z", [8, 11, 14, 17, 19])
def test_a_shifted_vector_tile_stays_within_a_quarter_pixel_of_the_exact_shift(z):
    rng = np.random.default_rng(z)
    worst = 0.0
    for lon, lat in rng.uniform([75, 20], [134, 50], size=(40, 2)):
        n = 2**z
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        a, b, d, e, xoff, yoff = gcj02.tile_affine(z, x, y)
        u, v = (x + rng.uniform(0, 1, 50)) / n, (y + rng.uniform(0, 1, 50)) / n
        wgs_lon, wgs_lat = gcj02.to_wgs84(u * 360 - 180, np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * v)))))
        exact_lon, exact_lat = gcj02.to_gcj02(wgs_lon, wgs_lat)
        pixel = 360 / (256 * n)  # degrees of longitude per pixel; latitude's shrink by cos(lat)
        off_x = (a * wgs_lon + b * wgs_lat + xoff - exact_lon) / pixel
        off_y = (d * wgs_lon + e * wgs_lat + yoff - exact_lat) / (pixel * np.cos(np.radians(exact_lat)))
        worst = max(worst, float(np.hypot(off_x, off_y).max()))
    assert worst < 0.25


# -- the list -------------------------------------------------------------------------------------


@pytest.fixture
def home(settings, tmp_path):
    return dataclasses.replace(settings, home=tmp_path)


def make_mbtiles(path: Path, colour: str, zooms=range(0, 17), box=(115.24, 37.74, 115.30, 37.79), fmt="png") -> Path:
    """An MBTiles file of solid *colour* tiles over *box*."""
    out = io.BytesIO()
    Image.new("RGB", (256, 256), colour).save(out, format="PNG")
    tiles = list(demo_basemap.tiles_of(box, zooms))
    basemaps.write_mbtiles(path, ((z, x, y, out.getvalue()) for z, x, y in tiles),
                           {"name": "测试底图", "format": fmt, "minzoom": min(zooms),
                            "maxzoom": max(zooms)})  # fmt: skip
    return path


def test_templates_are_checked_and_wmts_placeholders_become_xyz(home):
    wmts = "https://tiles.gov.example/wmts?layer=base&TileMatrix={TileMatrix}&TileRow={TileRow}&TileCol={TileCol}"
    made = basemaps.add_template(home, "intranet", wmts, title="政务网底图")
    assert made.urls == ("https://tiles.gov.example/wmts?layer=base&TileMatrix={z}&TileRow={y}&TileCol={x}",)
    for bad, words in [("ftp://x/{z}/{x}/{y}", "http(s)"), ("https://x/{z}/{x}.png", "needs {z}"),
                       ("https://{s}.x/{z}/{x}/{y}", "subdomains")]:  # fmt: skip
        with pytest.raises(InvalidInput, match=re.escape(words)):
            basemaps.add_template(home, "bad", bad)
    with pytest.raises(InvalidInput, match="datum"):
        basemaps.add_template(home, "bad", "https://x/{z}/{x}/{y}", datum="bd09")
    with pytest.raises(InvalidInput, match="name"):
        basemaps.add_template(home, "Has Space", "https://x/{z}/{x}/{y}")
    config = basemaps.load(home)
    assert [b.name for b in config.basemaps] == ["intranet"] and config.default == "intranet"
    assert stat.S_IMODE(basemaps.path(home).stat().st_mode) == 0o600  # keys may be in it


def test_tianditu_needs_a_key_and_never_shows_it(home):
    with pytest.raises(InvalidInput, match="32 hexadecimal"):
        basemaps.add_tianditu(home, "not-a-key")
    made = basemaps.add_tianditu(home, KEY)
    assert [b.name for b in made] == ["tianditu-vec", "tianditu-img"]
    layers = basemaps.page_config(home)["layers"]
    vec = next(layer for layer in layers if layer["name"] == "tianditu-vec")
    assert [urlsplit(u).path for u in vec["urls"]] == ["/vec_w/wmts", "/cva_w/wmts"]
    assert all(parse_qs(urlsplit(u).query)["tk"] == [KEY] for u in vec["urls"])
    assert "{tk}" in json.dumps(json.loads(basemaps.path(home).read_text())["basemaps"])  # the key is kept apart
    listing = CliRunner().invoke(main, ["basemap", "list"], env={"GEOGRID_HOME": str(home.home)})
    assert listing.exit_code == 0 and "tianditu-vec" in listing.output and KEY not in listing.output
    # Without the key (a file copied to another machine) the layers are not offered at all.
    config = basemaps.load(home)
    config.keys = {}
    basemaps.save(home, config)
    assert basemaps.page_config(home) == {"layers": [], "default": "none"}


def test_mbtiles_files_are_checked_served_and_listed_from_the_cli(home, conn, make_user, tmp_path):
    env = {"GEOGRID_HOME": str(home.home)}
    bad = tmp_path / "notes.mbtiles"
    bad.write_text("not a database")
    refused = CliRunner().invoke(main, ["basemap", "add", str(bad)], env=env)
    assert refused.exit_code == 2 and "is not an MBTiles file" in refused.output
    vector = make_mbtiles(tmp_path / "vector.mbtiles", "#ffffff", zooms=[0], fmt="pbf")
    refused = CliRunner().invoke(main, ["basemap", "add", str(vector)], env=env)
    assert refused.exit_code == 2 and "raster tiles" in refused.output
    city = make_mbtiles(tmp_path / "City Centre.mbtiles", "#ff00ff", zooms=range(12, 15))
    added = CliRunner().invoke(main, ["basemap", "add", str(city), "--title", "城区"], env=env)
    assert added.exit_code == 0, added.output
    assert "added basemap city-centre (城区)" in added.output
    app = create_app(home, bind=conn)
    token = bearer(make_user("worker")[1])
    z, x, y = next(iter(demo_basemap.tiles_of((115.26, 37.76, 115.26, 37.76), [13])))
    tile = app.test_client().get(f"/basemap/city-centre/{z}/{x}/{y}", headers=token)
    assert tile.status_code == 200 and tile.mimetype == "image/png"
    assert Image.open(io.BytesIO(tile.data)).getpixel((10, 10)) == (255, 0, 255)
    beyond = app.test_client().get(f"/basemap/city-centre/{z}/{x + 9}/{y}", headers=token)  # outside the file
    assert beyond.status_code == 200 and Image.open(io.BytesIO(beyond.data)).getpixel((10, 10))[3] == 0
    assert app.test_client().get(f"/basemap/elsewhere/{z}/{x}/{y}", headers=token).status_code == 404
    assert app.test_client().get(f"/basemap/city-centre/{z}/{x}/{y}").status_code == 302  # signed in only
    assert CliRunner().invoke(main, ["basemap", "default", "none"], env=env).exit_code == 0
    assert basemaps.page_config(home)["default"] == "none"
    gone = CliRunner().invoke(main, ["basemap", "remove", "nope"], env=env)
    assert gone.exit_code == 2 and "no basemap 'nope'; configured: city-centre" in gone.output


def test_every_basemap_host_is_allowed_for_images_and_nothing_else(home, conn):
    basemaps.add_tianditu(home, KEY)
    basemaps.add_template(home, "amap", AMAP, datum="gcj02", subdomains="1234")
    csp = create_app(home, bind=conn).test_client().get("/login").headers["Content-Security-Policy"]
    images = csp.split("img-src ")[1].split(";")[0].split()
    assert images == ["'self'", "data:", "blob:", "https://*.tianditu.gov.cn", "https://*.is.autonavi.com"]
    assert "connect-src 'self';" in csp


def test_vector_tiles_for_a_gcj02_map_are_cut_shifted(client, make_user, demo_grids):
    admin = bearer(make_user("admin")[1])
    z, x, y = next(iter(demo_basemap.tiles_of((115.26, 37.76, 115.26, 37.76), [14])))
    plain = client.get(f"/tiles/grids/{z}/{x}/{y}.pbf?level=grid", headers=admin)
    shifted = client.get(f"/tiles/grids/{z}/{x}/{y}.pbf?level=grid&datum=gcj02", headers=admin)
    assert plain.status_code == shifted.status_code == 200 and plain.data and shifted.data != plain.data
    refused = client.get(f"/tiles/grids/{z}/{x}/{y}.pbf?datum=bd09", headers=admin)
    assert refused.status_code == 422 and "datum must be wgs84 or gcj02" in refused.json["detail"]


# -- in the browser -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(databases, settings, tmp_path_factory):
    home = tmp_path_factory.mktemp("basemaps")
    configured = dataclasses.replace(settings, home=home)
    make_mbtiles(home / "town.mbtiles", "#ff00ff")
    basemaps.add_mbtiles(configured, home / "town.mbtiles", name="town", title="城区")
    basemaps.add_tianditu(configured, KEY)
    basemaps.add_template(configured, "amap", AMAP, title="高德地图", datum="gcj02", subdomains="1234")
    engine = demo_engine(databases)
    with engine.begin() as conn:
        cells = {c: edit.lock_current(conn, c).geom for c in ("XWZ001001", "XWZ002001")}
    with live_server(create_app(configured, bind=engine)) as base:
        yield {"base": base, "engine": engine, "cells": cells, "settings": configured}
    engine.dispose()


@pytest.fixture
def page(browser, site):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", bypass_csp=True)
    outside: list[str] = []
    tile = io.BytesIO()
    Image.new("RGB", (256, 256), "#00ffff").save(tile, format="PNG")

    def answer(route):
        # Nothing leaves 127.0.0.1: a basemap host gets a cyan tile from here, and the URL is kept.
        if route.request.url.startswith(site["base"]):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.fulfill(status=200, content_type="image/png", body=tile.getvalue())

    context.route("**/*", answer)
    page = context.new_page()
    page.outside = outside
    page.log = PageLog()
    page.log.watch(page, site["base"])
    sign_in(page, site["base"], demo.ADMIN_NAME, demo.ADMIN_PASSWORD)
    yield page
    context.close()


def choose(page, title: str) -> None:
    page.click(f".leaflet-control-layers-base label:has-text('{title}') input")


def pixel(page, x: float, y: float) -> tuple[int, int, int]:
    shot = Image.open(io.BytesIO(page.screenshot(clip={"x": x, "y": y, "width": 1, "height": 1})))
    return shot.convert("RGB").getpixel((0, 0))


def test_a_tile_file_is_served_and_drawn(page, site, settings):
    open_map(page, site["base"] + "/map/grids")
    assert page.get_attribute("body", "data-basemap") == "town"  # the first one added is the default
    labels = page.eval_on_selector_all(".leaflet-control-layers-base label", "ls => ls.map(l => l.textContent.trim())")
    assert labels == ["无底图", "城区", "天地图 矢量", "天地图 影像", "高德地图"]
    page.wait_for_load_state("networkidle")
    shots = settings.home / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "basemap_mbtiles.png"))
    box = page.locator(".folium-map").bounding_box()
    corner = pixel(page, box["x"] + box["width"] - 40, box["y"] + box["height"] - 100)
    assert corner == (255, 0, 255)  # the file's magenta, where no grid covers it
    assert page.outside == [] and page.log.errors == []


def test_tianditu_and_gcj02_maps_request_exactly_their_templates(page, site):
    open_map(page, site["base"] + "/map/grids")
    choose(page, "天地图 矢量")
    page.wait_for_function("document.body.dataset.basemap === 'tianditu-vec'")
    page.wait_for_load_state("networkidle")
    tianditu = re.compile(r"https://t[0-7]\.tianditu\.gov\.cn/(vec|cva)_w/wmts\?SERVICE=WMTS&REQUEST=GetTile&"
                          r"VERSION=1\.0\.0&LAYER=\1&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX=(\d+)&"
                          rf"TILEROW=(\d+)&TILECOL=(\d+)&tk={KEY}")  # fmt: skip
    seen = list(page.outside)
    assert seen and all(tianditu.fullmatch(url) for url in seen), seen[:3]
    assert {tianditu.fullmatch(u).group(1) for u in seen} == {"vec", "cva"}  # the map and its annotation
    page.outside.clear()
    choose(page, "高德地图")
    page.wait_for_function("document.body.dataset.basemap === 'amap'")
    page.wait_for_load_state("networkidle")
    amap = re.compile(r"https://webrd0[1-4]\.is\.autonavi\.com/appmaptile\?lang=zh_cn&size=1&scale=1&style=8&"
                      r"x=(\d+)&y=(\d+)&z=(\d+)")  # fmt: skip
    assert page.outside and all(amap.fullmatch(url) for url in page.outside), page.outside[:3]
    # The tiles asked for are those under the view's centre in GCJ-02, not in WGS84.
    lon, lat, zoom = page.evaluate("(() => { const m = window[document.querySelector('.folium-map').id];"
                                   " const c = m.getCenter(); return [c.lng, c.lat, m.getZoom()]; })()")  # fmt: skip
    gx, gy = (float(v) for v in gcj02.to_gcj02(lon, lat))
    n = 2**zoom
    wanted = (int((gx + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(gy))) / math.pi) / 2 * n), zoom)
    asked = {tuple(int(v) for v in amap.fullmatch(u).groups()) for u in page.outside}
    assert wanted in asked
    page.reload()  # the choice is kept in this browser
    page.wait_for_selector("body[data-ready='1']", state="attached")
    assert page.get_attribute("body", "data-basemap") == "amap"
    choose(page, "城区")
    assert page.log.errors == []


def test_a_line_drawn_on_a_gcj02_map_is_stored_in_wgs84_within_half_a_metre(page, site, settings):
    cell = site["cells"]["XWZ002001"]
    minx, miny, maxx, maxy = cell.bounds
    inside = cell.representative_point()
    wanted = [(minx - 0.0008, inside.y - 0.0002), (maxx + 0.0008, inside.y + 0.0003)]  # WGS84, across the cell
    open_map(page, site["base"] + "/map/grids")
    choose(page, "高德地图")
    page.wait_for_function("document.body.dataset.basemap === 'amap'")

    def look_at(lon: float, lat: float) -> None:
        # Zoom 19: a pixel is 0.24 m here, so a click's rounding to whole pixels stays well inside the budget.
        page.evaluate(f"window[document.querySelector('.folium-map').id].setView([{lat}, {lon}], 19, "
                      "{animate: false})")  # fmt: skip

    def on_screen(lon: float, lat: float) -> tuple[float, float]:
        """Where a GCJ-02 basemap draws (lon, lat): shifted by this module, placed by plain Web Mercator."""
        glon, glat = (float(v) for v in gcj02.to_gcj02(lon, lat))
        return page.evaluate(
            """([lon, lat]) => {
                const div = document.querySelector('.folium-map'), map = window[div.id];
                const p = L.CRS.EPSG3857.latLngToPoint(L.latLng(lat, lon), map.getZoom())
                  .subtract(map.getPixelOrigin());
                const c = map.layerPointToContainerPoint(p), box = div.getBoundingClientRect();
                return [box.left + c.x, box.top + c.y];
            }""",
            [glon, glat],
        )

    look_at(inside.x, inside.y)
    page.mouse.click(*on_screen(inside.x, inside.y))
    page.wait_for_function("document.getElementById('details').textContent.includes('XWZ002001')")
    sent = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/split") else None)
    page.click(".leaflet-draw-draw-polyline")
    for lon, lat in wanted:
        look_at(lon, lat)  # the drawing goes on while the map moves
        page.mouse.move(*on_screen(lon, lat))
        page.mouse.down()
        page.mouse.up()
        page.wait_for_timeout(300)
    page.click(".leaflet-draw-actions a[title='完成画线']")
    page.wait_for_selector("#edit-preview:not([hidden]) #preview-apply")
    line = sent[0]["line"]["coordinates"]
    errors = [float(metres(lon, lat, w[0], w[1])) for (lon, lat), w in zip(line, wanted, strict=True)]
    assert max(errors) < 0.5, errors
    page.click("#preview-apply")
    page.wait_for_function("document.getElementById('notice').textContent.startsWith('已将 XWZ002001 拆分为')",
                           timeout=20_000)  # fmt: skip
    with site["engine"].connect() as conn:
        pieces = conn.execute(sa.text("SELECT ST_AsText(geom) FROM grids WHERE parent_code = 'XWZ002' "
                                      "AND valid_to IS NULL AND code <> 'XWZ002002'")).scalars().all()  # fmt: skip
    pieces = [shapely.from_wkt(p) for p in pieces]
    assert len(pieces) == 2
    cut = pieces[0].intersection(pieces[1])  # the stored edge between the two pieces
    drawn = shapely.LineString(wanted)
    far = max(float(metres(*p, *shapely.get_coordinates(drawn.interpolate(drawn.project(shapely.Point(p))))[0]))
              for p in shapely.get_coordinates(cut))  # fmt: skip
    assert far < 0.5, far
    page.screenshot(path=str(settings.home / "screenshots" / "basemap_gcj02_split.png"))
    assert page.log.errors == []


def test_vector_tiles_on_a_gcj02_map_are_drawn_where_the_embedded_layers_are(browser, site):
    """The same grids as embedded GeoJSON and as vector tiles look alike on a GCJ-02 map; unshifted tiles do not."""
    tiled = dataclasses.replace(site["settings"], tile_threshold=0)
    centre = site["cells"]["XWZ001001"].representative_point()

    def look(base: str, wrong_datum: bool = False) -> np.ndarray:
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", bypass_csp=True)
        context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base) else r.fulfill(
            status=200, content_type="image/png", body=_plain_tile()))  # fmt: skip
        page = context.new_page()
        sign_in(page, base, demo.ADMIN_NAME, demo.ADMIN_PASSWORD)
        open_map(page, base + "/map/grids")
        choose(page, "高德地图")
        page.evaluate(f"window[document.querySelector('.folium-map').id].setView([{centre.y}, {centre.x}], 15, "
                      "{animate: false})")  # fmt: skip
        if wrong_datum:  # what the page would draw if the tiles were cut in WGS84
            page.evaluate("JSON.parse(document.getElementById('geogrid-config').textContent).vector_tiles"
                          ".forEach((n) => { window[n].options.datum = 'wgs84'; window[n].redraw(); })")  # fmt: skip
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)
        box = page.locator(".folium-map").bounding_box()
        shot = page.screenshot(clip={"x": box["x"] + 60, "y": box["y"] + 60, "width": 700, "height": 560})
        context.close()
        return np.asarray(Image.open(io.BytesIO(shot)).convert("L"), dtype=float)

    embedded = look(site["base"])
    with live_server(create_app(tiled, bind=site["engine"])) as base:
        shifted, unshifted = look(base), look(base, wrong_datum=True)
    # The layers' fills differ (tiles are drawn lighter); their edges must not: the share of the
    # embedded edges' pixels with a tile edge within 3 px.
    edges = embedded < 110
    near, far = (float((_widen(tiles < 110, 3) & edges).sum() / edges.sum()) for tiles in (shifted, unshifted))
    assert edges.sum() > 1000 and near > 0.8 and far < 0.2, (near, far)


def _widen(mask: np.ndarray, px: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-px, px + 1):
        for dx in range(-px, px + 1):
            out |= np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
    return out


@functools.cache
def _plain_tile() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), "#00ffff").save(out, format="PNG")
    return out.getvalue()
