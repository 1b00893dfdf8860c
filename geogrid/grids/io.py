"""Read boundary files (GeoJSON, Shapefile, GeoPackage) and write them back, in EPSG:4326.

Files are read with GeoPandas/pyogrio in whatever CRS they declare and reprojected;
a file with no CRS is refused unless one is given. Only polygons and multipolygons
are grid boundaries.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from geogrid.errors import InvalidInput

SUFFIXES = {".geojson", ".json", ".shp", ".zip", ".gpkg"}
EXPORT_DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG"}
#: Longest edge (m) of a projected file's boundaries before reprojecting to lon/lat.
DENSIFY_PROJECTED_M = 50.0


def read_boundaries(
    path: str | Path, *, crs: str | None = None, layer: str | None = None, max_vertices: int
) -> gpd.GeoDataFrame:
    """The features of *path* in EPSG:4326, checked to be bounded, finite (multi)polygons.

    *crs* is used only when the file declares none. A feature's position in the file
    (from 1) is kept in the ``feature`` column for error messages.
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise InvalidInput(
            "{name}: unsupported file type; use GeoJSON, Shapefile (.shp/.zip) or GeoPackage", name=path.name
        )
    if not path.exists():
        raise InvalidInput("{path}: no such file", path=path)
    try:
        frame = gpd.read_file(path, layer=layer, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InvalidInput("{name}: cannot be read as a boundary file: {exc}", name=path.name, exc=exc) from exc
    if frame.empty:
        raise InvalidInput("{name}: has no features", name=path.name)
    if frame.crs is None:
        if crs is None:
            raise InvalidInput("{name}: declares no CRS; say which with --crs, e.g. --crs EPSG:4547", name=path.name)
        try:
            frame = frame.set_crs(pyproj.CRS.from_user_input(crs))
        except pyproj.exceptions.CRSError as exc:
            raise InvalidInput("unknown CRS {crs!r}: {exc}", crs=crs, exc=exc) from exc
    frame = frame.reset_index(drop=True)
    frame["feature"] = np.arange(1, len(frame) + 1)
    _check_shapes(frame, path.name, max_vertices)
    if frame.crs.is_projected:
        # A straight edge of a projected CRS is a curve in lon/lat: reprojecting only its
        # ends would bend it (a 6 km east-west edge of CGCS2000 3-degree GK at 38N by 55 cm)
        # and open slivers between a parent and its children. Densified first, the edge
        # keeps its course to a fraction of a millimetre.
        metres = frame.crs.axis_info[0].unit_conversion_factor if frame.crs.axis_info else 1.0
        frame["geometry"] = shapely.segmentize(frame.geometry.values, DENSIFY_PROJECTED_M / metres)
    if not frame.crs.equals(pyproj.CRS.from_epsg(4326)):
        frame = frame.to_crs(4326)
    _check_range(frame, path.name)
    frame["geometry"] = shapely.force_2d(frame.geometry.values)
    return frame


def _check_shapes(frame: gpd.GeoDataFrame, name: str, max_vertices: int) -> None:
    problems = []
    for feature, geom in zip(frame["feature"], frame.geometry, strict=True):
        if geom is None or geom.is_empty:
            problems.append(f"feature {feature}: has no geometry")
        elif geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(f"feature {feature}: is a {geom.geom_type}; grids are polygons")
        elif shapely.get_num_coordinates(geom) > max_vertices:
            problems.append(
                f"feature {feature}: has {shapely.get_num_coordinates(geom)} vertices, over the limit of {max_vertices}"
            )
        elif not all(math.isfinite(v) for v in shapely.get_coordinates(geom).ravel()):
            problems.append(f"feature {feature}: has a NaN or infinite coordinate")
        elif short := _short_rings(geom):
            problems.append(f"feature {feature}: {short} ring(s) with fewer than 4 points (a ring needs 3 corners "
                            "and the first point again)")  # fmt: skip
    if problems:
        raise InvalidInput("{name}: {listed}", problems=problems, name=name, listed="; ".join(problems[:20]))


def _short_rings(geom) -> int:
    """How many rings of a (multi)polygon have fewer than 4 points (PostGIS refuses those)."""
    rings = [ring for part in shapely.get_parts(geom) for ring in (part.exterior, *part.interiors)]
    return sum(1 for ring in rings if shapely.get_num_coordinates(ring) < 4)


def _check_range(frame: gpd.GeoDataFrame, name: str) -> None:
    """Refuse features that leave longitude/latitude (once in EPSG:4326)."""
    bounds = frame.geometry.bounds
    bad = frame["feature"][(bounds.minx < -180) | (bounds.maxx > 180) | (bounds.miny < -90) | (bounds.maxy > 90)]
    if len(bad):
        problems = [f"feature {f}: lies outside longitude -180..180 / latitude -90..90 (wrong CRS?)" for f in bad]
        raise InvalidInput("{name}: {listed}", problems=problems, name=name, listed="; ".join(problems[:20]))


def write_boundaries(frame: gpd.GeoDataFrame, path: str | Path) -> None:
    """Write grids to GeoJSON or GeoPackage, chosen by the file's suffix."""
    path = Path(path)
    driver = EXPORT_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise InvalidInput("{name}: export writes .geojson or .gpkg", name=path.name)
    if path.exists():
        path.unlink()
    frame.to_file(path, driver=driver, engine="pyogrio", layer="grids" if driver == "GPKG" else None)
