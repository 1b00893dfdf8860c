"""Editing boundaries by their corners (issue 18, part 1): a corner moves in every grid whose boundary passes
through it, neighbours and parents alike, with the edges that end at it; the hierarchy still tiles; an edit that
would break the tiling is refused in words; an edit is undone by new versions with the shapes before."""

from __future__ import annotations

import math

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


def shared_edge(conn):
    """The lane between the two cells of village 1: its two ends, and a point 20 m north of its middle."""
    (_, a), (_, b) = current(conn, "XWZ001001"), current(conn, "XWZ001002")
    lane = shapely.line_merge(a.boundary.intersection(b.boundary))
    start, end = lane.coords[0], lane.coords[-1]
    middle = lane.interpolate(0.5, normalized=True)
    return start, end, (middle.x, middle.y + 20 * M)


def test_a_drawn_path_reshapes_a_shared_edge_on_both_sides(conn, settings, demo_grids):
    start, end, bend = shared_edge(conn)
    before = {code: current(conn, code) for code in ("XWZ001", "XWZ001001", "XWZ001002", "XWZ002")}
    done = vertices.reshape_edge(conn, settings, "XWZ001001", [start, bend, end], actor="planner")
    assert set(done["versions"]) == {"XWZ001001", "XWZ001002"}  # the lane is inside the village: it stays
    (_, a), (_, b) = current(conn, "XWZ001001"), current(conn, "XWZ001002")
    assert a.boundary.distance(shapely.Point(bend)) < 1e-9 and b.boundary.distance(shapely.Point(bend)) < 1e-9
    assert abs(a.union(b).area - before["XWZ001001"][1].union(before["XWZ001002"][1]).area) < 1e-12
    assert abs((a.area - before["XWZ001001"][1].area) + (b.area - before["XWZ001002"][1].area)) < 1e-12
    assert current(conn, "XWZ001") == before["XWZ001"]
    assert check_topology(conn, settings, "XWZ") == []
    vertices.restore(conn, settings, done["versions"], actor="planner")
    assert current(conn, "XWZ001001")[1].equals_exact(before["XWZ001001"][1], 1e-12)


def test_a_path_must_start_and_end_on_the_boundary(conn, settings, demo_grids):
    start, end, bend = shared_edge(conn)
    with pytest.raises(InvalidInput, match="start and end on the boundary"):
        vertices.reshape_edge(conn, settings, "XWZ001001", [(start[0] - 100 * M, start[1]), bend, end])
    with pytest.raises(InvalidInput, match="cross itself|tiling"):  # far across the other cell and out of it
        far = current(conn, "XWZ002002")[1].representative_point()
        vertices.reshape_edge(conn, settings, "XWZ001001", [start, (far.x, far.y), end])


def test_an_edge_that_cells_meet_part_of_the_way_is_redrawn_at_the_cells_level(conn, settings, demo_grids):
    from geogrid.grids.generate import generate_cells

    generate_cells(conn, settings, "XWZ001002", shape="voronoi", balanced=3)
    start, end, bend = shared_edge(conn)
    versions = {c: v for c, v in conn.execute(sa.text("SELECT code, version FROM grids WHERE valid_to IS NULL")).all()}
    with pytest.raises(InvalidInput, match="meets this edge part of the way"):
        vertices.reshape_edge(conn, settings, "XWZ001001", [start, bend, end], actor="planner")
    assert dict(conn.execute(sa.text("SELECT code, version FROM grids WHERE valid_to IS NULL")).all()) == versions


def test_a_corner_is_added_halfway_and_taken_away_again(conn, settings, demo_grids):
    corners = vertices.corners(conn, "XWZ001001")
    halves = vertices.midpoints(conn, "XWZ001001")
    assert len(halves) == len(corners)  # one between each two corners
    _, cell = current(conn, "XWZ001001")
    half = halves[0]
    assert cell.boundary.distance(shapely.Point(half)) < 1e-9  # on the boundary
    # Dragged out, the halfway point is a new corner of every grid along that edge.
    inward = cell.centroid
    step = 80 * M / math.dist(half, (inward.x, inward.y))  # 80 m in towards the middle of the cell
    target = (half[0] + step * (inward.x - half[0]), half[1] + step * (inward.y - half[1]))
    vertices.move_corner(conn, settings, half, target, actor="planner")
    assert len(vertices.corners(conn, "XWZ001001")) == len(corners) + 1
    assert check_topology(conn, settings, "XWZ") == []
    # Taken away: onto the line between the corners either side; the boundary no longer turns there.
    taken = vertices.remove_corner(conn, settings, "XWZ001001", target, actor="planner")
    assert "XWZ001001" in taken["versions"]
    assert len(vertices.corners(conn, "XWZ001001")) == len(corners)
    assert check_topology(conn, settings, "XWZ") == []
    with pytest.raises(InvalidInput, match="no corner"):
        vertices.remove_corner(conn, settings, "XWZ001001", (0.5, 0.5), actor="planner")


def test_a_grid_recoded_with_the_grids_below_it_their_duties_and_incidents(conn, settings, demo_grids):
    from geogrid.errors import Conflict as Taken
    from geogrid.grids.edit import recode_grid
    from geogrid.incidents.intake import NewIncident, register
    from tests.conftest import helper_on

    person, lon, lat = helper_on(conn, "XWZ001002")
    case = register(conn, settings, NewIncident(lon=lon, lat=lat, category="garbage", source="phone"), actor="t")
    version = current(conn, "XWZ001")[0]
    preview = recode_grid(conn, settings, "XWZ001", "XWZ009", version=version, dry_run=True)
    assert preview.retired == ["XWZ001", "XWZ001001", "XWZ001002"]
    assert list(preview.created) == ["XWZ009", "XWZ009001", "XWZ009002"]
    assert current(conn, "XWZ001")[0] == version  # a dry run writes nothing
    done = recode_grid(conn, settings, "XWZ001", "XWZ009", version=version, actor="planner")
    assert list(done.created) == ["XWZ009", "XWZ009001", "XWZ009002"]
    alive = dict(conn.execute(sa.text("SELECT code, parent_code FROM grids WHERE valid_to IS NULL "
                                      "AND code LIKE 'XWZ00%'")).all())  # fmt: skip
    assert alive["XWZ009001"] == "XWZ009" and "XWZ001" not in alive and "XWZ001002" not in alive
    assert check_topology(conn, settings, "XWZ") == []
    duty = conn.execute(sa.text("SELECT grid_code FROM assignments WHERE person_id = :p AND valid_to IS NULL"),
                        {"p": person}).scalar_one()  # fmt: skip
    assert duty == "XWZ009002"  # the duty went with the code
    cell = conn.execute(sa.text("SELECT g.code FROM incidents i JOIN grids g ON g.id = i.grid_id WHERE i.id = :i"),
                        {"i": case["id"]}).scalar_one()  # fmt: skip
    assert cell == "XWZ009002"  # the open case with its ground
    with pytest.raises(Taken, match="taken"):  # an old code is never given out again
        recode_grid(conn, settings, "XWZ002", "XWZ001", version=current(conn, "XWZ002")[0])
    with pytest.raises(InvalidInput, match="letters, digits"):
        recode_grid(conn, settings, "XWZ002", "X Y", version=current(conn, "XWZ002")[0])


def test_moving_corners_of_the_demo_township_changes_nothing_far_from_them(demo_township_url, settings):
    """On the real-sized demo (101 Voronoi cells): each of five corners shared by cells of two villages, moved a few
    metres, changes the grids only along the edges that end at it, and the hierarchy still tiles. (Before corners
    were put on every edge they lie on, one of these broke the tiling; before points were keyed within 1 cm, a
    move put a notch 300 m away.)"""
    engine = sa.create_engine(demo_township_url)
    with engine.connect() as conn, conn.begin() as outer:
        shared = conn.execute(sa.text(
            """
            SELECT DISTINCT ST_X(p.geom), ST_Y(p.geom) FROM grids a JOIN grids b
                ON a.level = 'village' AND b.level = 'village' AND a.code < b.code AND a.valid_to IS NULL
               AND b.valid_to IS NULL AND ST_Intersects(a.geom, b.geom),
                   ST_DumpPoints(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))) p
             ORDER BY 1, 2
            """
        )).all()  # fmt: skip
        moved = 0
        for point in shared:
            if moved == 5:
                break
            if not is_corner(conn, point):
                continue
            radius = reach_of(conn, point)
            with conn.begin_nested() as step:
                before = dict(conn.execute(sa.text("SELECT code, ST_AsBinary(geom) FROM grids WHERE valid_to IS NULL"))
                              .all())  # fmt: skip
                done = vertices.move_corner(conn, settings, point, (point[0] + 4 * M, point[1] + 3 * M))
                for code in done["versions"]:
                    old = shapely.from_wkb(bytes(before[code]))
                    changed = old.symmetric_difference(current(conn, code)[1])
                    # Ground that changed hands (not the 1e-17 deg² slivers of a point put on a straight edge).
                    moved_ground = [part for part in getattr(changed, "geoms", [changed]) if part.area > 1e-13]
                    assert all(shapely.Point(point).buffer(radius * 1.01).contains(part) for part in moved_ground), (
                        code, point)  # fmt: skip
                assert check_topology(conn, settings, "XWZ") == []
                moved += 1
                step.rollback()
        assert moved == 5
        outer.rollback()
    engine.dispose()


def current_cell(conn, point) -> str:
    return conn.execute(sa.text("SELECT code FROM grids WHERE valid_to IS NULL AND level = 'cell' AND "
                                "ST_DWithin(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326), 1e-7) LIMIT 1"),
                        {"x": point[0], "y": point[1]}).scalar_one()  # fmt: skip


def is_corner(conn, point) -> bool:
    return any(math.dist(point, c) < 1e-7 for c in vertices.corners(conn, current_cell(conn, point)))


def reach_of(conn, point) -> float:
    """How far the edges that end at *point* reach: to the next corner either way, in any grid through it."""
    codes = conn.execute(sa.text("SELECT code FROM grids WHERE valid_to IS NULL AND ST_DWithin(ST_Boundary(geom), "
                                 "ST_SetSRID(ST_MakePoint(:x, :y), 4326), 1e-7)"),
                         {"x": point[0], "y": point[1]}).scalars().all()  # fmt: skip
    far = 0.0
    for code in codes:
        ring = vertices.corners(conn, code)
        at = min(range(len(ring)), key=lambda i: math.dist(ring[i], point))
        far = max(far, math.dist(ring[at - 1], point), math.dist(ring[(at + 1) % len(ring)], point))
    return far
