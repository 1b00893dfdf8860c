"""Read grids as GeoJSON: current or as they were at a moment, filtered, with details."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.errors import InvalidInput, NotFound

# Grids valid at :at (NULL = now): valid_from <= at < valid_to.
_VALID_AT = """
    (CASE WHEN CAST(:at AS timestamptz) IS NULL THEN g.valid_to IS NULL
          ELSE g.valid_from <= CAST(:at AS timestamptz)
               AND (g.valid_to IS NULL OR g.valid_to > CAST(:at AS timestamptz)) END)
"""

_FEATURES = f"""
SELECT g.code, g.name, g.level, g.parent_code, g.version, g.valid_from, g.valid_to, g.attributes,
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
 ORDER BY g.code
"""


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` in EPSG:4326, checked; None when not given."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise InvalidInput(f"bbox must be four numbers minlon,minlat,maxlon,maxlat: {text!r}") from None
    if len(values) != 4:
        raise InvalidInput(f"bbox must have four numbers, not {len(values)}")
    xmin, ymin, xmax, ymax = values
    if not (-180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90):
        raise InvalidInput("bbox must be minlon,minlat,maxlon,maxlat within -180..180, -90..90")
    return values


def parse_at(text: str | None) -> dt.datetime | None:
    """An ISO date or date-time; a date means its end (what was valid that day). UTC if naive."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"at must be an ISO date or date-time, not {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def parse_since(text: str | None) -> dt.datetime | None:
    """A lower bound: an ISO date means its first moment (UTC), a date-time itself. None when not given."""
    if text is None:
        return None
    if len(text) == 10:
        try:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time.min, tzinfo=dt.UTC)
        except ValueError:
            raise InvalidInput(f"not an ISO date: {text!r}") from None
    return parse_at(text)


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
    rows = conn.execute(sa.text(_FEATURES), _params(level, parent, None, bbox, at, codes, srid))
    return {"type": "FeatureCollection", "features": [_feature(r) for r in rows.mappings()]}


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
        raise NotFound(f"no current grid with code {code!r}")
    row = conn.execute(sa.text(_FEATURES), _params(None, None, code, None, at, None, srid)).mappings().first()
    if row is None:
        raise NotFound(f"no {'current ' if at is None else ''}grid with code {code!r}")
    feature = _feature(row)
    params = {"code": code, "at": at}
    chain = (
        conn.execute(
            sa.text(
                f"""
            WITH RECURSIVE chain(code, name, level, parent_code, depth) AS (
                SELECT g.code, g.name, g.level, g.parent_code, 0 FROM grids g
                 WHERE g.code = (SELECT parent_code FROM grids g WHERE g.code = :code AND {_VALID_AT})
                   AND {_VALID_AT}
                UNION ALL
                SELECT g.code, g.name, g.level, g.parent_code, c.depth + 1
                  FROM grids g JOIN chain c ON g.code = c.parent_code
                 WHERE {_VALID_AT} AND c.depth < 20
            )
            SELECT code, name, level FROM chain ORDER BY depth
            """
            ),
            params,
        )
        .mappings()
        .all()
    )
    children = conn.execute(
        sa.text(f"SELECT count(*) FROM grids g WHERE g.parent_code = :code AND {_VALID_AT}"), params
    ).scalar_one()
    people = (
        conn.execute(
            sa.text(
                "SELECT p.id, p.name, p.phone, a.duty, a.department FROM assignments a "
                "JOIN people p ON p.id = a.person_id "
                "WHERE a.grid_code = :code AND a.valid_to IS NULL ORDER BY a.duty, p.name"
            ),
            {"code": code},
        )
        .mappings()
        .all()
    )
    feature["properties"].update(
        parents=[dict(r) for r in chain], children_count=children, people=[dict(p) for p in people]
    )
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
        raise InvalidInput(f"no tile {z}/{x}/{y}")


def grid_tile(
    conn: Connection, z: int, x: int, y: int, *, level: str | None = None, at: dt.datetime | None = None,
    codes: set[str] | None = None,
) -> bytes:  # fmt: skip
    """Mapbox vector tile z/x/y (layer ``grids``: code, name, level, parent_code, version)."""
    check_tile(z, x, y)
    tile = conn.execute(
        sa.text(
            f"""
            WITH bounds AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),
            features AS (
                SELECT ST_AsMVTGeom(ST_Transform(g.geom, 3857), b.env, 4096, 64, true) AS geom,
                       g.code, g.name, g.level, g.parent_code, g.version
                  FROM grids g, bounds b
                 WHERE g.geom && ST_Transform(b.env, 4326)
                   AND {_VALID_AT}
                   AND (CAST(:level AS text) IS NULL OR g.level = :level)
                   AND (CAST(:all_codes AS boolean) OR g.code = ANY(:codes))
            )
            SELECT ST_AsMVT(features, 'grids', 4096, 'geom') FROM features WHERE geom IS NOT NULL
            """
        ),
        {**_params(level, None, None, None, at, codes, None), "z": z, "x": x, "y": y},
    ).scalar()
    return bytes(tile or b"")
