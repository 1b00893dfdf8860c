"""Read current grids as GeoJSON, optionally limited to a set of codes (a worker's scope)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.errors import NotFound

_FEATURES = """
SELECT code, name, level, parent_code, version, valid_from, attributes,
       ST_AsGeoJSON(geom, 7)::json AS geometry,
       ST_Area(geom::geography) AS area_m2
  FROM grids
 WHERE valid_to IS NULL
   AND (CAST(:level AS text) IS NULL OR level = :level)
   AND (CAST(:all_codes AS boolean) OR code = ANY(:codes))
 ORDER BY code
"""


def current_grids(
    conn: Connection, *, level: str | None = None, codes: set[str] | None = None
) -> dict:
    """Current grids as a GeoJSON FeatureCollection (EPSG:4326; ``area_m2`` geodesic).

    *codes*, when given, limits the answer to those grid codes.
    """
    rows = conn.execute(
        sa.text(_FEATURES),
        {"level": level, "all_codes": codes is None, "codes": sorted(codes or ())},
    ).mappings()
    return {"type": "FeatureCollection", "features": [_feature(row) for row in rows]}


def current_grid(conn: Connection, code: str, *, codes: set[str] | None = None) -> dict:
    """One current grid as a GeoJSON Feature; NotFound when absent or outside *codes*."""
    if codes is not None and code not in codes:
        raise NotFound(f"no current grid with code {code!r}")
    row = (
        conn.execute(
            sa.text(_FEATURES.replace("ORDER BY code", "AND code = :code")),
            {"level": None, "all_codes": True, "codes": [], "code": code},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no current grid with code {code!r}")
    return _feature(row)


def _feature(row) -> dict:
    geometry = row["geometry"]
    if isinstance(geometry, str):
        geometry = json.loads(geometry)
    return {
        "type": "Feature",
        "id": row["code"],
        "geometry": geometry,
        "properties": {
            "code": row["code"],
            "name": row["name"],
            "level": row["level"],
            "parent_code": row["parent_code"],
            "version": row["version"],
            "valid_from": row["valid_from"].isoformat(),
            "area_m2": round(row["area_m2"], 1),
            "attributes": row["attributes"],
        },
    }
