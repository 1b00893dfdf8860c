"""Property tests of the geometry paths: random and degenerate lines and points never break them.

A split by any line either refuses with a clear InvalidInput or leaves pieces that tile
the cell; any point is assigned to a cell that covers it, snapped within the limit, or
kept unassigned; bulk and single assignment agree.
"""

from __future__ import annotations

import math

import shapely
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from geogrid.errors import InvalidInput
from geogrid.grids import edit
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
