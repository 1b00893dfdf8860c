"""Find incidents (GeoJSON, filtered, paginated) and read one with its cell, people and history."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid import gcj02
from geogrid.errors import InvalidInput, NotFound
from geogrid.incidents.workflow import DONE, TRANSITIONS, ancestry, open_delay, responsible_people
from geogrid.photos import photos_of

MAX_LIMIT = 1000
#: An incident is overdue when its deadline has passed and it is not done.
OVERDUE = f"(i.deadline < now() AND i.status NOT IN ({', '.join(repr(s) for s in DONE)}))"

#: The list filters (incidents i joined to their grid g); parameters from :func:`filter_params`.
_FILTERS = f"""
       (CAST(:statuses AS text[]) IS NULL OR i.status = ANY(:statuses))
   AND (CAST(:categories AS text[]) IS NULL OR i.category = ANY(:categories))
   AND (CAST(:department AS text) IS NULL OR i.department = :department)
   AND (CAST(:grid AS text) IS NULL OR g.code IN (SELECT geogrid_subtree(ARRAY[CAST(:grid AS text)])))
   AND (CAST(:xmin AS float8) IS NULL OR i.location && ST_MakeEnvelope(:xmin, :ymin, :xmax, :ymax, 4326))
   AND (CAST(:start AS timestamptz) IS NULL OR i.reported_at >= :start)
   AND (CAST(:end AS timestamptz) IS NULL OR i.reported_at < :end)
   AND (CAST(:overdue AS boolean) IS NULL OR {OVERDUE} = :overdue)
"""

_LIST = f"""
SELECT i.id, i.external_id, i.category, i.source, i.status, i.description, i.reporter,
       i.reported_at, i.deadline, i.assignment, i.snap_distance_m, i.escalation_level, i.department,
       g.code AS grid_code, g.version AS grid_version, {OVERDUE} AS overdue,
       ST_X(i.location) AS lon, ST_Y(i.location) AS lat, count(*) OVER () AS matched
  FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id
 WHERE {_FILTERS}
 ORDER BY i.reported_at DESC, i.id DESC
 LIMIT :limit OFFSET :offset
"""

_TILE = f"""
WITH bounds AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),
features AS (
    SELECT ST_AsMVTGeom(ST_Transform({gcj02.SHIFTED.format(geom="i.location")}, 3857), b.env, 4096, 16, true) AS geom,
           i.id, i.status, i.category, {OVERDUE} AS overdue
      FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id CROSS JOIN bounds b
     WHERE i.location && {gcj02.SEARCH_BOX.format(env="b.env")} AND {_FILTERS}
)
SELECT ST_AsMVT(features, 'incidents', 4096, 'geom') FROM features WHERE geom IS NOT NULL
"""


def statuses(text: str | None) -> list[str] | None:
    """States from ``reported,dispatched`` (None when not given); unknown ones are refused."""
    found = [s.strip() for s in (text or "").split(",") if s.strip()] or None
    unknown = sorted(set(found or ()) - set(TRANSITIONS))
    if unknown:
        raise InvalidInput(
            "unknown status {unknown}; states are {TRANSITIONS}",
            unknown=", ".join(unknown),
            TRANSITIONS=", ".join(TRANSITIONS),
        )
    return found


def filter_params(statuses=None, category=None, grid=None, bbox=None, start=None, end=None, overdue=None,
                  department=None) -> dict:  # fmt: skip
    """Bound values for the list filters (None: no filter); *category* is a code or a list of codes."""
    xmin, ymin, xmax, ymax = bbox or (None, None, None, None)
    categories = [category] if isinstance(category, str) else category
    return {"statuses": statuses, "categories": categories, "grid": grid, "department": department,
            "xmin": xmin, "ymin": ymin,
            "xmax": xmax, "ymax": ymax, "start": start, "end": end, "overdue": overdue}  # fmt: skip


def count_incidents(conn: Connection, **filters) -> int:
    """How many incidents the filters match."""
    statement = f"SELECT count(*) FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id WHERE {_FILTERS}"
    return conn.execute(sa.text(statement), filter_params(**filters)).scalar_one()


def incident_tile(conn: Connection, z: int, x: int, y: int, *, datum: str = "wgs84", **filters) -> bytes:
    """Mapbox vector tile z/x/y of the incidents the filters match (layer ``incidents``: id, status, ...)."""
    params = {**filter_params(**filters), "z": z, "x": x, "y": y, **gcj02.tile_params(datum, z, x, y)}
    tile = conn.execute(sa.text(_TILE), params).scalar()
    return bytes(tile or b"")


def list_incidents(
    conn: Connection,
    *,
    statuses: list[str] | None = None,
    category: str | list[str] | None = None,
    grid: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    overdue: bool | None = None,
    department: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict:
    """Incidents as a GeoJSON FeatureCollection, newest first, *limit* at a time.

    *grid* takes the incidents of that grid and every grid below it.
    """
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InvalidInput("limit must be 1..{MAX_LIMIT} and offset 0 or more", MAX_LIMIT=MAX_LIMIT)
    params = filter_params(statuses, category, grid, bbox, start, end, overdue, department)
    rows = conn.execute(sa.text(_LIST), {**params, "limit": limit, "offset": offset}).mappings().all()
    matched = rows[0]["matched"] if rows else 0
    features = []
    for row in rows:
        props = {k: _plain(v) for k, v in row.items() if k not in ("lon", "lat", "matched")}
        features.append({"type": "Feature", "id": row["id"], "properties": props,
                         "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]}})  # fmt: skip
    return {
        "type": "FeatureCollection", "numberMatched": matched, "numberReturned": len(features),
        "offset": offset, "limit": limit,
        "next_offset": offset + len(features) if offset + len(features) < matched else None,
        "features": features,
    }  # fmt: skip


def worker_cases(conn: Connection, person_id: int, user: str, *, limit: int = 200) -> list[dict]:
    """A grid worker's cases, for their phone: those dispatched to them and those they registered, while open
    (closed and refused ones leave the list), overdue first, then by deadline, then newest.

    ``standing`` says ``handler`` and/or ``reporter``; ``photos`` counts the case's photos.
    """
    rows = conn.execute(
        sa.text(
            f"""
            WITH mine AS (
                SELECT id FROM incidents WHERE handler_person_id = :person
                UNION
                SELECT incident_id FROM incident_events WHERE actor = :user AND from_status IS NULL
            )
            SELECT i.id, i.category, i.status, i.description, i.reported_at, i.deadline, {OVERDUE} AS overdue,
                   ST_X(i.location) AS lon, ST_Y(i.location) AS lat, g.code AS grid_code, g.name AS grid_name,
                   i.handler_person_id = :person AS handler,
                   EXISTS (SELECT 1 FROM incident_events e WHERE e.incident_id = i.id AND e.from_status IS NULL
                            AND e.actor = :user) AS reporter,
                   (SELECT count(*) FROM photos p WHERE p.incident_id = i.id) AS photos
              FROM mine m JOIN incidents i ON i.id = m.id LEFT JOIN grids g ON g.id = i.grid_id
             WHERE i.status NOT IN ('closed', 'rejected')
             ORDER BY {OVERDUE} DESC, i.deadline NULLS LAST, i.reported_at DESC, i.id DESC
             LIMIT :limit
            """
        ),
        {"person": person_id, "user": user, "limit": limit},
    ).mappings()
    out = []
    for r in rows:
        standing = [name for name in ("handler", "reporter") if r[name]]
        out.append({**{k: _plain(v) for k, v in r.items() if k not in ("handler", "reporter")},
                    "standing": standing, "open_delay": open_delay(conn, r["id"]) is not None})  # fmt: skip
    return out


def incident_detail(conn: Connection, incident_id: int) -> dict:
    """One incident with its cell, the cell's parent chain, responsible people, deadline and events."""
    row = (
        conn.execute(
            sa.text(
                f"""
            SELECT i.*, ST_X(i.location) AS lon, ST_Y(i.location) AS lat, {OVERDUE} AS overdue,
                   (i.status = 'closed' AND NOT EXISTS (SELECT 1 FROM incident_events v WHERE v.incident_id = i.id
                        AND v.details ? 'return_visit' AND v.at >= i.closed_at)) AS awaiting_visit,
                   g.code AS grid_code, g.name AS grid_name, g.level AS grid_level, g.version AS grid_version,
                   ST_AsGeoJSON(g.geom, 7) AS grid_geometry
              FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id WHERE i.id = :id
            """
            ),
            {"id": incident_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("no incident {incident_id}", incident_id=incident_id)
    out = {k: _plain(v) for k, v in row.items() if k not in ("location", "grid_geometry")}
    out["cell"] = None
    if row["grid_code"]:
        out["cell"] = {
            "code": row["grid_code"], "name": row["grid_name"], "level": row["grid_level"],
            "version": row["grid_version"], "geometry": json.loads(row["grid_geometry"]),
        }  # fmt: skip
    out["parents"] = ancestry(conn, row["grid_id"])[1:]
    out["photos"] = photos_of(conn, incident_id=incident_id)
    out["responsible"] = responsible_people(conn, row["grid_id"])
    # What can happen next (the page offers these as buttons, by role).
    out["next"] = list(TRANSITIONS.get(row["status"], ()))
    request = open_delay(conn, incident_id)
    out["open_delay"] = (
        {"id": request["id"], **request["details"], "reason": request["reason"], "by": request["actor"],
         "at": _plain(request["at"])} if request else None
    )  # fmt: skip
    out["handler"] = None
    if row["handler_person_id"] is not None:
        handler = conn.execute(sa.text("SELECT id, name, phone FROM people WHERE id = :id"),
                               {"id": row["handler_person_id"]}).mappings().first()  # fmt: skip
        out["handler"] = dict(handler) if handler else None
    out["events"] = [
        {k: _plain(v) for k, v in e.items()}
        for e in conn.execute(
            sa.text(
                "SELECT id, at, actor, from_status, to_status, note, details FROM incident_events "
                "WHERE incident_id = :id ORDER BY at, id"
            ),
            {"id": incident_id},
        ).mappings()
    ]
    closed = row["closed_at"]
    out["awaiting_visit"] = row["status"] == "closed" and not any(
        "return_visit" in (e["details"] or {}) and e["at"] >= _plain(closed) for e in out["events"]
    )
    return out


def _plain(value):
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value
