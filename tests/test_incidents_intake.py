"""Incident intake: every GPS-tagged incident lands in exactly one cell, or is kept and flagged."""

from __future__ import annotations

import csv
import datetime as dt
import math

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa
from click.testing import CliRunner

from geogrid.cli import main
from geogrid.errors import InvalidInput
from geogrid.grids import edit
from geogrid.incidents.intake import NewIncident, reassign, register
from tests.conftest import ROOT, bearer

NYC = ROOT / "tests" / "data" / "nyc"


def report(conn, settings, lon, lat, **kw):
    values = {"category": "garbage", "source": "patrol", **kw}
    return register(conn, settings, NewIncident(lon=lon, lat=lat, **values), actor="tester")


def shared_vertex(conn, a: str, b: str):
    ga, gb = edit.lock_current(conn, a).geom, edit.lock_current(conn, b).geom
    common = set(shapely.get_coordinates(ga).round(12).tolist() and map(tuple, shapely.get_coordinates(ga))) & set(
        map(tuple, shapely.get_coordinates(gb))
    )
    return sorted(common)[0]


def test_point_inside_goes_to_its_cell_with_a_deadline(conn, settings, demo_grids):
    cell = edit.lock_current(conn, "XWZ002002").geom.representative_point()
    at = dt.datetime(2026, 11, 20, 9, 0)  # naive: Asia/Shanghai
    out = report(conn, settings, cell.x, cell.y, reported_at=at, category="work_safety")
    assert (out["grid_code"], out["assignment"], out["grid_version"]) == ("XWZ002002", "inside", 1)
    assert out["area_code"] == "XWZ" and out["flagged"] is False
    assert out["reported_at"] == "2026-11-20T01:00:00+00:00"
    assert out["deadline"] == "2026-11-20T13:00:00+00:00"  # work safety: 12 h
    events = conn.execute(sa.text("SELECT actor, to_status FROM incident_events WHERE incident_id = :i"),
                          {"i": out["id"]}).all()  # fmt: skip
    assert events == [("tester", "reported")]


def test_point_on_a_shared_boundary_goes_to_exactly_one_cell(conn, settings, demo_grids):
    x, y = shared_vertex(conn, "XWZ001001", "XWZ001002")
    first = report(conn, settings, x, y)
    second = report(conn, settings, x, y, description="again")
    assert first["grid_code"] == second["grid_code"] == "XWZ001001"  # the smaller code wins a tie
    # On the edge between the two villages too: the deepest level wins, then the code.
    x, y = shared_vertex(conn, "XWZ001001", "XWZ002001")
    assert report(conn, settings, x, y)["grid_code"] == "XWZ001001"


def test_point_just_outside_snaps_to_the_nearest_cell(conn, settings, demo_grids):
    # 30 m south of the township's south-west corner (115.25, 37.75).
    out = report(conn, settings, 115.25, 37.75 - 30 / 111_000)
    assert out["assignment"] == "snapped" and out["grid_code"] == "XWZ001001"
    assert out["snap_distance_m"] == pytest.approx(30, abs=1.5)


def test_point_far_out_is_kept_unassigned_and_flagged(conn, settings, demo_grids):
    out = report(conn, settings, 115.25, 37.75 - 2000 / 111_000)
    assert out["assignment"] == "unassigned" and out["grid_code"] is None and out["flagged"] is True
    assert conn.execute(sa.text("SELECT count(*) FROM incidents WHERE id = :i"), {"i": out["id"]}).scalar() == 1


def test_bulk_assignment_gives_the_single_intake_answer_for_every_case(conn, settings, demo_grids):
    """assign_table's fast leaf join and its fallbacks agree with the general rule, case by case."""
    from geogrid.incidents.assign import assign_point, assign_table, index_points

    hole = edit.lock_current(conn, "XWZ002002").geom.representative_point()
    # Expire one cell: its area is now a gap in village XWZ002's tiling.
    conn.execute(sa.text("UPDATE grids SET valid_to = now() WHERE code = 'XWZ002002' AND valid_to IS NULL"))
    inner = edit.lock_current(conn, "XWZ001002").geom.representative_point()
    cases = {
        "inside": (inner.x, inner.y),
        "tie between cells": shared_vertex(conn, "XWZ001001", "XWZ001002"),
        "tie across villages": shared_vertex(conn, "XWZ001001", "XWZ002001"),
        "gap in the tiling": (hole.x, hole.y),
        "just outside": (115.25, 37.75 - 30 / 111_000),
        "far out": (115.25, 37.75 - 2000 / 111_000),
    }
    conn.execute(sa.text("CREATE TEMP TABLE pts (n integer PRIMARY KEY, geom geometry(Point, 4326))"))
    for n, (x, y) in enumerate(cases.values()):
        conn.execute(sa.text("INSERT INTO pts VALUES (:n, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                     {"n": n, "x": x, "y": y})  # fmt: skip
    conn.execute(sa.text("INSERT INTO pts VALUES (99, NULL)"))  # no geometry: skipped, not assigned
    index_points(conn, "pts")
    assert assign_table(conn, settings, "pts", "pts_out") == len(cases)
    got = conn.execute(sa.text(
        "SELECT o.n, g.code, o.assignment, o.snap_distance_m FROM pts_out o LEFT JOIN grids g ON g.id = o.grid_id"
    )).all()  # fmt: skip
    assert len(got) == len(cases)
    bulk = {n: (code, kind, dist) for n, code, kind, dist in got}
    for n, (name, (x, y)) in enumerate(cases.items()):
        single = assign_point(conn, settings, x, y)
        code = conn.execute(sa.text("SELECT code FROM grids WHERE id = :i"), {"i": single["grid_id"]}).scalar()
        assert bulk[n] == (code, single["assignment"], single["snap_distance_m"]), name
    assert {name: bulk[n][:2] for n, name in enumerate(cases)} == {
        "inside": ("XWZ001002", "inside"),
        "tie between cells": ("XWZ001001", "inside"),
        "tie across villages": ("XWZ001001", "inside"),
        "gap in the tiling": ("XWZ002", "inside"),
        "just outside": ("XWZ001001", "snapped"),
        "far out": (None, "unassigned"),
    }


def test_swapped_and_out_of_range_coordinates_are_refused(conn, settings, demo_grids):
    with pytest.raises(InvalidInput, match="look swapped"):
        report(conn, settings, 37.76, 115.26)  # lat > 90: swapped lands in the township
    conn.execute(sa.text("INSERT INTO grids (code, name, level, geom) VALUES ('RU', 'test', 'township', "
                         "ST_Multi(ST_MakeEnvelope(30, 60, 31, 61, 4326)))"))  # fmt: skip
    with pytest.raises(InvalidInput, match="look swapped"):
        report(conn, settings, 60.5, 30.5)  # in range, but only the swap is in the territory
    with pytest.raises(InvalidInput, match="out of range"):
        report(conn, settings, 200.0, 10.0)
    for bad in (math.nan, math.inf):
        with pytest.raises(InvalidInput, match="finite number"):
            report(conn, settings, bad, 37.76)
    with pytest.raises(InvalidInput, match="unknown category 'ufo'"):
        report(conn, settings, 115.26, 37.76, category="ufo")
    assert conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar() == 0


def _worker_in(conn, make_user, grid: str) -> str:
    who, token = make_user("worker")
    conn.execute(sa.text("INSERT INTO assignments (person_id, grid_code, duty) VALUES (:p, :g, 'grid_helper')"),
                 {"p": who.person_id, "g": grid})  # fmt: skip
    return token


def test_api_intake(client, conn, make_user, demo_grids):
    token = _worker_in(conn, make_user, "XWZ001")
    body = {"lon": 115.26, "lat": 37.76, "category": "garbage", "source": "patrol", "external_id": "A-1",
            "description": "<script>alert(1)</script>"}  # fmt: skip
    first = client.post("/api/incidents", json=body, headers=bearer(token))
    assert first.status_code == 201, first.json
    assert first.json["grid_code"].startswith("XWZ") and first.json["assignment"] == "inside"
    again = client.post("/api/incidents", json=body, headers=bearer(token))
    assert again.status_code == 200 and again.json["duplicate"] and again.json["id"] == first.json["id"]
    swapped = client.post("/api/incidents", json={**body, "lon": 37.76, "lat": 115.26, "external_id": "A-2"},
                          headers=bearer(token))  # fmt: skip
    assert swapped.status_code == 422 and "swapped" in swapped.json["detail"]
    wrong = client.post("/api/incidents", json={**body, "lon": "115"}, headers=bearer(token))
    assert wrong.status_code == 422 and "'lon' must be a number" in wrong.json["detail"]
    _, operator = make_user("operator")
    detail = client.get(f"/api/incidents/{first.json['id']}", headers=bearer(operator))
    assert detail.status_code == 200 and detail.json["grid_code"] == first.json["grid_code"]


def test_a_date_range_includes_its_last_day(client, conn, settings, make_user, demo_grids):
    # Reported 2026-11-24 10:24 in the center's zone (Asia/Shanghai): a one-day search finds it.
    report(conn, settings, 115.26, 37.76, reported_at=dt.datetime(2026, 11, 24, 10, 24))
    _, operator = make_user("operator")

    def found(query: str) -> int:
        return client.get("/api/incidents?" + query, headers=bearer(operator)).json["numberMatched"]

    assert found("from=2026-11-24&to=2026-11-24") == 1  # 截止日期 is included
    assert found("from=2026-11-23&to=2026-11-23") == 0 and found("from=2026-11-25") == 0
    assert found("to=2026-11-24T10:24") == 0 and found("to=2026-11-24T10:25") == 1  # a moment is excluded
    assert found("to=2026-11-24T02:25:00Z") == 1 and found("to=2026-11-24T02:24:00Z") == 0


def test_a_worker_reports_only_inside_their_own_grids(client, conn, make_user, demo_grids):
    token = _worker_in(conn, make_user, "XWZ001001")
    inside = edit.lock_current(conn, "XWZ001001").geom.representative_point()
    elsewhere = edit.lock_current(conn, "XWZ002001").geom.representative_point()
    body = {"category": "garbage", "source": "patrol"}
    ok = client.post("/api/incidents", json={**body, "lon": inside.x, "lat": inside.y}, headers=bearer(token))
    assert ok.status_code == 201 and ok.json["grid_code"] == "XWZ001001"
    for x, y in [(elsewhere.x, elsewhere.y), (115.25, 37.75 - 2000 / 111_000)]:  # another cell; nobody's
        refused = client.post("/api/incidents", json={**body, "lon": x, "lat": y}, headers=bearer(token))
        assert refused.status_code == 403 and "outside the grids assigned to you" in refused.json["detail"]
    assert conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar() == 1  # nothing else stored


def _write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_bulk_import_rejects_bad_rows_keeps_good_ones_and_is_idempotent(scratch_url, tmp_path):
    from geogrid import demo

    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        demo.load(conn)

    def row(id_, lon, lat, category="garbage", description=""):
        return {"id": id_, "lon": lon, "lat": lat, "category": category, "source": "hotline",
                "description": description, "reported_at": "2026-11-20 08:00"}  # fmt: skip

    rows = [row(f"R{n}", 115.250 + n * 0.0003, 37.755 + n * 0.0002, description=f"row {n}") for n in range(50)]
    rows += [
        row("BAD1", "", ""),
        row("BAD2", 115.26, 37.76, category="ufo"),
        row("BAD3", 37.76, 115.26, description="=cmd|' /C calc'!A0"),
        row("FAR", 116.5, 39.9),
    ]
    path = tmp_path / "calls.csv"
    _write_csv(path, rows)
    env = {"GEOGRID_DATABASE_URL": scratch_url}
    result = CliRunner().invoke(main, ["incidents", "import", str(path), "--batch-size", "20"], env=env)
    assert result.exit_code == 0, result.output
    # Progress first, then what went to the reject file, then the summary.
    assert (
        result.output.index("importing")
        < result.output.index("rejected rows written")
        < result.output.index("54 rows:")
    )
    assert (
        "54 rows: 51 new (0 snapped to a nearby cell, 1 unassigned and flagged), 0 already there, 3 rejected"
        in result.output
    )
    with open(f"{path}.rejects.csv", newline="", encoding="utf-8") as f:
        rejects = {r["id"]: r for r in csv.DictReader(f)}
    assert set(rejects) == {"BAD1", "BAD2", "BAD3"}
    assert "not numbers" in rejects["BAD1"]["reason"] and "unknown category" in rejects["BAD2"]["reason"]
    assert "swapped" in rejects["BAD3"]["reason"]
    assert rejects["BAD3"]["description"].startswith("'=")  # a formula stays text in a spreadsheet
    again = CliRunner().invoke(main, ["incidents", "import", str(path)], env=env)
    assert "0 new" in again.output and "51 already there" in again.output
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar() == 51
        assert conn.execute(sa.text("SELECT count(*) FROM incident_events")).scalar() == 51
    engine.dispose()


def test_a_file_without_ids_imported_twice_adds_nothing_the_second_time(scratch_url, tmp_path):
    """A Chinese hotline export: no id column, Chinese headers, names and times; then one with ids, some empty."""
    import json

    from geogrid import demo

    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        demo.load(conn)
    env = {"GEOGRID_DATABASE_URL": scratch_url}
    no_ids = tmp_path / "热线.csv"
    _write_csv(no_ids, [
        {"经度": 115.2510, "纬度": 37.7560, "问题类型": "垃圾清理", "来源": "12345热线", "受理时间": "2026/11/20 08:00",
         "描述": "楼下垃圾没人清"},
        {"经度": 115.2520, "纬度": 37.7570, "问题类型": "违章停车", "来源": "电话", "受理时间": "2026年11月20日 09:30",
         "描述": "车堵门口"},
        {"经度": 115.2520, "纬度": 37.7570, "问题类型": "违章停车", "来源": "电话", "受理时间": "2026年11月20日 09:31",
         "描述": "车堵门口"},  # the same complaint a minute later: another row, another id
    ])  # fmt: skip
    first = CliRunner().invoke(main, ["incidents", "import", str(no_ids)], env=env)
    assert first.exit_code == 0, first.output
    assert "3 rows: 3 new" in first.output
    assert "ids: 0 given from no id column, 3 made from the row's content" in first.output
    again = CliRunner().invoke(main, ["incidents", "import", str(no_ids)], env=env)
    assert "3 rows: 0 new" in again.output and "3 already there" in again.output

    # Ids in a column the reader knows by name, one of them empty; and a column named on the command line.
    _write_csv(tmp_path / "ids.csv", [
        {"工单编号": "GD-1", "lon": 115.253, "lat": 37.758, "category": "water", "date": "2026-11-21 10:00"},
        {"工单编号": "", "lon": 115.254, "lat": 37.759, "category": "water", "date": "2026-11-21 11:00"},
    ])  # fmt: skip
    _write_csv(tmp_path / "own.csv", [{"案卷号": "A-7", "lon": 115.255, "lat": 37.76, "category": "gas"}])
    for _ in range(2):
        ids = CliRunner().invoke(main, ["incidents", "import", str(tmp_path / "ids.csv")], env=env)
        assert "ids: 1 given from column '工单编号', 1 made from the row's content" in ids.output, ids.output
        own = CliRunner().invoke(main, ["incidents", "import", str(tmp_path / "own.csv"), "--id-column", "案卷号"],
                                 env=env)  # fmt: skip
        assert "ids: 1 given from column '案卷号'" in own.output, own.output
    missing = CliRunner().invoke(main, ["incidents", "import", str(tmp_path / "own.csv"), "--id-column", "nope"],
                                 env=env)  # fmt: skip
    assert missing.exit_code == 2 and "no column 'nope' for --id-column" in missing.output

    # A GeoJSON without ids, twice.
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [115.256, 37.761]},
               "properties": {"类别": "供水", "时间": "2026-11-22 07:00"}}  # fmt: skip
    (tmp_path / "points.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    for expected in ("1 new", "1 already there"):
        out = CliRunner().invoke(main, ["incidents", "import", str(tmp_path / "points.geojson")], env=env)
        assert expected in out.output, out.output
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*), count(DISTINCT external_id) FROM incidents")).one()
        categories = conn.execute(sa.text("SELECT category, source FROM incidents ORDER BY id LIMIT 2")).all()
    assert tuple(stored) == (3 + 2 + 1 + 1, 7)
    assert categories == [("garbage", "hotline"), ("illegal_parking", "phone")]
    engine.dispose()


def test_real_nyc_311_assignment_matches_a_geopandas_join(conn, settings, tmp_path):
    from geogrid.grids.importer import import_grids
    from geogrid.grids.io import read_boundaries
    from geogrid.incidents.files import read_incidents
    from geogrid.incidents.intake import import_incidents

    boroughs = read_boundaries(NYC / "new-york-city-boroughs.geojson", max_vertices=10**6)
    boroughs["code"] = "NYC" + boroughs["cartodb_id"].astype(str)
    import_grids(conn, boroughs, level="township", settings=settings, code_field="code", name_field="name",
                 make_valid=True)  # fmt: skip
    rejected = []
    result = import_incidents(
        conn, settings, read_incidents(NYC / "311_subset.micro.csv", default_category="public_opinion"),
        actor="tester", reject=lambda line, raw, reason: rejected.append(reason),
    )  # fmt: skip
    assert result.read == 2000 and result.rejected == 598 == len(rejected)
    assert result.inserted == 1402
    rows = conn.execute(sa.text(
        "SELECT i.external_id, g.code, ST_X(i.location), ST_Y(i.location) "
        "FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id"
    )).all()  # fmt: skip
    ids, codes, xs, ys = zip(*rows, strict=True)
    points = gpd.GeoDataFrame({"id": ids, "postgis": codes}, geometry=gpd.points_from_xy(xs, ys), crs=4326)
    polygons = gpd.GeoDataFrame(
        {"code": boroughs["code"]}, geometry=shapely.make_valid(boroughs.geometry.values), crs=4326
    )
    joined = gpd.sjoin(points, polygons, predicate="within", how="left").drop_duplicates("id")
    inside = joined[joined["code"].notna()]
    # Every point strictly inside a borough gets that borough; the rest are edge or water points.
    assert (inside["code"] == inside["postgis"]).all()
    assert len(inside) > 1300


def test_a_split_moves_its_open_incidents_in_the_same_transaction_and_closed_ones_stay(conn, settings, demo_grids):
    from geogrid.incidents.workflow import return_visit, transition

    east, west = (115.2575, 37.772), (115.2555, 37.772)  # in XWZ001002, either side of the line below
    opened = [report(conn, settings, *east), report(conn, settings, *west)]
    closed = report(conn, settings, *east, description="handled")
    transition(conn, settings, closed["id"], "handled_on_spot", actor="tester")
    return_visit(conn, closed["id"], actor="tester", method="phone", satisfied=True)
    assert {o["grid_code"] for o in [*opened, closed]} == {"XWZ001002"}
    line = edit.parse_geometry("LINESTRING(115.257 37.76, 115.258 37.79)")

    preview = edit.split_grid(conn, settings, "XWZ001002", line, actor="planner", dry_run=True)
    assert preview.dry_run and preview.incidents_moved == 2
    assert edit.lock_current(conn, "XWZ001002").version == 1  # the dry run wrote nothing

    result = edit.split_grid(conn, settings, "XWZ001002", line, actor="planner")
    assert result.incidents_moved == 2
    versions = "SELECT i.id, g.code || ' v' || g.version FROM incidents i JOIN grids g ON g.id = i.grid_id"
    cells = dict(conn.execute(sa.text(versions)).all())
    assert cells[closed["id"]] == "XWZ001002 v1"  # handled there, stays there
    for incident, point in zip(opened, (east, west), strict=True):
        code = cells[incident["id"]].split()[0]
        assert code in result.created and shapely.Point(point).within(edit.lock_current(conn, code).geom)
        (actor, note, details), = conn.execute(sa.text(
            "SELECT actor, note, details FROM incident_events WHERE incident_id = :i AND details ? 'to_grid'"),
            {"i": incident["id"]}).all()  # fmt: skip
        assert actor == "planner" and "split of XWZ001002" in note
        assert details["from_grid"] == {"code": "XWZ001002", "version": 1} and details["to_grid"]["code"] == code
    assert reassign(conn, settings) == 0  # nothing left for the general pass


def test_a_merge_and_cells_generated_in_a_grid_take_its_open_incidents(conn, settings, demo_grids):
    from geogrid.grids.generate import generate_cells

    inside = edit.lock_current(conn, "XWZ002002").geom.representative_point()
    incident = report(conn, settings, inside.x, inside.y)
    merged = edit.merge_grids(conn, settings, ["XWZ002001", "XWZ002002"], actor="planner")
    (code,) = merged.created
    assert merged.incidents_moved == 1
    made = generate_cells(conn, settings, code, shape="square", area_m2_target=200_000, actor="planner")
    assert made.incidents_moved == 1
    now = conn.execute(sa.text(
        "SELECT g.code FROM incidents i JOIN grids g ON g.id = i.grid_id WHERE i.id = :i"), {"i": incident["id"]}
    ).scalar_one()  # fmt: skip
    assert now in made.created


def test_coordinates_next_to_zero_are_numbers_not_errors(conn, settings, demo_grids):
    """Found by the property tests: radians() of a latitude like 1e-310 was a float underflow error."""
    from geogrid.incidents.assign import assign_point, assign_table, index_points

    for lon, lat in [(115.25, 1e-310), (5e-324, 5e-324), (-1e-320, 0.0)]:
        assert assign_point(conn, settings, lon, lat)["assignment"] == "unassigned"
    conn.execute(sa.text("CREATE TEMP TABLE tiny (n integer PRIMARY KEY, geom geometry(Point, 4326))"))
    conn.execute(sa.text("INSERT INTO tiny VALUES (1, ST_SetSRID(ST_MakePoint(115.25, 1e-310), 4326))"))
    index_points(conn, "tiny")
    assert assign_table(conn, settings, "tiny", "tiny_out") == 1


def test_reassign_finds_a_newer_neighbour_that_wins_a_shared_edge(conn, settings, demo_grids):
    # Reassignment looks only where an answer can change; a point on an edge, in a cell
    # that did not change, changes hands when the neighbour is replaced by a grid whose
    # code wins the tie.
    x, y = shared_vertex(conn, "XWZ001001", "XWZ001002")
    inside = edit.lock_current(conn, "XWZ002002").geom.representative_point()
    on_edge, elsewhere = report(conn, settings, x, y), report(conn, settings, inside.x, inside.y)
    assert on_edge["grid_code"] == "XWZ001001"
    conn.execute(sa.text("UPDATE grids SET valid_from = valid_from - interval '1 hour'"))  # as if drawn earlier
    conn.execute(sa.text("UPDATE grids SET valid_to = now() WHERE code = 'XWZ001002'"))
    conn.execute(sa.text(
        "INSERT INTO grids (code, name, level, parent_code, geom) SELECT 'XWZ001000', name, level, parent_code, geom "
        "FROM grids WHERE code = 'XWZ001002'"
    ))  # fmt: skip
    assert reassign(conn, settings) == 1
    codes = dict(conn.execute(sa.text("SELECT i.id, g.code FROM incidents i JOIN grids g ON g.id = i.grid_id")).all())
    assert codes == {on_edge["id"]: "XWZ001000", elsewhere["id"]: "XWZ002002"}
    assert reassign(conn, settings, everything=True) == 0


def test_times_in_iso_and_in_311_exports_are_read(tmp_path):
    from geogrid.incidents.files import read_incidents

    path = tmp_path / "times.csv"
    path.write_text(
        "lon,lat,category,time\n"
        "115.25,37.76,garbage,2026-11-20 08:00\n"
        "115.25,37.76,garbage,2026-11-20T08:00:00+08:00\n"
        "115.25,37.76,garbage,11/20/2026 08:00:00 PM\n"
        "115.25,37.76,garbage,11/20/2026 08:00\n"
        "115.25,37.76,garbage,yesterday\n",
        encoding="utf-8",
    )
    parsed = [row for _, _, row in read_incidents(path)]
    assert [p.reported_at for p in parsed[:4]] == [
        dt.datetime(2026, 11, 20, 8, 0),
        dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        dt.datetime(2026, 11, 20, 20, 0),
        dt.datetime(2026, 11, 20, 8, 0),
    ]
    assert parsed[4] == "reported_at is not a date-time: 'yesterday'"


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.parametrize("scoped", [True, False], ids=["an edit's own incidents", "the general pass"])
def test_the_reassignment_plan_cannot_become_a_cross_product(conn, settings, demo_grids, scoped):
    """bench/assign_bench.py once took 0.89 s and once hit the 60 s timeout on one split, same data."""
    from geogrid.incidents.intake import candidates_sql

    # A township-sized grids table (its statistics known: with 7 rows, scanning it is the right plan) ...
    conn.execute(sa.text(
        "INSERT INTO grids (code, name, level, parent_code, geom, version, valid_from) "
        "SELECT 'XWZ001001' || lpad(n::text, 5, '0'), 'cell ' || n, 'cell', 'XWZ001001', "
        "ST_Multi(ST_MakeEnvelope(100 + (n % 100) * 0.001, 30 + (n / 100) * 0.001, "
        "100.0009 + (n % 100) * 0.001, 30.0009 + (n / 100) * 0.001, 4326)), 1, now() - interval '1 day' "
        "FROM generate_series(1, 20000) n"))  # fmt: skip
    conn.execute(sa.text("ANALYZE grids"))
    conn.execute(sa.text("ANALYZE incidents"))  # ... and statistics of an empty table, then 20,000 rows arrive
    conn.execute(sa.text(
        "INSERT INTO incidents (location, category, source, reported_at, grid_id, assignment) "
        "SELECT ST_SetSRID(ST_MakePoint(115.25 + random() * 0.03, 37.75 + random() * 0.025), 4326), "
        "'garbage', 'app', now(), (SELECT id FROM grids WHERE code = 'XWZ001001'), 'inside' "
        "FROM generate_series(1, 20000)"))  # fmt: skip
    ids = dict(conn.execute(sa.text("SELECT code, id FROM grids")).all())
    (plan,) = conn.execute(
        sa.text("EXPLAIN (FORMAT JSON) " + candidates_sql(True, False, scoped)),
        {"ids": [ids["XWZ001001"]], "near": [ids["XWZ002001"]], "margin": 0.0005},
    ).scalar_one()
    loops = [n for n in _nodes(plan["Plan"]) if n["Node Type"] == "Nested Loop"]

    def scans(node) -> set:
        return {(n["Node Type"], n.get("Relation Name")) for n in _nodes(node) if "Scan" in n["Node Type"]}

    # The near branch is driven from the grids named, one spatial index lookup each ...
    assert any({r for _, r in scans(loop["Plans"][0])} == {"grids"} for loop in loops)
    # ... and no loop scans a whole table once per row of its other side.
    for loop in loops:
        inner = scans(loop["Plans"][1])
        assert not {("Seq Scan", "incidents"), ("Seq Scan", "grids")} & inner, inner
    if scoped:  # an edit's incidents are an index lookup, never a pass over them all
        assert ("Seq Scan", "incidents") not in scans(plan["Plan"])


def test_the_swapped_coordinates_rule_is_one_rule_in_single_and_bulk_intake_and_the_search(
    conn, settings, client, make_user
):
    """Both readings are valid lon/lat here (a territory at 60E 40N), so only the territory can tell."""
    from geogrid.incidents.intake import import_incidents

    conn.execute(sa.text("INSERT INTO grids (code, name, level, geom) VALUES ('T', 'T', 'township', "
                         "ST_Multi(ST_MakeEnvelope(60, 40, 60.01, 40.01, 4326)))"))  # fmt: skip
    metre = 1 / 111_320
    cases = {
        "swapped": (40.005, 60.005),  # read the other way round it is inside T
        "swapped, just outside": (40.005, 60.01 + 20 * metre / 0.766),  # the other way round: 20 m east of T
        "nowhere": (41.5, 61.5),
    }
    single = {}
    for name, (lon, lat) in cases.items():
        try:
            single[name] = report(conn, settings, lon, lat)["assignment"]
        except InvalidInput as err:
            single[name] = "refused: " + str(err)[:22]
    rejected = {}
    rows = [(n, {}, NewIncident(lon=lon, lat=lat, category="garbage", source="app", external_id=f"B{n}"))
            for n, (lon, lat) in enumerate(cases.values())]  # fmt: skip
    result = import_incidents(conn, settings, rows, actor="t", reject=lambda n, raw, why: rejected.setdefault(n, why))
    bulk = {name: ("refused: " + rejected[n][:22] if n in rejected else "stored") for n, name in enumerate(cases)}
    assert single == {"swapped": "refused: lon/lat look swapped: ", "swapped, just outside": "unassigned",
                      "nowhere": "unassigned"}  # fmt: skip
    assert bulk == {"swapped": "refused: lon/lat look swapped: ", "swapped, just outside": "stored",
                    "nowhere": "stored"}  # fmt: skip
    assert result.inserted == 2
    token = make_user("operator")[1]
    found = client.get("/api/grids?point=40.005,60.005", headers=bearer(token)).json
    assert found["swapped"] is True and [f["id"] for f in found["features"]] == ["T"]
    assert client.get("/api/grids?point=40.005,60.0103", headers=bearer(token)).json["features"] == []
