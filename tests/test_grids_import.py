"""Importing real boundary files: CRS handling, invalid geometry, parents, versions, export."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa
from click.testing import CliRunner

from geogrid.cli import main
from geogrid.errors import InvalidInput
from geogrid.grids.codes import reading_order
from geogrid.grids.importer import import_grids
from geogrid.grids.io import read_boundaries
from tests.conftest import ROOT

TAIPEI = ROOT / "data" / "boundaries" / "taipei"
TOWNS, VILLAGES = TAIPEI / "taipei_towns.geojson", TAIPEI / "taipei_villages.geojson"


def cli(url: str, *args: str):
    return CliRunner().invoke(main, list(args), env={"GEOGRID_DATABASE_URL": url})


def count(conn, sql: str, **params) -> int:
    return conn.execute(sa.text(sql), params).scalar_one()


def read(path, **kw):
    return read_boundaries(path, max_vertices=200_000, **kw)


@pytest.fixture
def towns(conn, settings):
    import_grids(conn, read(TOWNS), level="township", settings=settings, code_field="TOWNCODE", name_field="TOWNNAME")


def test_real_taipei_set_imports_and_validates_from_the_cli(scratch_url):
    towns = cli(scratch_url, "grids", "import", str(TOWNS), "--level", "township",
                "--code-field", "TOWNCODE", "--name-field", "TOWNNAME")  # fmt: skip
    assert towns.exit_code == 0, towns.output
    assert "12 created" in towns.output
    args = ["grids", "import", str(VILLAGES), "--level", "village", "--code-field", "VILLCODE",
            "--name-field", "VILLNAME"]  # fmt: skip
    refused = cli(scratch_url, *args)
    assert refused.exit_code == 2  # what was given is wrong
    assert "feature 2 (63000080037): Self-intersection at 121.56" in refused.output
    assert "nothing imported" in refused.output
    engine = sa.create_engine(scratch_url)
    with engine.connect() as conn:
        assert count(conn, "SELECT count(*) FROM grids WHERE level = 'village'") == 0
    repaired = cli(scratch_url, *args, "--make-valid")
    assert repaired.exit_code == 0, repaired.output
    assert "456 created" in repaired.output and "repaired with ST_MakeValid" in repaired.output
    again = cli(scratch_url, *args, "--make-valid")
    assert "0 created, 0 changed (new version), 456 unchanged" in again.output
    with engine.connect() as conn:
        # Parents found by containment agree with the official town codes.
        assert (
            count(
                conn,
                """SELECT count(*) FROM grids v JOIN grids t ON t.code = v.parent_code
                              WHERE v.level = 'village' AND v.attributes->>'TOWNCODE' = t.code""",
            )
            == 456
        )
    engine.dispose()
    # The published (simplified) set has a few slivers of its own: tens of m², 2-3 m wide ...
    strict = cli(scratch_url, "grids", "validate")
    assert strict.exit_code == 1 and "outside its parent" in strict.output and " m wide" in strict.output
    # ... and tiles within 5 m everywhere.
    loose = cli(scratch_url, "grids", "validate", "--tolerance", "5")
    assert loose.exit_code == 0, loose.output
    assert "the hierarchy tiles" in loose.output


def test_parent_field_and_unknown_parent(conn, settings, towns):
    frame = read(VILLAGES)
    frame = frame[frame.VILLCODE != "63000080037"]
    report = import_grids(conn, frame, level="village", settings=settings, code_field="VILLCODE",
                          parent_field="TOWNCODE")  # fmt: skip
    assert len(report.created) == 455
    frame = frame.head(1).assign(TOWNCODE="99999999", VILLCODE="99999999001")
    with pytest.raises(InvalidInput, match="parent grids not found among current township grids: 99999999"):
        import_grids(conn, frame, level="village", settings=settings, code_field="VILLCODE", parent_field="TOWNCODE")


def test_projected_files_are_reprojected(conn, settings, tmp_path):
    # TWD97 / TM2 (EPSG:3826), as a GeoPackage and as a zipped Shapefile.
    frame = gpd.read_file(TOWNS).to_crs(3826)
    frame.to_file(tmp_path / "towns.gpkg", driver="GPKG")
    frame.to_file(tmp_path / "towns.shp")
    import zipfile

    with zipfile.ZipFile(tmp_path / "towns.zip", "w") as z:
        for part in tmp_path.glob("towns.*"):
            if part.suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                z.write(part, part.name)
    for name in ("towns.gpkg", "towns.zip"):
        back = read(tmp_path / name)
        assert back.crs.to_epsg() == 4326
        original = gpd.read_file(TOWNS).set_index("TOWNCODE").geometry
        for code, geom in zip(back.TOWNCODE, back.geometry, strict=True):
            # Edges straight in TM2 follow their course in lon/lat (densified before reprojecting),
            # where the lon/lat original had them straight in lon/lat: centimetres apart.
            assert geom.hausdorff_distance(original[code]) < 2e-6  # degrees: about 20 cm
    report = import_grids(conn, read(tmp_path / "towns.gpkg"), level="township", settings=settings,
                          code_field="TOWNCODE")  # fmt: skip
    assert len(report.created) == 12


def test_a_file_without_crs_needs_one(tmp_path):
    frame = gpd.read_file(TOWNS).to_crs(3826)
    frame.to_file(tmp_path / "towns.shp")
    (tmp_path / "towns.prj").unlink()
    with pytest.raises(InvalidInput, match="declares no CRS; say which with --crs"):
        read(tmp_path / "towns.shp")
    assert read(tmp_path / "towns.shp", crs="EPSG:3826").crs.to_epsg() == 4326
    with pytest.raises(InvalidInput, match="unknown CRS"):
        read(tmp_path / "towns.shp", crs="EPSG:999999")


def test_only_polygons_are_grids(tmp_path):
    path = tmp_path / "points.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "P1"}, "geometry": {"type": "Point", "coordinates": [121, 25]}}
    ]}))  # fmt: skip
    with pytest.raises(InvalidInput, match="feature 1: is a Point; grids are polygons"):
        read(path)


def test_too_many_vertices_is_refused_before_geos(tmp_path):
    with pytest.raises(InvalidInput, match="over the limit of 10"):
        read_boundaries(TOWNS, max_vertices=10)


def test_changed_feature_becomes_a_new_version(conn, settings, towns, tmp_path):
    frame = gpd.read_file(TOWNS)
    frame.loc[0, "geometry"] = frame.loc[0, "geometry"].buffer(-0.001)
    frame.to_file(tmp_path / "changed.geojson", driver="GeoJSON")
    report = import_grids(conn, read(tmp_path / "changed.geojson"), level="township", settings=settings,
                          code_field="TOWNCODE", name_field="TOWNNAME")  # fmt: skip
    code = frame.loc[0, "TOWNCODE"]
    assert report.changed == [code] and len(report.unchanged) == 11
    versions = conn.execute(
        sa.text("SELECT version, valid_to IS NULL FROM grids WHERE code = :c ORDER BY version"), {"c": code}
    ).all()
    assert versions == [(1, False), (2, True)]


def test_codes_are_made_from_the_parent_when_the_file_has_none(conn, settings, towns):
    frame = read(VILLAGES)
    frame = frame[frame.TOWNCODE == "63000050"].drop(columns=["VILLCODE"])  # 中正區
    first = import_grids(conn, frame, level="village", settings=settings, parent_code="63000050", make_valid=True)
    assert sorted(first.created) == [f"63000050{n:03d}" for n in range(1, len(frame) + 1)]
    # Numbered west to east, north to south (GB/T-style), not in the file's order.
    rows = conn.execute(sa.text("SELECT code, ST_AsText(geom) FROM grids WHERE parent_code = '63000050' "
                                "AND valid_to IS NULL ORDER BY code")).all()  # fmt: skip
    assert reading_order([shapely.from_wkt(wkt) for _, wkt in rows]) == list(range(len(rows)))
    again = import_grids(conn, frame, level="village", settings=settings, parent_code="63000050", make_valid=True)
    assert again.created == [] and len(again.unchanged) == len(frame)


def test_export_round_trip(scratch_url, tmp_path):
    cli(scratch_url, "grids", "import", str(TOWNS), "--level", "township", "--code-field", "TOWNCODE",
        "--name-field", "TOWNNAME")  # fmt: skip
    for name in ("out.geojson", "out.gpkg"):
        result = cli(scratch_url, "grids", "export", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        back = gpd.read_file(tmp_path / name)
        assert sorted(back["code"]) == sorted(gpd.read_file(TOWNS)["TOWNCODE"])
        assert back.crs.to_epsg() == 4326
    reimport = cli(scratch_url, "grids", "import", str(tmp_path / "out.gpkg"), "--level", "township",
                   "--code-field", "code", "--name-field", "name")  # fmt: skip
    assert reimport.exit_code == 0, reimport.output


# -- a hierarchy drawn in a projected CRS ---------------------------------------------------

GK = 4547  # CGCS2000 / 3-degree Gauss-Kruger CM 114E
X0, Y0 = 540_000.0, 4_200_000.0  # ~114.46E, 37.94N


def _gk_hierarchy(width: float, height: float = 4000, hole: bool = False, gap: bool = False):
    """A township *width* m east-west, *height* m north-south, 3 villages side by side, 2 grids each,
    tiling exactly in EPSG:4547.

    Every edge is straight and as long as a village or the township; a village corner on
    the township's edge is a vertex of the villages only. *hole*: a 50 x 50 m hole in
    grid 1; *gap*: grid 4's east edge 0.5 m short of its neighbour's, all along.
    """
    from shapely import box

    v, h = width / 3, height / 2
    town = gpd.GeoDataFrame({"code": ["GK"], "name": ["乡"]}, geometry=[box(X0, Y0, X0 + width, Y0 + 2 * h)], crs=GK)
    villages = gpd.GeoDataFrame(
        {"code": [f"GK{n:03d}" for n in (1, 2, 3)], "name": ["一村", "二村", "三村"]},
        geometry=[box(X0 + v * n, Y0, X0 + v * (n + 1), Y0 + 2 * h) for n in range(3)], crs=GK,
    )  # fmt: skip
    grids = []
    for n in range(3):
        for r in range(2):
            cell = box(X0 + v * n, Y0 + h * r, X0 + v * (n + 1), Y0 + h * (r + 1))
            k = 2 * n + r + 1
            if hole and k == 1:
                cell = cell.difference(box(X0 + v / 2 - 25, Y0 + h / 2 - 25, X0 + v / 2 + 25, Y0 + h / 2 + 25))
            if gap and k == 4:
                cell = box(X0 + v, Y0 + h, X0 + 2 * v - 0.5, Y0 + 2 * h)
            grids.append((f"GK{n + 1:03d}{r + 1:03d}", f"{k}号网格", f"GK{n + 1:03d}", cell))
    cells = gpd.GeoDataFrame([g[:3] for g in grids], columns=["code", "name", "parent"],
                             geometry=[g[3] for g in grids], crs=GK)  # fmt: skip
    return town, villages, cells


def _load_gk(run, tmp_path, frames, reprojected: bool, *extra: str) -> None:
    for n, frame in enumerate(frames):
        path = tmp_path / f"level{n}.gpkg"
        (frame.to_crs(4326) if reprojected else frame).to_file(path, driver="GPKG")
        level = ("township", "village", "grid")[n]
        args = ["grids", "import", str(path), "--level", level, "--code-field", "code", "--name-field", "name"]
        args += ["--parent-field", "parent"] if level == "grid" else []
        out = run(*args, *(extra if n else ()))
        assert out.exit_code == 0, out.output


@pytest.fixture
def gk_run(scratch_url):
    def run(*args):
        return CliRunner().invoke(main, list(args), env={"GEOGRID_DATABASE_URL": scratch_url,
                                                         "GEOGRID_LEVELS": "township,village,grid"})  # fmt: skip

    def empty():
        engine = sa.create_engine(scratch_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM grids"))
        engine.dispose()

    run.empty = empty
    return run


@pytest.mark.parametrize("reprojected", [False, True], ids=["EPSG:4547 as it is", "reprojected to lon/lat"])
def test_a_gauss_kruger_hierarchy_imports_without_false_alarms(gk_run, tmp_path, reprojected):
    # East-west edges of 2.4 km, north-south of 4 km: a vertex on a reprojected straight
    # edge lies up to 8 cm off the chord (bends grow with the square of the length and are
    # largest east-west), so slivers of ~100 m², centimetres wide.
    _load_gk(gk_run, tmp_path, _gk_hierarchy(2400), reprojected)
    clean = gk_run("grids", "validate")
    assert clean.exit_code == 0, clean.output
    if reprojected:
        strict = gk_run("grids", "validate", "--tolerance", "0")
        assert strict.exit_code == 1 and "cm wide" in strict.output  # the bends are there, and narrow
        # With --snap-to-parent the children's edges lie on their parent's: nothing is left at all.
        gk_run.empty()
        _load_gk(gk_run, tmp_path, _gk_hierarchy(2400), reprojected, "--snap-to-parent")
    exact = gk_run("grids", "validate", "--tolerance", "0.005")
    assert exact.exit_code == 0, exact.output

    # Real problems are still found, with their areas and widths.
    gk_run.empty()
    _load_gk(gk_run, tmp_path, _gk_hierarchy(2400, hole=True, gap=True), reprojected)  # a 0.5 m x 2 km gap
    found = gk_run("grids", "validate", "--geojson", str(tmp_path / "problems.geojson"))
    assert found.exit_code == 1
    problems = json.loads((tmp_path / "problems.geojson").read_text())["features"]
    sizes = sorted((p["properties"]["area_m2"], p["properties"]["width_m"]) for p in problems)
    assert len(sizes) == 2, found.output
    (gap_m2, gap_w), (hole_m2, hole_w) = sizes
    assert gap_m2 == pytest.approx(0.5 * 2000, rel=0.05) and gap_w == pytest.approx(0.5, abs=0.03)
    assert hole_m2 == pytest.approx(2500, rel=0.01) and hole_w == pytest.approx(50, rel=0.01)
    assert "50.0 m wide" in found.output and "cm wide" in found.output


def test_long_straight_edges_of_a_projected_file_keep_their_course(gk_run, tmp_path):
    # 6 km east-west edges bend by up to 55 cm when only their ends are reprojected; a
    # projected file's edges are densified before reprojecting, so the tiling stays exact.
    _load_gk(gk_run, tmp_path, _gk_hierarchy(6000, 6000), False)
    exact = gk_run("grids", "validate", "--tolerance", "0.005")
    assert exact.exit_code == 0, exact.output


def test_a_dry_run_says_what_an_import_would_do_and_writes_nothing(conn, settings, demo_grids, tmp_path):
    """New, changed (with the ground moved), unchanged, and the tiling check of the result; nothing kept."""
    cells = gpd.GeoDataFrame.from_postgis(
        "SELECT code, name, geom FROM grids WHERE parent_code = 'XWZ001' AND valid_to IS NULL ORDER BY code",
        conn, geom_col="geom", crs="EPSG:4326")  # fmt: skip
    cells.loc[0, "geom"] = cells.loc[0, "geom"].buffer(-0.0002)  # about 20 m in from every edge: a gap
    path = tmp_path / "cells.geojson"
    cells.rename_geometry("geometry").to_file(path, driver="GeoJSON")
    before = count(conn, "SELECT count(*) FROM grids")
    report = import_grids(conn, read(path), level="grid", settings=settings, code_field="code", name_field="name",
                          dry_run=True)  # fmt: skip
    assert report.dry_run and report.changed == ["XWZ001001"] and report.unchanged == ["XWZ001002"]
    assert report.moved_m2["XWZ001001"] > 10_000  # a 20 m strip round a cell of about a square kilometre
    assert any("gap in XWZ001" in line for line in report.problems)
    assert [f["properties"]["status"] for f in report.preview["features"]] == ["changed"]
    assert count(conn, "SELECT count(*) FROM grids") == before  # nothing written
    assert "dry run, nothing written" in report.summary() and "problem" in report.summary()
    # The same import for real: the new version, and the same problems said.
    done = import_grids(conn, read(path), level="grid", settings=settings, code_field="code", name_field="name")
    assert not done.dry_run and done.changed == ["XWZ001001"] and done.problems == report.problems
    assert count(conn, "SELECT count(*) FROM grids") == before + 1


def test_the_cli_dry_run(scratch_url):
    towns = cli(scratch_url, "grids", "import", str(TOWNS), "--level", "township", "--code-field", "TOWNCODE",
                "--name-field", "TOWNNAME", "--dry-run")  # fmt: skip
    assert towns.exit_code == 0, towns.output
    assert "dry run, nothing written: would have 12 created" in towns.output and "  new      " in towns.output
    engine = sa.create_engine(scratch_url)
    with engine.connect() as conn:
        assert count(conn, "SELECT count(*) FROM grids") == 0
    engine.dispose()


def test_features_that_cannot_be_imported_are_left_out_with_the_reason(conn, settings, towns):
    """The real Taipei villages hold one self-intersecting boundary: with skip_refused it is listed, the rest in."""
    report = import_grids(conn, read(VILLAGES), level="village", settings=settings, code_field="VILLCODE",
                          name_field="VILLNAME", skip_refused=True, dry_run=True)  # fmt: skip
    assert [(r["feature"], r["code"], r["kind"], r["detail"]) for r in report.refused] == [
        (2, "63000080037", "invalid", "Self-intersection")]  # fmt: skip
    assert report.refused[0]["location"][0] == pytest.approx(121.56, abs=0.01)
    assert len(report.created) == 455 and "1 refused" in report.summary()
    with pytest.raises(InvalidInput, match="nothing imported"):  # without it, the file is refused whole
        import_grids(conn, read(VILLAGES), level="village", settings=settings, code_field="VILLCODE")
