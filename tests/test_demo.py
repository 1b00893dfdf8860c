"""The demo township that `make demo` loads: sized like 西王庄乡, tiling, and a lived-in week."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest
import sqlalchemy as sa

from geogrid import basemaps, demo_basemap, demo_township
from geogrid.grids.topology import check_topology


@pytest.fixture(scope="module")
def township(demo_township_url):
    engine = sa.create_engine(demo_township_url)
    with engine.connect() as conn:
        counts = demo_township.counts(conn)
    yield engine, counts
    engine.dispose()


def test_the_demo_has_the_sizes_of_the_real_township(township):
    _, counts = township
    assert (counts["villages"], counts["grids"], counts["cells"]) == (18, 36, 101)
    assert (counts["managers"], counts["helpers"]) == (72, 101)
    assert counts["incidents"] == 330
    assert counts["closed"] >= 270  # "330 registered / 300+ closed", less the week's last ones


def test_every_level_tiles_its_parent(township, settings):
    engine, _ = township
    with engine.connect() as conn:
        assert check_topology(conn, settings, "XWZ") == []
        shapes = conn.execute(sa.text(
            "SELECT count(*) FILTER (WHERE ST_NumGeometries(geom) = 1), count(*) FROM grids WHERE level <> 'township'"
        )).one()  # fmt: skip
    assert shapes[0] == shapes[1]  # every grid in one piece


def test_the_week_is_lived_in(township, settings):
    engine, _ = township
    with engine.connect() as conn:
        one = lambda sql: conn.execute(sa.text(sql)).scalar_one()  # noqa: E731
        assert one("SELECT count(DISTINCT category) FROM incidents") >= 15
        assert one("SELECT count(DISTINCT source) FROM incidents") == 6
        assert one("SELECT count(DISTINCT incident_id) FROM incident_events WHERE to_status = 'escalated'") >= 5
        assert one("SELECT count(*) FROM incidents WHERE status NOT IN ('closed', 'resolved', 'handled_on_spot') "
                   "AND deadline < now()") >= 3  # overdue  # fmt: skip
        assert one("SELECT count(*) FROM incident_events WHERE details ->> 'return_visit' = 'true'") >= 270
        # Every helper patrolled on most days; the rule is mostly met, and some cells were missed.
        per_helper = conn.execute(sa.text(
            "SELECT a.person_id, count(DISTINCT c.day) FILTER (WHERE c.visit_count > 0) FROM assignments a "
            "LEFT JOIN coverage c ON c.person_id = a.person_id AND c.grid_code = a.grid_code "
            "WHERE a.duty = 'grid_helper' GROUP BY a.person_id"
        )).all()  # fmt: skip
        assert len(per_helper) == 101 and min(days for _, days in per_helper) >= 4
        rate = one("SELECT avg(compliant::int) FROM coverage WHERE assigned AND grid_code IN "
                   "(SELECT grid_code FROM assignments WHERE duty = 'grid_helper') AND person_id IN "
                   "(SELECT person_id FROM assignments WHERE duty = 'grid_helper')")  # fmt: skip
        assert 0.6 <= float(rate) <= 0.97
        assert one("SELECT count(*) FROM coverage WHERE 'not_patrolled' = ANY(reasons)") > 0


def test_the_demo_follows_from_its_seed():
    a = demo_township.place(5)
    b = demo_township.place(5)
    c = demo_township.place(6)
    assert a[0].equals(b[0]) and a[1] == b[1]
    assert not a[0].equals(c[0])


def test_the_demo_basemap_is_drawn_from_the_seed_and_names_the_village_grids(township, settings, tmp_path):
    engine, _ = township
    home = dataclasses.replace(settings, home=tmp_path)
    with engine.connect() as conn:
        file = demo_basemap.ensure(conn, home, 20261120)
        villages = set(conn.execute(sa.text("SELECT name FROM grids WHERE level = 'village'")).scalars())
    land = demo_basemap.ground(20261120)
    _, homes, centres = demo_township.place(20261120)
    assert len(land.labels) == len(centres) == 18 and len(land.houses) == len(homes)
    with sqlite3.connect(file) as db:
        names = db.execute("SELECT value FROM metadata WHERE name = 'name'").fetchone()[0]
        count, zooms = db.execute("SELECT count(*), group_concat(DISTINCT zoom_level) FROM tiles").fetchone()
        z, x, row, data = db.execute("SELECT * FROM tiles WHERE zoom_level = 15 ORDER BY tile_column, tile_row "
                                     "LIMIT 1 OFFSET 20").fetchone()  # fmt: skip
    assert names == "示范乡底图" and count > 300 and sorted(zooms.split(",")) == ["13", "14", "15", "16"]
    # The same seed draws the same tile, byte for byte; each village grid's name is on the map once.
    with engine.connect() as conn:
        labels = demo_basemap.village_labels(conn, home, 20261120)
    assert sorted(name for _, _, name in labels) == sorted(villages)
    assert demo_basemap.Painter(demo_basemap.ground(20261120, labels)).tile(z, x, 2**z - 1 - row) == data
    assert basemaps.load(home).default == "demo"
