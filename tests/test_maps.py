"""Map pages over HTTP: offline resources, vector tiles for big layers, escaping, basemaps."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re

import pytest
import sqlalchemy as sa
from folium.plugins import Fullscreen

from geogrid.api import create_app
from geogrid.config import Settings
from geogrid.errors import ConfigError
from geogrid.layers.base import UnknownResource, new_map, offline, script_json
from geogrid.layers.grids import min_zoom
from tests.conftest import bearer


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def config_of(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="geogrid-config">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


@pytest.fixture
def admin(make_user, demo_grids):
    return bearer(make_user("admin")[1])


@pytest.mark.parametrize("path", ["/map/grids", "/map/incidents", "/map/coverage?date=2026-11-20"])
def test_pages_load_nothing_from_elsewhere(client, admin, path):
    response = client.get(path, headers=admin)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert "/vendor/leaflet/dist/leaflet.js" in html
    for resource in re.findall(r'(?:src|href)="(/vendor/[^"]+)"', html):
        assert client.get(resource).status_code == 200, resource


def test_vendor_files_are_the_installed_ones_and_paths_cannot_escape(client, settings):
    response = client.get("/vendor/leaflet/dist/leaflet.js")
    assert response.data == (settings.assets_dir / "leaflet/dist/leaflet.js").read_bytes()
    assert client.get("/vendor/../pyproject.toml").status_code == 404
    assert client.get("/vendor/leaflet/package.json").status_code == 404  # scripts, styles and images only


def test_offline_refuses_a_resource_it_does_not_serve():
    m = new_map(Settings(), None)
    offline(m)  # the map itself: Leaflet only
    Fullscreen().add_to(m)  # a plugin geogrid does not install
    with pytest.raises(UnknownResource, match="Fullscreen"):
        offline(m)


def test_small_levels_are_embedded_big_ones_are_tiles(conn, settings, demo_grids, make_user):
    small = create_app(dataclasses.replace(settings, tile_threshold=3), bind=conn)
    token = make_user("planner")[1]
    html = small.test_client().get("/map/grids", headers=bearer(token)).get_data(as_text=True)
    kinds = {layer["level"]: layer["kind"] for layer in config_of(html)["levels"]}
    assert kinds == {"township": "geojson", "village": "geojson", "grid": "tiles"}  # 4 grids > 3
    assert "/tiles/grids/{z}/{x}/{y}.pbf?level=grid" in html
    assert config_of(html)["can_edit"] is True


def test_grid_tile_holds_the_grids_of_its_area(client, admin):
    x, y = tile_of(115.26, 37.76, 14)
    response = client.get(f"/tiles/grids/14/{x}/{y}.pbf?level=grid", headers=admin)
    assert response.status_code == 200 and response.mimetype == "application/vnd.mapbox-vector-tile"
    assert b"grids" in response.data and b"XWZ001001" in response.data
    assert b"village" not in response.data and b"township" not in response.data  # one level only
    far = client.get("/tiles/grids/14/0/0.pbf", headers=admin)
    assert far.status_code == 200 and far.data == b""
    assert client.get("/tiles/grids/3/9/1.pbf", headers=admin).status_code in (400, 422)  # x out of range at z3
    assert client.get("/tiles/grids/14/1/1.pbf?level=nope", headers=admin).status_code in (400, 422)


def test_a_worker_sees_only_their_grids_in_tiles(client, conn, make_user, demo_grids):
    who, token = make_user("worker")
    conn.execute(sa.text("INSERT INTO assignments (person_id, grid_code, duty) VALUES (:p, 'XWZ002001', "
                         "'grid_helper')"), {"p": who.person_id})  # fmt: skip
    x, y = tile_of(115.26, 37.76, 13)
    data = client.get(f"/tiles/grids/13/{x}/{y}.pbf", headers=bearer(token)).data
    assert b"XWZ002001" in data and b"XWZ001001" not in data


def test_markup_in_names_cannot_break_out_of_the_page_script(client, conn, admin):
    payload = "</script><script>alert(1)</script><!--"
    conn.execute(sa.text("UPDATE grids SET name = :n WHERE code = 'XWZ001001'"), {"n": payload})
    html = client.get("/map/grids", headers=admin).get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert json.loads(script_json(payload)) == payload and "<" not in script_json(payload)


def test_planner_page_for_a_past_date_is_read_only(client, admin):
    html = client.get("/map/grids?at=2020-01-01", headers=admin).get_data(as_text=True)
    assert config_of(html)["can_edit"] is False and config_of(html)["at"] == "2020-01-01"
    assert client.get("/map/grids?at=yesterday", headers=admin).status_code in (400, 422)


def test_coverage_page_needs_a_real_date(client, make_user, demo_grids):
    token = make_user("supervisor")[1]
    assert client.get("/map/coverage?date=2026-02-30", headers=bearer(token)).status_code in (400, 422)


def test_basemap_choices(tmp_path, conn, settings, demo_grids, make_user):
    tiles = tmp_path / "tiles" / "1" / "0"
    tiles.mkdir(parents=True)
    (tiles / "0.png").write_bytes(b"\x89PNG fake")
    local = create_app(dataclasses.replace(settings, basemap=str(tmp_path / "tiles")), bind=conn)
    token = bearer(make_user("planner")[1])
    client = local.test_client()
    assert "/basemap/env/{z}/{x}/{y}" in client.get("/map/grids", headers=token).get_data(as_text=True)
    assert client.get("/basemap/env/1/0/0", headers=token).data == b"\x89PNG fake"
    assert client.get("/basemap/env/1/0/1", headers=token).data[:4] == b"\x89PNG"  # none there: an empty tile
    osm = create_app(dataclasses.replace(settings, basemap="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                                         basemap_attribution="© OpenStreetMap contributors"), bind=conn)  # fmt: skip
    html = osm.test_client().get("/map/grids", headers=token).get_data(as_text=True)
    assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in html and "OpenStreetMap contributors" in html


@pytest.mark.parametrize("value,message", [
    ("ftp://tiles/{z}/{x}/{y}.png", "http"),
    ("https://tiles.example/{z}/{x}.png", "{y}"),
    ("/no/such/folder", "folder"),
])  # fmt: skip
def test_bad_basemap_settings_are_refused(value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings(basemap=value)


def test_min_zoom_shows_a_layer_once_its_grids_are_a_few_pixels_wide():
    assert min_zoom(60, 37.8) == 14  # 100,000 Voronoi cells over 20 x 20 km
    assert min_zoom(2000, 37.8) == 9
    assert min_zoom(None, 0) == 0


def test_many_cells_make_the_coverage_map_use_tiles(conn, settings, demo_grids, make_user):
    from geogrid.patrols.ingest import import_patrol

    person = conn.execute(sa.text("INSERT INTO people (name) VALUES ('周八') RETURNING id")).scalar_one()
    walk = "time,lon,lat\n2026-11-20T09:00:00,115.26,37.76\n2026-11-20T09:00:10,115.2601,37.76\n"
    import_patrol(conn, settings, person, "w.csv", walk.encode())
    few = create_app(dataclasses.replace(settings, tile_threshold=3), bind=conn)
    token = bearer(make_user("supervisor")[1])
    client = few.test_client()
    html = client.get("/map/coverage?date=2026-11-20", headers=token).get_data(as_text=True)
    config = config_of(html)
    assert config["kind"] == "tiles" and config["gaps"] is None
    assert "/tiles/coverage/{z}/{x}/{y}.pbf?date=2026-11-20" in html
    assert "pick a grid code to see their uncovered parts" in html
    x, y = tile_of(115.26, 37.76, 14)
    tile = client.get(f"/tiles/coverage/14/{x}/{y}.pbf?date=2026-11-20", headers=token)
    # The cells that look alike come as one feature (fill and outline alike; the tiles take no clicks).
    assert tile.status_code == 200 and b"coverage" in tile.data and b"cells" in tile.data
    assert b"XWZ001001" not in tile.data
    # A 512-pixel tile of a map at zoom 15 is the tile of zoom 14.
    big = client.get(f"/tiles/coverage/15/{x}/{y}.pbf?date=2026-11-20&size=512", headers=token)
    assert big.data == tile.data
    assert client.get(f"/tiles/coverage/15/{x}/{y}.pbf?date=2026-11-20&size=300", headers=token).status_code == 422
    # Kept once made, until the day is computed again: then the new coverage shows.
    from geogrid.api.maps import COVERAGE_TILES
    from geogrid.patrols.compute import compute_coverage

    hits = COVERAGE_TILES.hits
    assert client.get(f"/tiles/coverage/14/{x}/{y}.pbf?date=2026-11-20", headers=token).data == tile.data
    assert COVERAGE_TILES.hits == hits + 1
    conn.execute(sa.text("DELETE FROM gps_fixes WHERE person_id = :p"), {"p": person})
    conn.execute(sa.text("DELETE FROM patrol_tracks WHERE person_id = :p"), {"p": person})
    conn.execute(sa.text("UPDATE coverage SET computed_at = computed_at - interval '1 minute'"))
    compute_coverage(conn, settings, dt.date(2026, 11, 20))
    again = client.get(f"/tiles/coverage/14/{x}/{y}.pbf?date=2026-11-20", headers=token)
    assert COVERAGE_TILES.hits == hits + 1 and again.data != tile.data
    # With a grid picked, the few cells under it are embedded again, gaps and all.
    html = client.get("/map/coverage?date=2026-11-20&grid=XWZ001001", headers=token).get_data(as_text=True)
    assert config_of(html)["kind"] == "geojson" and config_of(html)["gaps"] is not None


def test_many_incidents_are_served_as_tiles_filtered_like_the_list(conn, settings, demo_grids, make_user):
    from geogrid.incidents.intake import NewIncident, register

    for status_probe, (lon, lat) in enumerate([(115.255, 37.755), (115.26, 37.76)]):
        register(conn, settings, NewIncident(lon=lon, lat=lat, category="garbage" if status_probe else "water",
                                             source="app"), actor="t")  # fmt: skip
    app = create_app(dataclasses.replace(settings, tile_threshold=1), bind=conn)
    token = bearer(make_user("operator")[1])
    client = app.test_client()
    html = client.get("/map/incidents", headers=token).get_data(as_text=True)
    assert config_of(html)["tiles"] and "/tiles/incidents/{z}/{x}/{y}.pbf" in html
    x, y = tile_of(115.257, 37.757, 13)
    every = client.get(f"/tiles/incidents/13/{x}/{y}.pbf", headers=token)
    assert every.status_code == 200 and b"incidents" in every.data and every.data.count(b"reported") >= 1
    water = client.get(f"/tiles/incidents/13/{x}/{y}.pbf?category=water", headers=token).data
    garbage = client.get(f"/tiles/incidents/13/{x}/{y}.pbf?category=garbage", headers=token).data
    assert b"water" in water and b"garbage" not in water and b"garbage" in garbage
    assert client.get(f"/tiles/incidents/13/{x}/{y}.pbf?status=nope", headers=token).status_code in (400, 422)


def test_coverage_page_opens_on_the_latest_day_with_patrols(conn, settings, demo_grids, make_user):
    from geogrid.patrols.ingest import import_patrol

    person = conn.execute(sa.text("INSERT INTO people (name) VALUES ('周八') RETURNING id")).scalar_one()
    walk = "time,lon,lat\n2026-11-03T09:00:00,115.26,37.76\n2026-11-03T09:00:10,115.2601,37.76\n"
    import_patrol(conn, settings, person, "w.csv", walk.encode())
    token = bearer(make_user("supervisor")[1])
    app = create_app(settings, bind=conn)
    html = app.test_client().get("/map/coverage", headers=token).get_data(as_text=True)
    assert config_of(html)["day"] == "2026-11-03"
