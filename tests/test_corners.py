"""Editing boundaries by their corners (issue 18, part 1): a corner moves in every grid whose boundary passes
through it, neighbours and parents alike, with the edges that end at it; the hierarchy still tiles; an edit that
would break the tiling is refused in words; an edit is undone by new versions with the shapes before."""

from __future__ import annotations

import pytest
import shapely
import sqlalchemy as sa

from geogrid.errors import Conflict, InvalidInput
from geogrid.grids import vertices
from geogrid.grids.topology import check_topology
from tests.conftest import bearer

M = 1 / 111_320  # a metre of latitude, in degrees


def current(conn, code: str):
    row = conn.execute(sa.text("SELECT version, ST_AsBinary(geom) FROM grids WHERE code = :c AND valid_to IS NULL"),
                       {"c": code}).one()  # fmt: skip
    return row[0], shapely.from_wkb(bytes(row[1]))


def shared_corner(conn):
    """A corner of the two cells of village 1 that lies on the village's edge: where the lane meets the border."""
    (_, a), (_, b), (_, village) = (current(conn, c) for c in ("XWZ001001", "XWZ001002", "XWZ001"))
    both = {p for p in vertices.corners(conn, "XWZ001001")} & {p for p in vertices.corners(conn, "XWZ001002")}
    on_edge = [p for p in both if village.boundary.distance(shapely.Point(p)) < 1e-9]
    assert on_edge, "the lane ends on the village's border"
    return on_edge[0]


def test_corners_are_where_a_boundary_turns_not_the_points_that_densify_an_edge(conn, demo_grids):
    _, cell = current(conn, "XWZ001001")
    dense = shapely.segmentize(cell, 0.0002)  # what generated cells look like: many points on straight edges
    conn.execute(sa.text("UPDATE grids SET geom = ST_Multi(ST_GeomFromText(:w, 4326)) WHERE code = 'XWZ001001' "
                         "AND valid_to IS NULL"), {"w": dense.wkt})  # fmt: skip
    found = vertices.corners(conn, "XWZ001001")
    assert len(shapely.get_coordinates(dense)) > 3 * len(found)
    assert 4 <= len(found) <= len(shapely.get_coordinates(cell))


def test_a_shared_corner_moves_in_every_grid_through_it_and_the_hierarchy_still_tiles(conn, settings, demo_grids):
    corner = shared_corner(conn)
    through = [code for code in ("XWZ", "XWZ001", "XWZ002", "XWZ001001", "XWZ001002", "XWZ002001", "XWZ002002")
               if current(conn, code)[1].boundary.distance(shapely.Point(corner)) < 1e-9]  # fmt: skip
    assert {"XWZ001", "XWZ001001", "XWZ001002"} <= set(through)
    before = {code: current(conn, code) for code in through}
    target = (corner[0] + 8 * M, corner[1] + 5 * M)  # a few metres along and off the border
    done = vertices.move_corner(conn, settings, corner, target, actor="planner")
    assert set(done["versions"]) >= set(through)
    assert all(done["before"][code] == before[code][0] for code in through)  # what undo goes back to
    for code in through:
        version, shape = current(conn, code)
        assert version == before[code][0] + 1
        assert shape.boundary.distance(shapely.Point(target)) < 1e-9  # the new corner is on every one of them
        assert shape.boundary.distance(shapely.Point(corner)) > 1e-6  # and the old one on none
    assert check_topology(conn, settings, "XWZ") == []  # still tiles, every level
    # Undo: new versions with the shapes before, still tiling.
    undone = vertices.restore(conn, settings, done["versions"], actor="planner")
    for code in through:
        version, shape = current(conn, code)
        assert version == before[code][0] + 2 and shape.equals_exact(before[code][1], 1e-12)
    assert set(undone["versions"]) == set(done["versions"])
    assert check_topology(conn, settings, "XWZ") == []
    with pytest.raises(Conflict, match="changed since"):
        vertices.restore(conn, settings, done["versions"], actor="planner")


def test_a_move_that_would_break_the_tiling_is_refused_in_words(conn, settings, demo_grids):
    corner = shared_corner(conn)
    _, village = current(conn, "XWZ001")
    # Across the other village: the edges that end at the corner would cross others.
    far = current(conn, "XWZ002002")[1].representative_point()
    versions = {code: current(conn, code)[0] for code in ("XWZ001001", "XWZ001002", "XWZ001")}
    with pytest.raises(InvalidInput) as refused:
        vertices.move_corner(conn, settings, corner, (far.x, far.y), actor="planner")
    assert "would make the boundary of XWZ001" in str(refused.value) and "cross itself" in str(refused.value)
    assert {code: current(conn, code)[0] for code in versions} == versions  # nothing written
    assert village.equals_exact(current(conn, "XWZ001")[1], 0)


def test_the_api_moves_a_corner_and_undoes_it(client, conn, make_user, demo_grids):
    planner = bearer(make_user("planner")[1])
    corner = shared_corner(conn)
    listed = client.get("/api/grids/XWZ001001/corners", headers=planner).json["corners"]
    assert [round(v, 9) for v in corner] in [[round(v, 9) for v in p] for p in listed]
    moved = client.post("/api/grids/corner", json={"from": list(corner), "to": [corner[0] + 6 * M, corner[1]]},
                        headers=planner)  # fmt: skip
    assert moved.status_code == 200, moved.json
    assert (
        client.post("/api/grids/restore", json={"versions": moved.json["versions"]}, headers=planner).status_code == 200
    )
    assert client.post("/api/grids/corner", json={"from": [0, 0], "to": [0.001, 0]}, headers=planner).status_code == 422
    assert client.post("/api/grids/corner", json={"from": [500, 0], "to": [0, 0]}, headers=planner).status_code == 422
    supervisor = bearer(make_user("supervisor")[1])
    assert client.post("/api/grids/corner", json={"from": list(corner), "to": list(corner)},
                       headers=supervisor).status_code == 403  # fmt: skip
