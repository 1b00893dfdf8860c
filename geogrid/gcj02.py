"""GCJ-02, the shifted datum of Chinese web maps (Amap, Tencent), for display only.

geogrid's positions are WGS84 everywhere (database, API, files). A basemap drawn in
GCJ-02 is shown by moving the map's *projection*, not the data: the pages use a Leaflet
CRS that shifts lon/lat to GCJ-02 before Web Mercator (the ``gcoord`` npm package does
the shift in the browser), and the vector tiles for such a map are cut in the same
shifted space (:func:`tile_offset`). This module is the same public algorithm for the
server and the tests: ``a = 6378245.0``, ``ee = 0.00669342162296594323``, offsets from
``lon - 105``, ``lat - 35``; outside China's box nothing is shifted. Checked against the
664 reference cities of ``data/coordtransform``.
"""

from __future__ import annotations

import numpy as np

A = 6378245.0
EE = 0.00669342162296594323
#: Where the shift applies (west, south, east, north), as gcoord has it.
CHINA = (72.004, 0.8293, 137.8347, 55.8271)


def _lat(x, y):
    out = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    out += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    out += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    out += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return out


def _lon(x, y):
    out = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    out += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    out += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    out += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return out


def offset(lon, lat):
    """The GCJ-02 shift (dlon, dlat) in degrees at WGS84 *lon*, *lat* (scalars or arrays); 0 outside China."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    west, south, east, north = CHINA
    inside = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    rad = lat / 180.0 * np.pi
    magic = 1.0 - EE * np.sin(rad) ** 2
    dlat = _lat(lon - 105.0, lat - 35.0) * 180.0 / ((A * (1.0 - EE)) / (magic * np.sqrt(magic)) * np.pi)
    dlon = _lon(lon - 105.0, lat - 35.0) * 180.0 / (A / np.sqrt(magic) * np.cos(rad) * np.pi)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def to_gcj02(lon, lat):
    """WGS84 -> GCJ-02 (the public formula, exact by definition)."""
    dlon, dlat = offset(lon, lat)
    return np.asarray(lon, dtype=float) + dlon, np.asarray(lat, dtype=float) + dlat


def to_wgs84(lon, lat, tolerance_deg: float = 1e-9, rounds: int = 30):
    """GCJ-02 -> WGS84 by fixed-point iteration until the forward shift lands within *tolerance_deg*."""
    target_lon, target_lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    x, y = target_lon.copy(), target_lat.copy()
    for _ in range(rounds):
        fx, fy = to_gcj02(x, y)
        ex, ey = fx - target_lon, fy - target_lat
        if np.all(np.abs(ex) <= tolerance_deg) and np.all(np.abs(ey) <= tolerance_deg):
            break
        x, y = x - ex, y - ey
    return x, y


def tile_affine(z: int, x: int, y: int, samples: int = 5) -> tuple[float, float, float, float, float, float]:
    """The affine map (a, b, d, e, xoff, yoff) taking WGS84 lon/lat to GCJ-02 across one tile.

    For the vector tiles of a GCJ-02 map: PostGIS applies it with ``ST_Affine`` (one
    matrix per tile instead of a shift per vertex). Fitted by least squares on a
    *samples* x *samples* lattice over the tile; the shift bends so little across a tile
    that the fit stays within a fraction of a pixel of the exact shift at every zoom
    (tests/test_basemaps.py measures it over China).
    """
    n = 2.0**z
    u = (x + np.linspace(0.0, 1.0, samples)) / n
    v = (y + np.linspace(0.0, 1.0, samples)) / n
    uu, vv = np.meshgrid(u, v)
    gcj_lon = uu.ravel() * 360.0 - 180.0
    gcj_lat = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * vv.ravel()))))
    wgs_lon, wgs_lat = to_wgs84(gcj_lon, gcj_lat)
    design = np.column_stack([wgs_lon, wgs_lat, np.ones_like(wgs_lon)])
    (a, b, xoff), *_ = np.linalg.lstsq(design, gcj_lon, rcond=None)
    (d, e, yoff), *_ = np.linalg.lstsq(design, gcj_lat, rcond=None)
    return float(a), float(b), float(d), float(e), float(xoff), float(yoff)


#: Farther than any shift (degrees; the largest, in the far west, is about 0.0107 in longitude):
#: how far outside a shifted tile's box its features are looked for.
MARGIN_DEG = 0.015
#: A vector tile's geometry as drawn: WGS84 moved by the tile's affine map (identity for WGS84).
SHIFTED = "ST_Affine({geom}, :sa, :sb, :sd, :se, :sx, :sy)"
#: The tile's box in WGS84, widened by the margin for a shifted tile.
SEARCH_BOX = "ST_Expand(ST_Transform({env}, 4326), :margin)"


def tile_params(datum: str, z: int, x: int, y: int) -> dict[str, float]:
    """The SQL parameters of :data:`SHIFTED` and :data:`SEARCH_BOX` for a tile of a *datum* map."""
    if datum == "wgs84":
        return {"sa": 1.0, "sb": 0.0, "sd": 0.0, "se": 1.0, "sx": 0.0, "sy": 0.0, "margin": 0.0}
    a, b, d, e, xoff, yoff = tile_affine(z, x, y)
    return {"sa": a, "sb": b, "sd": d, "se": e, "sx": xoff, "sy": yoff, "margin": MARGIN_DEG}
