"""Register incidents and assign each to the cell that holds it, one or many at a time.

Assignment is one set-based statement (``assign.sql``) for a single incident or a
batch: the deepest current grid covering the point (ties on shared edges broken by
level, then code), else the nearest leaf cell within ``snap_m`` metres (marked
``snapped`` with the distance), else stored ``unassigned``, never dropped. A point
whose lon/lat look swapped (swapping them lands in the territory) is refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import uuid
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.errors import Conflict, InvalidInput
from geogrid.grids import hierarchy
from geogrid.incidents.assign import (
    POINT_COLUMN,
    assign_point,
    assign_table,
    index_points,
    spatial_order,
    swapped_sql,
)
from geogrid.incidents.taxonomy import category as find_category
from geogrid.store.db import transaction_settings
from geogrid.store.models import SOURCES

MAX_DESCRIPTION = 10_000
#: Prefix of the ids made from a file row's content (rows that came without an id).
ROW_ID = "row:"
#: A bulk import that adds at least this many incidents refreshes their statistics.
ANALYZE_AFTER = 10_000


@dataclasses.dataclass(frozen=True)
class NewIncident:
    """An incident as reported: WGS84 lon/lat, and what it is about."""

    lon: float
    lat: float
    category: str
    source: str
    description: str = ""
    reporter: str | None = None
    reported_at: dt.datetime | None = None
    gps_accuracy_m: float | None = None
    external_id: str | None = None
    #: The system the external id belongs to (a hotline's, an app's); default: the source.
    system: str | None = None
    #: Where the external id is unique (filled in by :func:`check`; a worker's own ids get their name too).
    id_scope: str = ""
    #: Whether the report came with its time (a retry without one is still the same incident).
    timed: bool = False


def _finite(value) -> bool:
    """A real number (not a bool) that is finite as a float (a 400-digit integer is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check(incident: NewIncident, settings: Settings) -> NewIncident:
    """The incident with defaults filled in (time zone, external id); InvalidInput if malformed."""
    for name in ("lon", "lat"):
        value = getattr(incident, name)
        if not _finite(value):
            raise InvalidInput("{name} must be a finite number, not {value}", name=name, value=str(value)[:40])
    find_category(incident.category, settings.categories_file)
    if incident.source not in SOURCES:
        raise InvalidInput(
            "unknown source {source!r}; one of {SOURCES}", source=incident.source, SOURCES=", ".join(SOURCES)
        )
    if len(incident.description) > MAX_DESCRIPTION:
        raise InvalidInput("description is longer than {MAX_DESCRIPTION} characters", MAX_DESCRIPTION=MAX_DESCRIPTION)
    accuracy = incident.gps_accuracy_m
    if accuracy is not None and (not _finite(accuracy) or accuracy < 0):
        raise InvalidInput("gps_accuracy_m must be a number of metres, 0 or more")
    if incident.system is not None and not (0 < len(incident.system.strip()) <= 100):
        raise InvalidInput("system must be the name of the system the id comes from (1-100 characters)")
    timed = incident.timed or incident.reported_at is not None
    reported_at = incident.reported_at or dt.datetime.now(dt.UTC)
    if reported_at.tzinfo is None:
        reported_at = reported_at.replace(tzinfo=ZoneInfo(settings.timezone))
    external_id = incident.external_id or _content_id(incident, reported_at)
    scope = incident.id_scope or (incident.system or incident.source).strip()
    return dataclasses.replace(incident, reported_at=reported_at, external_id=external_id, id_scope=scope, timed=timed)


#: SQL: staged or new incident ``s`` says the same as stored incident ``i`` (a retry, not a different report).
SAME_CONTENT = """(abs(ST_X(i.location) - s.lon) < 1e-7 AND abs(ST_Y(i.location) - s.lat) < 1e-7
    AND i.category = s.category AND i.description = s.description
    AND i.reporter IS NOT DISTINCT FROM s.reporter AND (NOT s.timed OR i.reported_at = s.reported_at))"""


def register(conn: Connection, settings: Settings, incident: NewIncident, actor: str, *,
             registered_at: dt.datetime | None = None, owner: str | None = None) -> dict:  # fmt: skip
    """Store one incident, assigned to its cell, with its first event; returns its summary.

    *registered_at* backdates the first event (replaying records kept elsewhere); default now.
    An external id is unique within its system (default: the source) and, for a worker's
    own reports, their *owner* name: the same id and content again is the same incident
    (answered with ``duplicate``), the same id with other content is a Conflict naming it.
    """
    incident = check(incident, settings)
    if owner is not None:
        incident = dataclasses.replace(incident, id_scope=f"{incident.id_scope}/user:{owner}")
    if registered_at is not None and (registered_at.tzinfo is None or registered_at > dt.datetime.now(dt.UTC)):
        raise InvalidInput("a backdated registration needs a time zone and may not be in the future")
    lon, lat = incident.lon, incident.lat
    in_range = -180 <= lon <= 180 and -90 <= lat <= 90
    if in_range:
        assigned = assign_point(conn, settings, lon, lat)
    if not in_range or assigned["assignment"] == "unassigned":
        if conn.execute(sa.text(f"SELECT {swapped_sql(':lon', ':lat')}"), {"lon": lon, "lat": lat}).scalar():
            raise InvalidInput(
                "lon/lat look swapped: ({lon}, {lat}) is outside the territory but ({lat}, {lon}) is inside; "
                "send lon first, then lat",
                lon=lon,
                lat=lat,
            )
        if not in_range:
            raise InvalidInput(
                "coordinates out of range: lon {lon} must be -180..180 and lat {lat} -90..90", lon=lon, lat=lat
            )
    deadline = incident.reported_at + dt.timedelta(
        hours=find_category(incident.category, settings.categories_file).deadline_hours
    )
    row = conn.execute(
        sa.text(
            """
            WITH ins AS (
                INSERT INTO incidents (external_id, id_scope, area_code, location, gps_accuracy_m, category,
                    description, source, reporter, reported_at, grid_id, assignment, snap_distance_m,
                    status, deadline)
                SELECT :external_id, :id_scope,
                       (SELECT area_code FROM geogrid_root_codes(ARRAY(SELECT code FROM grids WHERE id = :grid_id))),
                       ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :accuracy, :category, :description,
                       :source, :reporter, :reported_at, :grid_id, :assignment, :snap, 'reported', :deadline
                ON CONFLICT (id_scope, external_id) DO NOTHING
                RETURNING id
            ), event AS (
                INSERT INTO incident_events (incident_id, at, actor, from_status, to_status, note)
                SELECT id, coalesce(CAST(:registered_at AS timestamptz), now()), :actor, NULL, 'reported',
                       'registered' FROM ins
            )
            SELECT id FROM ins
            """
        ),
        {
            "external_id": incident.external_id, "id_scope": incident.id_scope, "lon": lon, "lat": lat,
            "accuracy": incident.gps_accuracy_m, "category": incident.category,
            "description": incident.description, "source": incident.source,
            "reporter": incident.reporter, "reported_at": incident.reported_at,
            "grid_id": assigned["grid_id"], "assignment": assigned["assignment"],
            "snap": assigned["snap_distance_m"], "deadline": deadline, "actor": actor,
            "registered_at": registered_at,
        },
    ).first()  # fmt: skip
    if row is None:
        existing, same = conn.execute(
            sa.text(
                f"SELECT i.id, {SAME_CONTENT} FROM incidents i CROSS JOIN (SELECT CAST(:lon AS float8) AS lon, "
                "CAST(:lat AS float8) AS lat, CAST(:category AS text) AS category, CAST(:description AS text) AS "
                "description, CAST(:reporter AS text) AS reporter, CAST(:timed AS boolean) AS timed, "
                "CAST(:reported_at AS timestamptz) AS reported_at) s WHERE i.id_scope = :scope AND i.external_id = :e"
            ),
            {"lon": lon, "lat": lat, "category": incident.category, "description": incident.description,
             "reporter": incident.reporter, "timed": incident.timed, "reported_at": incident.reported_at,
             "scope": incident.id_scope, "e": incident.external_id},
        ).one()  # fmt: skip
        if not same:
            raise Conflict(
                "external id {external_id!r} of {id_scope} is incident {incident} already, which says "
                "something else; give this report its own id",
                existing=summary(conn, existing),
                external_id=incident.external_id,
                id_scope=incident.id_scope,
                incident=existing,
            )
        return summary(conn, existing) | {"duplicate": True}
    return summary(conn, row.id)


def summary(conn: Connection, incident_id: int) -> dict:
    """Where an incident was assigned, its status and deadline."""
    row = (
        conn.execute(
            sa.text(
                """
            SELECT i.id, i.external_id, i.category, i.source, i.status, i.assignment,
                   i.snap_distance_m, i.reported_at, i.deadline, i.area_code,
                   ST_X(i.location) AS lon, ST_Y(i.location) AS lat,
                   g.code AS grid_code, g.name AS grid_name, g.version AS grid_version, g.level AS grid_level
              FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id
             WHERE i.id = :id
            """
            ),
            {"id": incident_id},
        )
        .mappings()
        .one()
    )
    out = dict(row)
    for key in ("reported_at", "deadline"):
        out[key] = out[key].isoformat() if out[key] else None
    if out["snap_distance_m"] is not None:
        out["snap_distance_m"] = round(out["snap_distance_m"], 2)
    out["flagged"] = out["assignment"] == "unassigned"
    return out


def _content_id(incident: NewIncident, reported_at: dt.datetime) -> str:
    """An external id for an incident that came without one: same report, same id."""
    key = "|".join(
        str(v) for v in (incident.lon, incident.lat, incident.category, incident.source,
                         incident.description, incident.reporter, reported_at.isoformat())
    )  # fmt: skip
    return "sha1:" + hashlib.sha1(key.encode()).hexdigest()


# -- bulk ------------------------------------------------------------------------------


@dataclasses.dataclass
class BulkReport:
    """Counts of a bulk import; rejected rows went to the reject file with their reason."""

    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    snapped: int = 0
    unassigned: int = 0
    #: Rows whose id was made from their content (they had none).
    ids_made: int = 0
    #: Where the other ids came from ("column '工单编号'"), when the reader says.
    id_source: str = ""

    def summary(self) -> str:
        """What the import did, and how the rows' ids were made (two lines for the CLI)."""
        given = self.read - self.rejected - self.ids_made
        source = f" from {self.id_source}" if self.id_source else ""
        return (
            f"{self.read} rows: {self.inserted} new ({self.snapped} snapped to a nearby cell, "
            f"{self.unassigned} unassigned and flagged), {self.duplicates} already there, "
            f"{self.rejected} rejected\n"
            f"ids: {given} given{source}, {self.ids_made} made from the row's content (no id: the same row "
            "always gets the same id, so importing the file again adds nothing)"
        )


Reject = Callable[[int, dict, str], None]


def import_incidents(
    conn: Connection,
    settings: Settings,
    rows: Iterable[tuple[int, dict, NewIncident | str]],
    *,
    actor: str,
    reject: Reject,
    batch_size: int = 20_000,
    progress: Callable[[int], None] = lambda n: None,
) -> BulkReport:
    """Import parsed rows: ``(line, raw, incident)`` or ``(line, raw, reason)`` for a bad one.

    Good rows are assigned in PostGIS one batch at a time (one statement per batch) and
    inserted idempotently by external id; bad rows go to *reject* with the reason.
    """
    # JIT compiles for ~0.4 s and gains nothing on these joins (measured); the tie check
    # and the general rule's sorts stay in memory instead of spilling to disk.
    with transaction_settings(conn, jit="off", work_mem="128MB"):
        return _import(conn, settings, rows, actor, reject, batch_size, progress)


def _import(conn, settings, rows, actor, reject, batch_size, progress) -> BulkReport:
    report = BulkReport()
    stage = _create_stage(conn)
    batch: list[tuple[int, dict, NewIncident]] = []
    for line, raw, parsed in rows:
        report.read += 1
        if isinstance(parsed, str):
            report.rejected += 1
            reject(line, raw, parsed)
            continue
        try:
            batch.append((line, raw, check(parsed, settings)))
        except InvalidInput as err:
            report.rejected += 1
            reject(line, raw, str(err))
        else:
            report.ids_made += parsed.external_id.startswith(ROW_ID)
        if len(batch) >= batch_size:
            _import_batch(conn, settings, stage, batch, actor, reject, report)
            progress(len(batch))
            batch = []
    if batch:
        _import_batch(conn, settings, stage, batch, actor, reject, report)
        progress(len(batch))
    conn.execute(sa.text(f"DROP TABLE {stage}"))
    if report.inserted >= ANALYZE_AFTER:
        # Fresh statistics before the next statement that joins the incidents (a planner's
        # split reassigns them): autovacuum may not have come by yet (DESIGN's known trap).
        conn.execute(sa.text("ANALYZE incidents"))
    return report


def _create_stage(conn: Connection) -> str:
    stage = f"incident_stage_{uuid.uuid4().hex[:12]}"
    # A regular UNLOGGED table, not TEMP: temp tables live in small local buffers and
    # cannot be scanned by parallel workers (bench: 120k vs 210k points/s). Created in
    # this transaction, it disappears with a rollback; the import drops it at the end.
    conn.execute(
        sa.text(
            f"""
            CREATE UNLOGGED TABLE {stage} (
                n integer PRIMARY KEY, external_id text, id_scope text, timed boolean, lon float8, lat float8,
                accuracy float8, category text, description text, source text, reporter text,
                reported_at timestamptz, deadline timestamptz, geom geometry(Point, 4326), {POINT_COLUMN})
            """
        )
    )
    return stage


def _import_batch(conn, settings, stage, batch, actor, reject, report: BulkReport) -> None:
    # Emptied in this transaction, so COPY FREEZE may load it all-visible (the assignment
    # then reads only the points' index); the index is built afresh after the load.
    conn.execute(sa.text(f"TRUNCATE {stage}"))
    conn.execute(sa.text(f"DROP INDEX IF EXISTS {stage}_pt"))
    lon = np.array([inc.lon for _, _, inc in batch], dtype=float)
    lat = np.array([inc.lat for _, _, inc in batch], dtype=float)
    in_range = (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    # EWKB made in one vectorised call; out-of-range points get no geometry.
    ewkb = shapely.to_wkb(shapely.points(lon, lat), hex=True, include_srid=False)
    driver = conn.connection.driver_connection
    columns = (
        "n, external_id, id_scope, timed, lon, lat, accuracy, category, description, source, reporter, "
        "reported_at, deadline, geom"
    )
    # Staged in spatial order (n keeps the row's place in the batch): see spatial_order.
    with driver.cursor().copy(f"COPY {stage} ({columns}) FROM STDIN (FREEZE)") as copy:
        for n in spatial_order(np.where(in_range, lon, np.nan), np.where(in_range, lat, np.nan)).tolist():
            inc = batch[n][2]
            hours = find_category(inc.category, settings.categories_file).deadline_hours
            copy.write_row((n, inc.external_id, inc.id_scope, inc.timed, inc.lon, inc.lat, inc.gps_accuracy_m,
                            inc.category, inc.description, inc.source, inc.reporter, inc.reported_at,
                            inc.reported_at + dt.timedelta(hours=hours),
                            "SRID=4326;" + ewkb[n] if in_range[n] else None))  # fmt: skip
    index_points(conn, stage)
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {stage}_assigned"))
    assign_table(conn, settings, stage, f"{stage}_assigned")
    # Unassigned or out-of-range rows whose swapped lon/lat land in the territory are refused,
    # like a single intake; out-of-range rows are refused anyway.
    bad = conn.execute(
        sa.text(
            f"""
            SELECT s.n, {swapped_sql("s.lon", "s.lat")} AS swapped
              FROM {stage} s LEFT JOIN {stage}_assigned a ON a.n = s.n
             WHERE a.n IS NULL OR a.assignment = 'unassigned'
            """
        )
    ).all()
    refused = []
    for n, swapped in bad:
        line, raw, inc = batch[n]
        if swapped:
            refused.append(n)
            reject(line, raw, f"lon/lat look swapped: ({inc.lat}, {inc.lon}) is inside the territory")
        elif not in_range[n]:
            refused.append(n)
            reject(line, raw, f"coordinates out of range: lon {inc.lon}, lat {inc.lat}")
    # A row whose id is taken in its system by an incident that says something else is
    # refused, naming that incident (the same content again is a duplicate, skipped).
    taken = conn.execute(
        sa.text(
            f"SELECT s.n, i.id FROM {stage} s JOIN incidents i ON i.id_scope = s.id_scope "
            f"AND i.external_id = s.external_id WHERE NOT {SAME_CONTENT}"
        )
    ).all()
    for n, existing in taken:
        if n not in refused:
            line, raw, inc = batch[n]
            refused.append(n)
            reject(line, raw, f"id {inc.external_id!r} of {inc.id_scope} is incident {existing} already, which says "
                              "something else")  # fmt: skip
    report.rejected += len(refused)
    counts = conn.execute(
        sa.text(
            f"""
            WITH cells AS (
                SELECT DISTINCT g.id, g.code FROM grids g JOIN {stage}_assigned a ON a.grid_id = g.id
            ),
            roots AS (
                SELECT c.id, r.area_code
                  FROM cells c JOIN geogrid_root_codes(ARRAY(SELECT code FROM cells)) r ON r.grid_code = c.code
            ),
            ins AS (
                INSERT INTO incidents (external_id, id_scope, area_code, location, gps_accuracy_m, category,
                    description, source, reporter, reported_at, grid_id, assignment, snap_distance_m,
                    status, deadline)
                SELECT s.external_id, s.id_scope, r.area_code, s.geom, s.accuracy, s.category, s.description,
                       s.source, s.reporter, s.reported_at, a.grid_id, a.assignment,
                       a.snap_distance_m, 'reported', s.deadline
                  FROM {stage} s JOIN {stage}_assigned a ON a.n = s.n LEFT JOIN roots r ON r.id = a.grid_id
                 WHERE NOT (s.n = ANY(:refused))
                 ORDER BY s.n
                ON CONFLICT (id_scope, external_id) DO NOTHING
                RETURNING id, assignment
            ),
            events AS (
                INSERT INTO incident_events (incident_id, actor, to_status, note)
                SELECT id, :actor, 'reported', 'bulk import' FROM ins
            )
            SELECT assignment, count(*) FROM ins GROUP BY assignment
            """
        ),
        {"actor": actor, "refused": refused},
    ).all()
    conn.execute(sa.text(f"DROP TABLE {stage}_assigned"))
    by_kind = dict(counts)
    inserted = sum(by_kind.values())
    report.inserted += inserted
    report.snapped += by_kind.get("snapped", 0)
    report.unassigned += by_kind.get("unassigned", 0)
    report.duplicates += len(batch) - len(refused) - inserted


def reassign(conn: Connection, settings: Settings, *, open_only: bool = True, actor: str = "system",
             everything: bool = False, grid_ids: list[int] | None = None, near_ids: list[int] | None = None,
             reason: str = "boundary change") -> int:  # fmt: skip
    """Assign incidents again after boundaries changed; returns how many moved to another cell.

    Where to look: with *grid_ids* / *near_ids* (an edit says what it changed), the
    incidents assigned to the grid versions *grid_ids* (retired, or gained children) and
    those on or near the ground of *near_ids* (new versions that may take points from
    others); without them, wherever boundaries changed since incidents were assigned: every
    incident not inside a cell, those whose grid version was retired or has gained
    children, and those under a current grid newer than their own (a new neighbour can win
    a point on a shared edge); with *everything*, every incident. Closed incidents keep
    the cell they were handled in unless *open_only* is false.

    A move to another cell is an event naming both cells and *reason*; a new version of
    the same cell (same code) updates the incident silently. Grid versions made in one
    transaction share its start time, so an incident assigned in the middle of a grid
    edit needs *everything*.
    """
    with transaction_settings(conn, jit="off", work_mem="128MB"):
        return _reassign(conn, settings, open_only, actor, everything, grid_ids, near_ids, reason)


def candidates_sql(open_only: bool, everything: bool, scoped: bool) -> str:
    """The statement staging the incidents to assign again (n = incident id, geom) from :ids and :near.

    Its shape leaves the planner no cross product to pick (``bench/assign_bench.py``
    once took 0.89 s and once hit the 60 s timeout on the same data): the incidents of
    some grid versions are an index lookup (or, for the general case, one hashed pass);
    those near some grids are found from each grid in turn (a LATERAL subquery the
    planner may not flatten, through the incidents' spatial index).
    """
    scope = "i.status <> 'closed'" if open_only else "true"
    if everything:
        return f"SELECT i.id AS n, i.location AS geom FROM incidents i WHERE {scope}"
    by_grid = (
        "i.grid_id = ANY(CAST(:ids AS bigint[]))"
        if scoped
        else f"(i.assignment <> 'inside' OR i.grid_id IN (SELECT g.id FROM grids g WHERE g.valid_to IS NOT NULL) "
        f"OR i.grid_id IN ({hierarchy.parents_sql()}))"
    )
    newer = "" if scoped else "JOIN grids o ON o.id = i.grid_id AND o.valid_from < n.valid_from"
    return f"""
        SELECT i.id AS n, i.location AS geom FROM incidents i WHERE {scope} AND {by_grid}
        UNION
        SELECT i.id, i.location
          FROM grids n
         CROSS JOIN LATERAL (SELECT i.id, i.location, i.grid_id FROM incidents i
                              WHERE i.location && ST_Expand(n.geom, :margin) AND {scope} OFFSET 0) i
          {newer}
         WHERE n.id = ANY(CAST(:near AS bigint[]))
    """


def _reassign(conn, settings, open_only, actor, everything, grid_ids, near_ids, reason) -> int:
    scoped = grid_ids is not None or near_ids is not None
    if not scoped and not everything:
        # Current grids newer than the oldest grid any incident is assigned to: after an
        # edit, a handful (a fresh import: none of them is newer).
        near_ids = conn.execute(
            sa.text(
                "SELECT n.id FROM grids n WHERE n.valid_to IS NULL AND n.valid_from > (SELECT min(g.valid_from) "
                "FROM grids g WHERE EXISTS (SELECT 1 FROM incidents i WHERE i.grid_id = g.id))"
            )
        ).scalars().all()  # fmt: skip
    if scoped and not grid_ids and not near_ids:
        return 0
    stage = f"incident_reassign_{uuid.uuid4().hex[:12]}"
    # Degrees that reach :snap_m everywhere the territory lies (cos 80°); a box test only.
    margin = settings.snap_m / 110_000 / 0.17
    staged = conn.execute(
        sa.text(f"CREATE UNLOGGED TABLE {stage} AS {candidates_sql(open_only, everything, scoped)}"),
        {"ids": list(grid_ids or []), "near": list(near_ids or []), "margin": margin},
    ).rowcount
    if not staged:
        conn.execute(sa.text(f"DROP TABLE {stage}"))
        return 0
    index_points(conn, stage)
    assign_table(conn, settings, stage, f"{stage}_assigned")
    moved = conn.execute(
        sa.text(
            f"""
            WITH changed AS (
                SELECT i.id, i.grid_id AS old_id, a.grid_id AS new_id, a.assignment, a.snap_distance_m, i.status
                  FROM incidents i JOIN {stage}_assigned a ON a.n = i.id
                 WHERE i.grid_id IS DISTINCT FROM a.grid_id OR i.assignment <> a.assignment
            ),
            roots AS (
                SELECT * FROM geogrid_root_codes(ARRAY(
                    SELECT DISTINCT g.code FROM changed c JOIN grids g ON g.id = c.new_id))
            ),
            upd AS (
                UPDATE incidents i SET grid_id = c.new_id, assignment = c.assignment,
                       snap_distance_m = c.snap_distance_m,
                       area_code = r.area_code
                  FROM changed c
                  LEFT JOIN grids n ON n.id = c.new_id
                  LEFT JOIN roots r ON r.grid_code = n.code
                 WHERE i.id = c.id
                RETURNING i.id
            ),
            events AS (
                INSERT INTO incident_events (incident_id, actor, from_status, to_status, note, details)
                SELECT c.id, :actor, c.status, c.status, 'moved to another cell: ' || :reason,
                       jsonb_build_object(
                           'reason', CAST(:reason AS text),
                           'from_grid', jsonb_build_object('code', o.code, 'version', o.version),
                           'to_grid', jsonb_build_object('code', n.code, 'version', n.version))
                  FROM changed c
                  LEFT JOIN grids o ON o.id = c.old_id
                  LEFT JOIN grids n ON n.id = c.new_id
                 WHERE o.code IS DISTINCT FROM n.code
                RETURNING incident_id
            )
            SELECT count(*) FROM events
            """
        ),
        {"actor": actor, "reason": reason},
    ).scalar_one()
    conn.execute(sa.text(f"DROP TABLE {stage}, {stage}_assigned"))
    return moved
