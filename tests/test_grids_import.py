"""Importing real boundary files: CRS handling, invalid geometry, parents, versions, export."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from geogrid.cli import main
from geogrid.errors import InvalidInput
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
    # The published set has a few small slivers of its own (tens of m²) ...
    strict = cli(scratch_url, "grids", "validate")
    assert strict.exit_code == 1 and "outside its parent" in strict.output
    # ... and tiles within 50 m² everywhere.
    loose = cli(scratch_url, "grids", "validate", "--tolerance", "50")
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
            assert geom.symmetric_difference(original[code]).area < 1e-9 * original[code].area + 1e-12
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
    assert first.created[0] == "63000050001" and len(first.created) == len(frame)
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
