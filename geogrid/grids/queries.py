"""Read grids as GeoJSON: current or as they were at a moment, filtered, with details."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid import gcj02, inputs
from geogrid.errors import InvalidInput, NotFound
from geogrid.grids import hierarchy
from geogrid.incidents.assign import swapped_sql

_VALID_AT = hierarchy.valid_at()

_FEATURES = f"""
SELECT g.id, g.code, g.name, g.level, g.parent_code, g.version, g.valid_from, g.valid_to, g.attributes,
       ST_AsGeoJSON(g.geom, 7)::json AS geometry,
       geogrid_area_m2(g.geom, coalesce(CAST(:srid AS integer), geogrid_utm_srid(g.geom))) AS area_m2
  FROM grids g
 WHERE {_VALID_AT}
   AND (CAST(:level AS text) IS NULL OR g.level = :level)
   AND (CAST(:parent AS text) IS NULL OR g.parent_code = :parent)
   AND (CAST(:code AS text) IS NULL OR g.code = :code)
   AND (CAST(:xmin AS float8) IS NULL
        OR g.geom && ST_MakeEnvelope(:xmin, :ymin, :xmax, :ymax, 4326))
   AND (CAST(:all_codes AS boolean) OR g.code = ANY(:codes))
   {{extra}}
 ORDER BY g.code
"""


def grids_geojson(
    conn: Connection,
    *,
    level: str | None = None,
    parent: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    at: dt.datetime | None = None,
    codes: set[str] | None = None,
    srid: int | None = None,
) -> dict:
    """Grids as a GeoJSON FeatureCollection (EPSG:4326) with ``area_m2`` in properties.

    Current grids, or those valid at *at*; *codes* limits the answer (a worker's scope).
    """
    rows = conn.execute(sa.text(_FEATURES.format(extra="")), _params(level, parent, None, bbox, at, codes, srid))
    return {"type": "FeatureCollection", "features": [_feature(r) for r in rows.mappings()]}


def grids_at_point(
    conn: Connection,
    first: float,
    second: float,
    *,
    levels: tuple[str, ...],
    level: str | None = None,
    at: dt.datetime | None = None,
    codes: set[str] | None = None,
    srid: int | None = None,
) -> dict:
    """The grids that contain a position typed as *first*, *second* (lon, lat), top level first.

    Exact: a grid contains the point when it covers it (its edge included), not when its
    bounding box does. Typed the wrong way round (lat, lon) is recognised by the intake's
    rule: read as lon, lat the point lies in no grid, read the other way it does; the
    answer then says ``swapped``. Current grids, or those valid at *at*, of *level* or all.
    """
    lon, lat, swapped = inputs.lon_lat(first, second)
    params = {"lon": lon, "lat": lat, "at": at}
    if (
        not swapped
        and not conn.execute(
            sa.text(
                f"SELECT EXISTS (SELECT 1 FROM grids g WHERE {_VALID_AT} AND g.geom && {_POINT} "
                f"AND ST_Covers(g.geom, {_POINT}))"
            ),
            params,  # fmt: skip
        ).scalar()
    ):
        swapped = conn.execute(sa.text(f"SELECT {swapped_sql(':lon', ':lat')}"), params).scalar()
        if swapped:
            lon, lat = lat, lon
    rows = conn.execute(
        sa.text(_FEATURES.format(extra=f"AND g.geom && {_POINT} AND ST_Covers(g.geom, {_POINT})")),
        {**_params(level, None, None, None, at, codes, srid), "lon": lon, "lat": lat},
    ).mappings()
    order = {name: n for n, name in enumerate(levels)}
    features = sorted((_feature(r) for r in rows), key=lambda f: (order.get(f["properties"]["level"], len(order)),
                                                                  f["properties"]["code"]))  # fmt: skip
    return {"type": "FeatureCollection", "point": [lon, lat], "swapped": bool(swapped), "features": features}


_POINT = "ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326)"


def grid_detail(
    conn: Connection,
    code: str,
    *,
    at: dt.datetime | None = None,
    codes: set[str] | None = None,
    srid: int | None = None,
) -> dict:
    """One grid as a GeoJSON Feature with its parent chain, children count and people."""
    if codes is not None and code not in codes:
        raise NotFound("no grid {code}", code=code)
    row = (
        conn.execute(sa.text(_FEATURES.format(extra="")), _params(None, None, code, None, at, None, srid))
        .mappings()
        .first()
    )
    if row is None:
        if at is not None:
            raise NotFound("no grid {code} on {day}", code=code, day=at.date().isoformat())
        raise NotFound("no grid {code}", code=code)
    feature = _feature(row)
    params = {"code": code, "at": at}
    chain = [{k: g[k] for k in ("code", "name", "level")} for g in hierarchy.ancestors(conn, row["id"], at)[1:]]
    children = conn.execute(
        sa.text(f"SELECT count(*) FROM grids g WHERE g.parent_code = :code AND {_VALID_AT}"), params
    ).scalar_one()
    people = (
        conn.execute(
            sa.text(
                "SELECT p.id, p.name, p.phone, a.duty, a.department FROM assignments a "
                "JOIN people p ON p.id = a.person_id "
                f"WHERE a.grid_code = :code AND {hierarchy.valid_at('a')} ORDER BY a.duty, p.name"
            ),
            params,
        )
        .mappings()
        .all()
    )
    feature["properties"].update(parents=chain, children_count=children, people=[dict(p) for p in people])
    return feature


def _params(level, parent, code, bbox, at, codes, srid) -> dict:
    xmin, ymin, xmax, ymax = bbox or (None, None, None, None)
    return {
        "level": level, "parent": parent, "code": code, "at": at, "srid": srid,
        "xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax,
        "all_codes": codes is None, "codes": sorted(codes or ()),
    }  # fmt: skip


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
            "valid_to": row["valid_to"].isoformat() if row["valid_to"] else None,
            "area_m2": round(row["area_m2"], 1),
            "attributes": row["attributes"],
        },
    }


def level_summary(conn: Connection, *, at: dt.datetime | None = None, codes: set[str] | None = None) -> list[dict]:
    """Per level (top down as stored): how many grids, their extent and typical width in metres."""
    rows = conn.execute(
        sa.text(
            f"""
            SELECT g.level, count(*) AS n, ST_XMin(ST_Extent(g.geom)) AS xmin, ST_YMin(ST_Extent(g.geom)) AS ymin,
                   ST_XMax(ST_Extent(g.geom)) AS xmax, ST_YMax(ST_Extent(g.geom)) AS ymax,
                   -- degrees² to m² at the layer's latitude: enough to pick a zoom level.
                   sqrt(avg(ST_Area(g.geom)) * 111320.0 ^ 2 * cosd(avg(ST_Y(ST_PointOnSurface(g.geom)))))
                       AS width_m
              FROM grids g
             WHERE {_VALID_AT} AND (CAST(:all_codes AS boolean) OR g.code = ANY(:codes))
             GROUP BY g.level
            """
        ),
        _params(None, None, None, None, at, codes, None),
    ).mappings()
    return [dict(r) for r in rows]


def check_tile(z: int, x: int, y: int) -> None:
    """InvalidInput unless z/x/y names a web-mercator tile (zoom 0..24)."""
    if not (0 <= z <= 24 and 0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInput("no tile {z}/{x}/{y}", z=z, x=x, y=y)


def grid_tile(
    conn: Connection, z: int, x: int, y: int, *, level: str | None = None, at: dt.datetime | None = None,
    codes: set[str] | None = None, datum: str = "wgs84",
) -> bytes:  # fmt: skip
    """Mapbox vector tile z/x/y (layer ``grids``: code, name, level, parent_code, version), for a *datum* map."""
    check_tile(z, x, y)
    tile = conn.execute(
        sa.text(
            f"""
            WITH bounds AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),
            features AS (
                SELECT ST_AsMVTGeom(ST_Transform({gcj02.SHIFTED.format(geom="g.geom")}, 3857), b.env, 4096, 64,
                                    true) AS geom,
                       g.code, g.name, g.level, g.parent_code, g.version
                  FROM grids g, bounds b
                 WHERE g.geom && {gcj02.SEARCH_BOX.format(env="b.env")}
                   AND {_VALID_AT}
                   AND (CAST(:level AS text) IS NULL OR g.level = :level)
                   AND (CAST(:all_codes AS boolean) OR g.code = ANY(:codes))
            )
            SELECT ST_AsMVT(features, 'grids', 4096, 'geom') FROM features WHERE geom IS NOT NULL
            """
        ),
        {
            **_params(level, None, None, None, at, codes, None),
            "z": z,
            "x": x,
            "y": y,
            **gcj02.tile_params(datum, z, x, y),
        },
    ).scalar()
    return bytes(tile or b"")
