"""Metres for geometries stored in EPSG:4326: the projected CRS to use, and areas.

Mirrors the SQL functions ``geogrid_utm_srid`` and ``geogrid_area_m2`` (migration
0002): edges are densified to 1e-4 degree before projecting, so an edge that is
straight in lon/lat stays on that line and slivers along shared edges measure ~0.
"""

from __future__ import annotations

import functools

import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from geogrid.config import Settings

_DENSIFY_DEG = 1e-4


def metric_srid(geom: BaseGeometry, settings: Settings) -> int:
    """The configured projected CRS, or the UTM zone of *geom*'s bounding-box centre."""
    if settings.metric_srid:
        return settings.metric_srid
    minx, miny, maxx, maxy = geom.bounds
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    zone = min(60, max(1, int((lon + 180) // 6) + 1))
    return (32600 if lat >= 0 else 32700) + zone


@functools.cache
def _to_metric(srid: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(4326, srid, always_xy=True)


@functools.cache
def _from_metric(srid: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(srid, 4326, always_xy=True)


def to_metric(geom: BaseGeometry, srid: int, densify: bool = True) -> BaseGeometry:
    """*geom* (EPSG:4326) in the projected CRS *srid*, edges densified first."""
    if densify:
        geom = shapely.segmentize(geom, _DENSIFY_DEG)
    return shapely.transform(geom, lambda xy: _xy(_to_metric(srid), xy))


def from_metric(geom: BaseGeometry, srid: int) -> BaseGeometry:
    """*geom* in *srid* back to EPSG:4326 (vertices only: densify in metres first)."""
    return shapely.transform(geom, lambda xy: _xy(_from_metric(srid), xy))


def area_m2(geom: BaseGeometry, srid: int) -> float:
    """Area in m² of an EPSG:4326 geometry, measured in *srid*."""
    return to_metric(geom, srid).area if not geom.is_empty else 0.0


def _xy(transformer: pyproj.Transformer, xy):
    import numpy as np

    x, y = transformer.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])
