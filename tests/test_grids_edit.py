"""Topology checks, split, merge, reshape, generate and codes: the hierarchy keeps tiling."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import shapely
import sqlalchemy as sa

from geogrid.errors import InvalidInput
from geogrid.grids import edit
from geogrid.grids.generate import generate_cells
from geogrid.grids.importer import import_grids
from geogrid.grids.io import read_boundaries
from geogrid.grids.metric import area_m2, from_metric, metric_srid, to_metric
from geogrid.grids.topology import check_topology
from tests.conftest import bearer
from tests.test_grids_import import TOWNS, VILLAGES


def current(conn, code):
    return edit.lock_current(conn, code)


def square_m(center, side_m: float, srid: int):
    """A square of *side_m* metres around an EPSG:4326 point, back in EPSG:4326."""
    c = to_metric(center, srid, densify=False)
    sq = shapely.box(c.x - side_m / 2, c.y - side_m / 2, c.x + side_m / 2, c.y + side_m / 2)
    return from_metric(shapely.segmentize(sq, 2.0), srid)


def set_geom(conn, code, geom):
    conn.execute(
        sa.text("UPDATE grids SET geom = ST_Multi(ST_GeomFromWKB(:wkb, 4326)) WHERE code = :c AND valid_to IS NULL"),
        {"wkb": shapely.to_wkb(geom), "c": code},
    )


def tiles(conn, settings, code=None) -> bool:
    return check_topology(conn, settings, code) == []


# -- topology ----------------------------------------------------------------------


def test_planted_gap_and_overlap_in_real_data_are_found_with_their_area(conn, settings):
    frame = read_boundaries(TOWNS, max_vertices=10**6)
    import_grids(conn, frame, level="township", settings=settings, code_field="TOWNCODE")
    villages = read_boundaries(VILLAGES, max_vertices=10**6)
    import_grids(conn, villages, level="village", settings=settings, code_field="VILLCODE",
                 parent_field="TOWNCODE", make_valid=True)  # fmt: skip
    before = {(p.kind, p.parent_code, p.codes, round(p.area_m2)) for p in check_topology(conn, settings)}
    # A 100 m x 100 m hole in one village (a gap), a 50 m x 50 m piece of a neighbour
    # added to another (an overlap).
    a, b = "63000050001", "63000050002"
    ga, gb = current(conn, a).geom, current(conn, b).geom
    srid = metric_srid(ga, settings)
    hole = square_m(ga.representative_point(), 100, srid)
    assert ga.contains(hole)
    set_geom(conn, a, ga.difference(hole))
    patch = square_m(gb.representative_point(), 50, srid)
    assert gb.contains(patch)
    set_geom(conn, b.replace("002", "003"), current(conn, "63000050003").geom.union(patch))
    problems = [
        p for p in check_topology(conn, settings) if (p.kind, p.parent_code, p.codes, round(p.area_m2)) not in before
    ]
    gap = [p for p in problems if p.kind == "gap" and p.parent_code == "63000050"]
    overlap = [p for p in problems if p.kind == "overlap"]
    assert len(gap) == 1 and gap[0].area_m2 == pytest.approx(10_000, rel=0.01)
    assert len(overlap) == 1 and overlap[0].codes == ("63000050002", "63000050003")
    assert overlap[0].area_m2 == pytest.approx(2_500, rel=0.01)
    assert gap[0].geometry["type"] == "Polygon"


def test_demo_hierarchy_tiles(conn, settings, demo_grids):
    assert tiles(conn, settings)


def test_topology_api(client, make_user, conn, settings, demo_grids):
    token = make_user("planner")[1]
    ok = client.get("/api/grids/XWZ/topology", headers=bearer(token))
    assert ok.status_code == 200 and ok.json["valid"] is True and ok.json["features"] == []
    g = current(conn, "XWZ001001").geom
    set_geom(conn, "XWZ001001", g.difference(square_m(g.representative_point(), 200, metric_srid(g, settings))))
    bad = client.get("/api/grids/XWZ/topology", headers=bearer(token)).json
    assert bad["valid"] is False and bad["features"][0]["properties"]["kind"] == "gap"
    assert bad["features"][0]["properties"]["area_m2"] == pytest.approx(40_000, rel=0.01)
    assert client.get("/api/grids/XWZ/topology?tolerance_m=-1", headers=bearer(token)).status_code == 422


# -- split ---------------------------------------------------------------------------

ACROSS_GRID_1 = "LINESTRING(115.24 37.756, 115.27 37.7555)"  # cuts XWZ001001 west to east


def test_split_makes_pieces_with_new_codes_and_keeps_area(conn, settings, demo_grids):
    original = current(conn, "XWZ001002")
    line = edit.parse_geometry("LINESTRING(115.257 37.76, 115.258 37.79)")
    result = edit.split_grid(conn, settings, "XWZ001002", line)
    assert list(result.created) == ["XWZ001003", "XWZ001004"]
    assert result.retired == ["XWZ001002"]
    srid = metric_srid(original.geom, settings)
    assert sum(result.created.values()) == pytest.approx(area_m2(original.geom, srid), rel=1e-4)
    assert tiles(conn, settings)


def test_split_line_must_cross_from_edge_to_edge(conn, settings, demo_grids):
    inside = edit.parse_geometry("LINESTRING(115.255 37.755, 115.256 37.757)")
    with pytest.raises(InvalidInput, match="does not cross grid XWZ001002 from edge to edge"):
        edit.split_grid(conn, settings, "XWZ001002", inside)
    with pytest.raises(InvalidInput, match="needs a LineString"):
        edit.split_grid(conn, settings, "XWZ001002", edit.parse_geometry("POINT(115.25 37.75)"))


def test_split_refuses_to_cut_children_unless_cascade(conn, settings, demo_grids):
    generate_cells(conn, settings, "XWZ001001", shape="square", area_m2_target=200_000)
    line = edit.parse_geometry(ACROSS_GRID_1)
    with conn.begin_nested() as savepoint:
        with pytest.raises(InvalidInput, match="cuts the child grids XWZ001001") as refused:
            edit.split_grid(conn, settings, "XWZ001001", line)
        savepoint.rollback()
    assert refused.value.extra["cut_children"]
    result = edit.split_grid(conn, settings, "XWZ001001", line, cascade=True)
    assert len(result.retired) == 1 + len(refused.value.extra["cut_children"])
    assert tiles(conn, settings)
    # Every current cell now sits under one of the two new pieces.
    parents = (
        conn.execute(sa.text("SELECT DISTINCT parent_code FROM grids WHERE level = 'cell' AND valid_to IS NULL"))
        .scalars()
        .all()
    )
    assert sorted(parents) == ["XWZ001003", "XWZ001004"]


def test_split_through_the_api_and_at_shows_the_old_boundary(scratch_url, settings):
    from geogrid import demo
    from geogrid.api import create_app

    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        demo.load(conn)
    with engine.begin() as conn:
        before = conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
    app = create_app(settings, bind=engine)
    client = app.test_client()
    with engine.begin() as conn:
        from geogrid import accounts

        _, token = accounts.create_user(conn, "planner1", "planner")
    line = {"type": "LineString", "coordinates": [[115.257, 37.76], [115.258, 37.79]]}
    response = client.post("/api/grids/XWZ001002/split", headers=bearer(token), json={"line": line})
    assert response.status_code == 200, response.json
    now = client.get("/api/grids?parent=XWZ001", headers=bearer(token)).json
    assert sorted(f["id"] for f in now["features"]) == ["XWZ001001", "XWZ001003", "XWZ001004"]
    then = client.get(
        "/api/grids", query_string={"parent": "XWZ001", "at": before.isoformat()}, headers=bearer(token)
    ).json
    assert sorted(f["id"] for f in then["features"]) == ["XWZ001001", "XWZ001002"]
    old = client.get("/api/grids/XWZ001002", query_string={"at": before.isoformat()}, headers=bearer(token))
    assert old.status_code == 200 and old.json["properties"]["valid_to"] is not None
    assert client.get("/api/grids/XWZ001002", headers=bearer(token)).status_code == 404
    engine.dispose()


# -- merge ---------------------------------------------------------------------------


def test_merge_adjacent_siblings(conn, settings, demo_grids):
    for code in ("XWZ001001", "XWZ001002"):
        generate_cells(conn, settings, code, shape="square", area_m2_target=200_000)
    result = edit.merge_grids(conn, settings, ["XWZ001001", "XWZ001002"], name="合并网格")
    (new_code,) = result.created
    assert new_code == "XWZ001003" and sorted(result.retired) == ["XWZ001001", "XWZ001002"]
    assert set(result.reparented.values()) == {new_code}
    assert tiles(conn, settings)


def test_merge_refuses_non_adjacent_and_non_siblings(conn, settings, demo_grids):
    generate_cells(conn, settings, "XWZ001001", shape="square", area_m2_target=200_000)
    cells = conn.execute(
        sa.text("SELECT code, ST_AsBinary(geom) FROM grids WHERE parent_code = 'XWZ001001' AND valid_to IS NULL")
    ).all()
    geoms = {code: shapely.from_wkb(wkb) for code, wkb in cells}
    a = next(iter(geoms))
    far = next(c for c, g in geoms.items() if g.distance(geoms[a]) > 0)
    with pytest.raises(InvalidInput, match="not all adjacent"):
        edit.merge_grids(conn, settings, [a, far])
    with pytest.raises(InvalidInput, match="only siblings"):
        edit.merge_grids(conn, settings, ["XWZ001001", "XWZ002001"])
    with pytest.raises(InvalidInput, match="at least two"):
        edit.merge_grids(conn, settings, ["XWZ001001", "XWZ001001"])


# -- reshape -------------------------------------------------------------------------


def _move_shared_edge(conn, settings):
    """New shapes for XWZ001001/XWZ001002 with a 20 m strip moved from one to the other."""
    a, b = current(conn, "XWZ001001"), current(conn, "XWZ001002")
    srid = metric_srid(a.geom, settings)
    strip = from_metric(to_metric(b.geom, srid).intersection(to_metric(a.geom, srid).buffer(20)), srid)
    strip = strip.intersection(b.geom)
    return a, b, shapely.union_all([a.geom, strip]), b.geom.difference(strip)


def test_reshape_stale_version_is_409(client, make_user, conn, demo_grids):
    token = make_user("planner")[1]
    g = current(conn, "XWZ002002")
    body = {"geometry": shapely.geometry.mapping(g.geom), "version": g.version + 5}
    response = client.put("/api/grids/XWZ002002", json=body, headers=bearer(token))
    assert response.status_code == 409
    assert "changed by someone else" in response.json["detail"] and response.json["current_version"] == 1


def test_reshape_that_breaks_tiling_is_422_naming_the_area(client, make_user, conn, settings, demo_grids):
    token = make_user("planner")[1]
    a, b, grown, _ = _move_shared_edge(conn, settings)
    body = {"geometry": shapely.geometry.mapping(grown), "version": a.version}
    response = client.put("/api/grids/XWZ001001", json=body, headers=bearer(token))
    assert response.status_code == 422, response.json
    assert "overlap between XWZ001001 and XWZ001002" in response.json["detail"]
    assert response.json["problems"]["features"][0]["properties"]["kind"] == "overlap"
    assert current(conn, "XWZ001001").version == 1  # nothing written


def test_reshape_neighbours_together_keeps_tiling(client, make_user, conn, settings, demo_grids):
    token = make_user("planner")[1]
    a, b, grown, shrunk = _move_shared_edge(conn, settings)
    body = {
        "geometry": shapely.geometry.mapping(grown), "version": a.version,
        "also": [{"code": "XWZ001002", "geometry": shapely.geometry.mapping(shrunk), "version": b.version}],
    }  # fmt: skip
    response = client.put("/api/grids/XWZ001001", json=body, headers=bearer(token))
    assert response.status_code == 200, response.json
    assert response.json["versions"] == {"XWZ001001": 2, "XWZ001002": 2}
    assert tiles(conn, settings)


def test_reshape_with_self_intersection_is_refused(client, make_user, conn, demo_grids):
    token = make_user("planner")[1]
    bowtie = {"type": "Polygon", "coordinates": [[[115.25, 37.75], [115.26, 37.76], [115.26, 37.75],
                                                  [115.25, 37.76], [115.25, 37.75]]]}  # fmt: skip
    response = client.put("/api/grids/XWZ001001", json={"geometry": bowtie, "version": 1}, headers=bearer(token))
    assert response.status_code == 422 and "Self-intersection" in response.json["detail"]
    assert current(conn, "XWZ001001").version == 1


def test_workers_and_supervisors_cannot_edit(client, make_user, demo_grids):
    for role in ("worker", "supervisor", "operator"):
        token = make_user(role)[1]
        response = client.post("/api/grids/merge", json={"codes": ["XWZ001001", "XWZ001002"]}, headers=bearer(token))
        assert response.status_code == 403


# -- generate and codes ----------------------------------------------------------------


@pytest.mark.parametrize("shape", ["square", "hex"])
def test_generated_cells_tile_their_grid(conn, settings, demo_grids, shape):
    parent = current(conn, "XWZ002001")
    srid = metric_srid(parent.geom, settings)
    result = generate_cells(conn, settings, "XWZ002001", shape=shape, area_m2_target=100_000)
    total = area_m2(parent.geom, srid)
    assert sum(result.created.values()) == pytest.approx(total, rel=1e-6)
    assert len(result.created) == pytest.approx(total / 100_000, rel=0.35)
    assert min(result.created.values()) >= 0.3 * 100_000  # slivers were merged
    assert list(result.created)[:2] == ["XWZ002001001", "XWZ002001002"]
    assert tiles(conn, settings)
    with pytest.raises(InvalidInput, match="already has"):
        generate_cells(conn, settings, "XWZ002001", shape=shape, area_m2_target=100_000)


def test_balanced_cells_share_the_weight(conn, settings, demo_grids):
    parent = current(conn, "XWZ001001")
    rng = random.Random(7)
    minx, miny, maxx, maxy = parent.geom.bounds
    # Households crowd in the south-west corner.
    points = [(minx + (maxx - minx) * rng.random() ** 2, miny + (maxy - miny) * rng.random() ** 2, 1.0)
              for _ in range(3000)]  # fmt: skip
    inside = [p for p in points if parent.geom.contains(shapely.Point(p[:2]))]
    result = generate_cells(conn, settings, "XWZ001001", balanced=5, weights=points)
    assert len(result.created) == 5 and tiles(conn, settings)
    cells = {c: edit.lock_current(conn, c).geom for c in result.created}
    counts = [sum(g.covers(shapely.Point(p[:2])) for p in inside) for g in cells.values()]
    assert sum(counts) == len(inside)
    assert max(counts) - min(counts) <= 2


def test_generate_refuses_bad_requests(conn, settings, demo_grids):
    with pytest.raises(InvalidInput, match="target cell area"):
        generate_cells(conn, settings, "XWZ001001", shape="square")
    with pytest.raises(InvalidInput, match="limit"):
        generate_cells(conn, settings, "XWZ001001", shape="square", area_m2_target=1)
    generate_cells(conn, settings, "XWZ001001", shape="square", area_m2_target=500_000)
    cell = conn.execute(sa.text("SELECT code FROM grids WHERE level = 'cell' LIMIT 1")).scalar_one()
    with pytest.raises(InvalidInput, match="lowest level"):
        generate_cells(conn, settings, cell, shape="square", area_m2_target=1000)


def test_codes_are_never_reused(conn, settings, demo_grids):
    line = edit.parse_geometry("LINESTRING(115.257 37.76, 115.258 37.79)")
    split = edit.split_grid(conn, settings, "XWZ001002", line)
    merged = edit.merge_grids(conn, settings, list(split.created))
    assert list(merged.created) == ["XWZ001005"]  # 002 retired, 003/004 retired, never reused


# -- read API ------------------------------------------------------------------------


def test_grid_detail_has_chain_children_people_and_area(client, make_user, conn, demo_grids):
    token = make_user("supervisor")[1]
    person = conn.execute(sa.text("INSERT INTO people (name) VALUES ('王伟') RETURNING id")).scalar_one()
    conn.execute(sa.text("INSERT INTO assignments (person_id, grid_code, duty) VALUES (:p, 'XWZ001', 'grid_manager')"),
                 {"p": person})  # fmt: skip
    body = client.get("/api/grids/XWZ001", headers=bearer(token)).json["properties"]
    assert [p["code"] for p in body["parents"]] == ["XWZ"]
    assert body["children_count"] == 2
    assert body["people"] == [{"id": person, "name": "王伟", "phone": None, "duty": "grid_manager", "department": None}]
    assert body["area_m2"] > 1_000_000
    cell = client.get("/api/grids/XWZ001001", headers=bearer(token)).json["properties"]
    assert [p["code"] for p in cell["parents"]] == ["XWZ001", "XWZ"]


def test_bbox_and_parent_filters(client, make_user, demo_grids):
    token = make_user("operator")[1]
    kids = client.get("/api/grids?parent=XWZ", headers=bearer(token)).json["features"]
    assert sorted(f["id"] for f in kids) == ["XWZ001", "XWZ002"]
    far = client.get("/api/grids?bbox=0,0,1,1", headers=bearer(token)).json["features"]
    assert far == []
    near = client.get("/api/grids?bbox=115.24,37.74,115.26,37.76&level=grid", headers=bearer(token)).json
    assert {f["id"] for f in near["features"]} >= {"XWZ001001"}
    for bad in ("1,2,3", "a,b,c,d", "10,10,0,0", "0,0,200,1"):
        response = client.get(f"/api/grids?bbox={bad}", headers=bearer(token))
        assert response.status_code == 422, bad
    assert client.get("/api/grids?at=yesterday", headers=bearer(token)).status_code == 422


def test_position_search_lists_exactly_the_grids_containing_the_point(client, make_user, conn, demo_grids):
    import numpy as np

    token = make_user("operator")[1]
    shapes = {g["code"]: (g["level"], shapely.from_wkt(g["wkt"])) for g in demo_grids}
    order = ["township", "village", "grid", "cell"]
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = shapes["XWZ"][1].bounds
    boxed_more = 0
    for x, y in zip(rng.uniform(minx, maxx, 40), rng.uniform(miny, maxy, 40), strict=True):
        point = shapely.Point(x, y)
        expected = sorted((c for c, (_, g) in shapes.items() if g.covers(point)),
                          key=lambda c: (order.index(shapes[c][0]), c))  # fmt: skip
        body = client.get(f"/api/grids?point={x},{y}", headers=bearer(token)).json
        assert [f["id"] for f in body["features"]] == expected and body["swapped"] is False
        boxed_more += sum(1 for _, g in shapes.values() if g.envelope.covers(point)) > len(expected)
        # Typed the wrong way round: recognised, said, and the same answer.
        turned = client.get(f"/api/grids?point={y},{x}", headers=bearer(token)).json
        assert turned["swapped"] is True and turned["point"] == [x, y]
        assert [f["id"] for f in turned["features"]] == expected
    assert boxed_more > 5  # bounding boxes would have listed grids that do not hold the point
    for bad in ("115.26", "abc,def", "115.26,37.76,1", "1e400,1"):
        assert client.get(f"/api/grids?point={bad}", headers=bearer(token)).status_code == 422, bad


def test_at_a_date_before_anything_is_empty(client, make_user, demo_grids):
    token = make_user("operator")[1]
    old = (dt.date.today() - dt.timedelta(days=400)).isoformat()
    assert client.get(f"/api/grids?at={old}", headers=bearer(token)).json["features"] == []


def test_balanced_cells_are_contiguous_in_a_concave_grid(conn, settings):
    # A U-shaped grid 2 km wide and 4 km tall: a cut across its longer side goes through both arms.
    u = shapely.Polygon([(115.0, 37.0), (115.024, 37.0), (115.024, 37.036), (115.016, 37.036),
                         (115.016, 37.006), (115.008, 37.006), (115.008, 37.036), (115.0, 37.036)])  # fmt: skip
    conn.execute(
        sa.text(
            "INSERT INTO grids (code, name, level, geom) "
            "VALUES ('U1', 'U', 'grid', ST_Multi(ST_GeomFromText(:w, 4326)))"
        ),
        {"w": u.wkt},
    )
    result = generate_cells(conn, settings, "U1", balanced=4)
    cells = [edit.lock_current(conn, c).geom for c in result.created]
    assert all(len(getattr(c, "geoms", [c])) == 1 for c in cells)
    srid = metric_srid(u, settings)
    assert max(result.created.values()) / min(result.created.values()) < 1.05  # equal areas
    assert sum(result.created.values()) == pytest.approx(area_m2(u, srid), rel=1e-6)
    assert tiles(conn, settings, "U1")


def test_voronoi_cells_follow_the_settlements_and_tile_the_grid(conn, settings, demo_grids):
    parent = current(conn, "XWZ001001")
    rng = random.Random(3)
    minx, miny, maxx, maxy = parent.geom.bounds
    # Three hamlets: households cluster around three points.
    hamlets = [
        (minx + (maxx - minx) * fx, miny + (maxy - miny) * fy) for fx, fy in ((0.25, 0.3), (0.7, 0.35), (0.5, 0.75))
    ]
    points = [(hx + rng.gauss(0, (maxx - minx) / 25), hy + rng.gauss(0, (maxy - miny) / 25), 1.0)
              for hx, hy in hamlets for _ in range(400)]  # fmt: skip
    result = generate_cells(conn, settings, "XWZ001001", shape="voronoi", balanced=3, weights=points)
    assert len(result.created) == 3 and tiles(conn, settings, "XWZ001001")
    cells = [edit.lock_current(conn, c).geom for c in result.created]
    assert all(len(getattr(c, "geoms", [c])) == 1 for c in cells)  # each cell in one piece
    # Each hamlet lies in its own cell.
    holders = {next(i for i, c in enumerate(cells) if c.covers(shapely.Point(h))) for h in hamlets}
    assert holders == {0, 1, 2}
    with pytest.raises(InvalidInput, match="voronoi needs --balanced"):
        generate_cells(conn, settings, "XWZ001002", shape="voronoi")


def test_voronoi_without_weights_is_deterministic(conn, settings, demo_grids):
    first = generate_cells(conn, settings, "XWZ002002", shape="voronoi", balanced=4)
    shapes = [edit.lock_current(conn, c).geom.wkb for c in first.created]
    conn.execute(sa.text("UPDATE grids SET valid_to = now() WHERE parent_code = 'XWZ002002'"))
    conn.execute(sa.text("DELETE FROM grids WHERE parent_code = 'XWZ002002'"))
    again = generate_cells(conn, settings, "XWZ002002", shape="voronoi", balanced=4)
    assert [edit.lock_current(conn, c).geom.wkb for c in again.created] == shapes
    assert tiles(conn, settings, "XWZ002002")


def test_a_level_in_an_error_is_named_not_coded(conn, settings, demo_grids, make_user):
    """Pages never show a code: a refusal naming a level says its name (here in Chinese)."""
    import dataclasses

    from geogrid.api import create_app

    generate_cells(conn, settings, "XWZ001001", shape="square", area_m2_target=400_000)
    cell = conn.execute(sa.text("SELECT code FROM grids WHERE parent_code = 'XWZ001001' AND valid_to IS NULL "
                                "ORDER BY code LIMIT 1")).scalar_one()  # fmt: skip
    chinese = create_app(dataclasses.replace(settings, language="zh_CN"), bind=conn).test_client()
    token = bearer(make_user("planner")[1])
    refused = chinese.post(f"/api/grids/{cell}/generate", json={"shape": "square", "area_m2": 1000}, headers=token)
    assert refused.status_code == 422
    assert "cell" not in refused.json["detail"] and "单元网格" in refused.json["detail"]
