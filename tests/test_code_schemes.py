"""Standard grid codes: Beijing's 15 digits (6+3+3+3) and CJ/T 213's 14 (6+3+3+2), new cells
numbered west to east, north to south with the next unused number, and a code never reused."""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa
from shapely import LineString, box

from geogrid.config import Settings
from geogrid.errors import ConfigError, Conflict, InvalidInput
from geogrid.grids.codes import reading_order
from geogrid.grids.edit import merge_grids, split_grid
from geogrid.grids.generate import generate_cells
from geogrid.grids.importer import import_grids

LEVELS = ("street", "community", "cell")
STREET = box(116.40, 39.90, 116.43, 39.92)  # about 2.6 km x 2.2 km, 朝阳区-like
DIVISION = "110105"


def scheme(settings: Settings, name: str) -> Settings:
    return dataclasses.replace(settings, levels=LEVELS, code_scheme=name)


def current(conn, parent: str) -> dict[str, shapely.Geometry]:
    rows = conn.execute(sa.text("SELECT code, ST_AsText(geom) FROM grids WHERE parent_code = :p AND valid_to IS NULL"),
                        {"p": parent}).all()  # fmt: skip
    return {code: shapely.from_wkt(wkt) for code, wkt in rows}


def import_street(conn, settings: Settings, code: str) -> None:
    frame = gpd.GeoDataFrame({"feature": [1], "code": [code], "name": ["示范街道"]}, geometry=[STREET], crs=4326)
    import_grids(conn, frame, level="street", settings=settings, code_field="code", name_field="name")


def in_reading_order(cells: dict[str, shapely.Geometry]) -> bool:
    codes = sorted(cells)
    return [codes[i] for i in reading_order([cells[c] for c in codes])] == codes


@pytest.mark.parametrize("name,cell_digits", [("beijing", 3), ("cjt213", 2)])
def test_generated_and_split_cells_get_the_schemes_codes_in_reading_order(conn, settings, name, cell_digits):
    configured = scheme(settings, name)
    street = DIVISION + "001"
    import_street(conn, configured, street)
    # Communities: 2 x 2 squares of about 1.4 km² -> 12-digit codes, north row first, west to east.
    generate_cells(conn, configured, street, shape="square", area_m2_target=1.6e6)
    communities = current(conn, street)
    assert sorted(communities) == [street + f"{n:03d}" for n in range(1, len(communities) + 1)]
    assert in_reading_order(communities)
    first = sorted(communities)[0]
    west, _, _, north = STREET.bounds
    assert communities[first].bounds[0] == pytest.approx(west) and communities[first].bounds[3] == pytest.approx(north)
    # Unit cells in the first community: 15 (Beijing) or 14 (CJ/T 213) digits.
    generate_cells(conn, configured, first, shape="square", area_m2_target=1.5e5)
    cells = current(conn, first)
    assert all(len(c) == 12 + cell_digits and c.isdigit() for c in cells)
    assert sorted(cells) == [first + f"{n:0{cell_digits}d}" for n in range(1, len(cells) + 1)]
    assert in_reading_order(cells)
    # A split: the pieces take the next unused numbers, the western piece first; the old code is retired.
    last = len(cells)
    target = sorted(cells)[0]
    minx, miny, maxx, maxy = cells[target].bounds
    middle = (minx + maxx) / 2
    split_grid(conn, configured, target, LineString([(middle, miny - 0.001), (middle, maxy + 0.001)]))
    after = current(conn, first)
    west_piece, east_piece = first + f"{last + 1:0{cell_digits}d}", first + f"{last + 2:0{cell_digits}d}"
    assert target not in after and west_piece in after and east_piece in after
    assert after[west_piece].centroid.x < after[east_piece].centroid.x
    # Split across the other way: the northern piece first.
    minx, miny, maxx, maxy = after[east_piece].bounds
    split_grid(conn, configured, east_piece, LineString([(minx - 0.001, (miny + maxy) / 2),
                                                         (maxx + 0.001, (miny + maxy) / 2)]))  # fmt: skip
    after = current(conn, first)
    north_piece, south_piece = first + f"{last + 3:0{cell_digits}d}", first + f"{last + 4:0{cell_digits}d}"
    assert after[north_piece].centroid.y > after[south_piece].centroid.y
    # Merging takes the next number again; retired numbers are never handed out.
    merged = merge_grids(conn, configured, [north_piece, south_piece])
    assert list(merged.created) == [first + f"{last + 5:0{cell_digits}d}"]


def test_codes_that_do_not_fit_the_scheme_are_refused(conn, settings):
    beijing = scheme(settings, "beijing")
    with pytest.raises(InvalidInput, match="does not fit the beijing scheme: a street code is 9 digits"):
        import_street(conn, beijing, "XWZ")
    import_street(conn, beijing, DIVISION + "002")
    frame = gpd.GeoDataFrame({"feature": [1], "code": ["110106002001"]}, geometry=[STREET], crs=4326)
    with pytest.raises(InvalidInput, match="starting with its parent's 110105002"):
        import_grids(conn, frame, level="community", settings=beijing, code_field="code",
                     parent_code=DIVISION + "002")  # fmt: skip


def test_a_scheme_runs_out_of_numbers_rather_than_growing_the_code(conn, settings):
    cjt = scheme(settings, "cjt213")
    import_street(conn, cjt, DIVISION + "003")
    generate_cells(conn, cjt, DIVISION + "003", shape="square", area_m2_target=6e6)
    community = sorted(current(conn, DIVISION + "003"))[0]
    # 2 digits: 99 cells at most; about 150 are asked for.
    with pytest.raises(Conflict, match="no free 2-digit child codes left"):
        generate_cells(conn, cjt, community, shape="square", area_m2_target=1e4)


def test_a_scheme_must_fit_the_levels():
    with pytest.raises(ConfigError, match="codes 3 levels .* GEOGRID_LEVELS has 4"):
        Settings(code_scheme="beijing")  # township, village, grid, cell
    with pytest.raises(ConfigError, match="plain, beijing or cjt213"):
        Settings(code_scheme="shanghai")
    assert Settings.from_env({"GEOGRID_CODE_SCHEME": "Beijing", "GEOGRID_LEVELS": "street,community,cell"}
                             ).code_scheme == "beijing"  # fmt: skip


def test_reading_order_is_rows_from_the_north_each_west_to_east():
    # Irregular cells whose centroids wobble within a row.
    cells = [box(1, 0.05, 2, 1.05), box(0, 1, 1, 2), box(2, -0.1, 3, 0.9), box(1, 1.1, 2, 2.1), box(0, 0, 1, 1)]
    assert reading_order(cells) == [1, 3, 4, 0, 2]
