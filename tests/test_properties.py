"""Property tests of the geometry paths: random and degenerate lines and points never break them.

A split by any line either refuses with a clear InvalidInput or leaves pieces that tile
the cell; any point is assigned to a cell that covers it, snapped within the limit, or
kept unassigned; bulk and single assignment agree.
"""

from __future__ import annotations

import json
import math

import pytest
import shapely
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from geogrid.errors import InvalidInput
from geogrid.grids import edit
from geogrid.grids.generate import generate_cells
from geogrid.grids.importer import import_grids
from geogrid.grids.io import read_boundaries
from geogrid.grids.topology import check_topology
from geogrid.incidents.assign import assign_point, assign_table, index_points

# Around the sample township (115.247..115.286 E, 37.748..37.778 N), and now and then far off.
LON = st.one_of(st.floats(115.24, 115.29), st.floats(-180, 180))
LAT = st.one_of(st.floats(37.74, 37.785), st.floats(-90, 90))
COORD = st.tuples(LON, LAT)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@FAST
@given(points=st.lists(COORD, min_size=2, max_size=6))
def test_a_split_by_any_line_refuses_clearly_or_tiles_the_cell(conn, settings, demo_grids, points):
    cell = edit.lock_current(conn, "XWZ001001").geom
    savepoint = conn.begin_nested()
    try:
        result = edit.split_grid(conn, settings, "XWZ001001", shapely.LineString(points))
    except InvalidInput as err:
        assert str(err)  # refused, with a reason
    else:
        pieces = [edit.lock_current(conn, code).geom for code in result.created]
        assert len(pieces) >= 2
        assert shapely.union_all(pieces).symmetric_difference(cell).area < 1e-9
    finally:
        savepoint.rollback()


@FAST
@given(lon=LON, lat=LAT)
def test_any_point_lands_in_a_covering_cell_near_one_or_nowhere(conn, settings, demo_grids, lon, lat):
    out = assign_point(conn, settings, lon, lat)
    point = shapely.Point(lon, lat)
    if out["assignment"] == "unassigned":
        assert out["grid_id"] is None
        return
    geom = shapely.from_wkb(bytes(conn.execute(sa.text("SELECT ST_AsBinary(geom) FROM grids WHERE id = :i"),
                                               {"i": out["grid_id"]}).scalar_one()))  # fmt: skip
    if out["assignment"] == "inside":
        assert geom.buffer(1e-9).covers(point)
    else:
        assert 0 < out["snap_distance_m"] <= settings.snap_m
        assert geom.distance(point) * 111_320 * math.cos(math.radians(lat)) <= settings.snap_m * 1.01 + 1


@FAST
@given(points=st.lists(COORD, min_size=1, max_size=30))
def test_bulk_assignment_agrees_with_single_assignment(conn, settings, demo_grids, points):
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text("CREATE TEMP TABLE prop_pts (n integer PRIMARY KEY, geom geometry(Point, 4326))"))
        for n, (x, y) in enumerate(points):
            conn.execute(sa.text("INSERT INTO prop_pts VALUES (:n, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                         {"n": n, "x": x, "y": y})  # fmt: skip
        index_points(conn, "prop_pts")
        assert assign_table(conn, settings, "prop_pts", "prop_out") == len(points)
        bulk = dict(conn.execute(sa.text("SELECT n, grid_id FROM prop_out")).all())
        for n, (x, y) in enumerate(points):
            assert bulk[n] == assign_point(conn, settings, x, y)["grid_id"], (x, y)
    finally:
        savepoint.rollback()


@FAST
@given(left=st.floats(0.05, 0.95), right=st.floats(0.05, 0.95), wiggle=st.floats(-0.3, 0.3))
def test_a_line_across_the_cell_splits_it_into_pieces_that_tile_it(conn, settings, demo_grids, left, right, wiggle):
    cell = edit.lock_current(conn, "XWZ001001").geom
    minx, miny, maxx, maxy = cell.bounds
    h = maxy - miny
    line = shapely.LineString([(minx - 0.002, miny + left * h), ((minx + maxx) / 2, miny + (0.5 + wiggle) * h),
                               (maxx + 0.002, miny + right * h)])  # fmt: skip
    savepoint = conn.begin_nested()
    try:
        result = edit.split_grid(conn, settings, "XWZ001001", line)
        pieces = [edit.lock_current(conn, code).geom for code in result.created]
        assert len(pieces) >= 2
        assert shapely.union_all(pieces).symmetric_difference(cell).area < 1e-9
        assert sum(result.created.values()) > 0
        event("split")
    except InvalidInput as err:
        event("refused")
        # Only refusal allowed for a line across: a piece too small to be a grid.
        assert "small" in str(err) or "sliver" in str(err), str(err)
    finally:
        savepoint.rollback()


@pytest.fixture
def cells_of_a_grid(conn, settings, demo_grids) -> list[str]:
    """XWZ001001 cut into square cells (the cells tile it); their codes."""
    result = generate_cells(conn, settings, "XWZ001001", shape="square", area_m2_target=60_000)
    return sorted(result.created)


@FAST
@given(data=st.data())
def test_any_merge_refuses_clearly_or_leaves_the_parent_tiled(conn, settings, cells_of_a_grid, data):
    if data.draw(st.booleans()):  # any cells at all
        chosen = data.draw(st.lists(st.sampled_from(cells_of_a_grid), min_size=1, max_size=6))
    else:  # a walk from cell to neighbouring cell: an adjacent group
        geoms = {code: edit.lock_current(conn, code).geom for code in cells_of_a_grid}
        chosen = [data.draw(st.sampled_from(cells_of_a_grid))]
        for _ in range(data.draw(st.integers(1, 5))):
            near = [c for c, g in geoms.items() if g.intersection(geoms[chosen[-1]]).length > 0 and c != chosen[-1]]
            if near:
                chosen.append(data.draw(st.sampled_from(sorted(near))))
    before = [edit.lock_current(conn, code).geom for code in set(chosen)]
    savepoint = conn.begin_nested()
    try:
        result = edit.merge_grids(conn, settings, chosen)
    except InvalidInput as err:
        event("refused")
        assert "adjacent" in str(err) or "two different" in str(err), str(err)
        assert len(set(chosen)) < 2 or shapely.union_all(before).geom_type != "Polygon"
    else:
        event("merged")
        (code,) = result.created
        merged = edit.lock_current(conn, code).geom
        assert merged.symmetric_difference(shapely.union_all(before)).area < 1e-12
        assert check_topology(conn, settings, "XWZ001001") == []
        assert set(result.retired) == set(chosen)
    finally:
        savepoint.rollback()


# A ring: a few points near the township, now and then repeated, collinear, crossing
# itself, tiny, or far out of range.
RING_POINT = st.one_of(COORD, st.tuples(st.floats(115.25, 115.251), st.floats(37.75, 37.751)),
                       st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)))  # fmt: skip
RECTANGLE = st.builds(
    lambda x, y, w, h: [(x, y), (x + w, y), (x + w, y + h), (x, y + h)],
    st.floats(115.25, 115.28),
    st.floats(37.75, 37.775),
    st.floats(1e-6, 0.01),
    st.floats(1e-6, 0.01),
)
RING = st.one_of(st.lists(RING_POINT, min_size=0, max_size=8), RECTANGLE)


@FAST
@given(rings=st.lists(st.lists(RING, min_size=1, max_size=2), min_size=1, max_size=3), make_valid=st.booleans())
def test_an_import_of_any_polygons_refuses_clearly_or_stores_valid_grids(conn, settings, demo_grids, tmp_path_factory,
                                                                        rings, make_valid):  # fmt: skip
    features = [{"type": "Feature", "properties": {"name": f"p{i}"},
                 "geometry": {"type": "Polygon", "coordinates": [[*r, r[0]] if r else [] for r in polygon]}}
                for i, polygon in enumerate(rings)]  # fmt: skip
    path = tmp_path_factory.mktemp("imp") / "polygons.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    savepoint = conn.begin_nested()
    try:
        frame = read_boundaries(path, max_vertices=1000)
        report = import_grids(conn, frame, level="grid", settings=settings, parent_code="XWZ001",
                              name_field="name", make_valid=make_valid)  # fmt: skip
    except InvalidInput as err:
        event("refused")
        assert len(str(err)) > 10
    else:
        event("imported")
        stored = conn.execute(
            sa.text(
                "SELECT ST_IsValid(geom), ST_SRID(geom), ST_IsEmpty(geom) FROM grids "
                "WHERE code = ANY(:codes) AND valid_to IS NULL"
            ),
            {"codes": report.created},  # fmt: skip
        ).all()
        assert len(report.created) == len(stored) == len(features)
        assert make_valid or not report.repaired
        assert all(valid and srid == 4326 and not empty for valid, srid, empty in stored)
    finally:
        savepoint.rollback()
