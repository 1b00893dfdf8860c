"""Assign points to the cell that holds them: one point, or a staged table of many.

The rule (``assign.sql``): the deepest current grid covering the point, ties on a
shared edge broken by level then code; else the nearest leaf cell within ``snap_m``
metres (``snapped``, with the distance); else ``unassigned``.

For a staged table the same rule runs in three set-based steps, because the general
statement spends most of its time on what is rare (measured on 1,000,000 points in
100,000 cells, ``bench/assign_bench.py``):

1. every point against the current *leaf* grids only, driven from the cells' side
   (parallel scan of the cells, an index-only scan of a GiST index on the points, see
   ``POINT_COLUMN``): one covering leaf is the answer for almost every point, and
   ancestors, which cover every point again, are never tested;
2. points covered by more than one leaf (on a shared edge, or in an overlap) are
   re-decided by the general statement, so the tie-break is the one rule (a unique
   index on the matches shows at once when there are none);
3. points covered by no leaf (outside the territory, or in a gap of a broken tiling)
   go through the general statement too: a covering ancestor, else snapping.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.grids import hierarchy

_ASSIGN = resources.files("geogrid.incidents").joinpath("assign.sql").read_text()


def assign_sql(points: str) -> str:
    """The general assignment statement over *points*, a query of (n, geom) (not user input)."""
    return _ASSIGN.replace("{points}", points).replace("{is_leaf}", _CURRENT_LEAF)


#: A current grid with no current children (the one leaf test, with NULL for "now").
_CURRENT_LEAF = hierarchy.is_leaf("g", None)


def _params(settings: Settings) -> dict:
    return {"levels": list(settings.levels), "snap_m": settings.snap_m}


def assign_point(conn: Connection, settings: Settings, lon: float, lat: float) -> dict:
    """``grid_id``, ``assignment`` and ``snap_distance_m`` for one WGS84 point."""
    statement = assign_sql("SELECT 1 AS n, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geom")
    row = conn.execute(sa.text(statement), {"lon": lon, "lat": lat, **_params(settings)}).mappings().one()
    return dict(row)


def swapped_sql(lon: str, lat: str) -> str:
    """SQL: the point read the other way round, (lat, lon), lies in a current grid.

    The one rule for "lon/lat look swapped", in single and bulk intake and the position
    search: *lon* and *lat* are SQL expressions (columns or bound parameters) for a point
    that itself landed in no cell; swapped, it must be covered by a grid (not merely near one).
    """
    swapped = f"ST_SetSRID(ST_MakePoint({lat}, {lon}), 4326)"
    return (
        f"({lat} BETWEEN -180 AND 180 AND {lon} BETWEEN -90 AND 90 AND EXISTS (SELECT 1 FROM grids sw "
        f"WHERE sw.valid_to IS NULL AND sw.geom && {swapped} AND ST_Covers(sw.geom, {swapped})))"
    )


# The staged points' coordinates again, as PostgreSQL's own `point`: its GiST index
# holds the exact point, so with INCLUDE (n) the join reads nothing but the index (an
# index-only scan), where PostGIS's index holds a float4 box and every candidate is
# fetched from the table (bench/assign_bench.py: the join 3.0 s -> 2.5 s). A generated
# column cannot disagree with geom.
POINT_COLUMN = "pt point GENERATED ALWAYS AS (point(ST_X(geom), ST_Y(geom))) STORED"

# A cell's bounding box as a `point`-comparable box, and the candidate as a PostGIS point.
_CELL_BOX = (
    "box(point(ST_XMin(g.geom::box3d), ST_YMin(g.geom::box3d)), point(ST_XMax(g.geom::box3d), ST_YMax(g.geom::box3d)))"
)
_CANDIDATE = "ST_SetSRID(ST_MakePoint(p.pt[0], p.pt[1]), 4326)"


def index_points(conn: Connection, points: str) -> None:
    """Make table *points* (n, geom) ready for ``assign_table``: the ``pt`` column, its index, statistics.

    A table created or truncated in this transaction and filled with ``COPY ... FREEZE``
    is all-visible at once, so the index-only scan never visits it; otherwise run VACUUM
    first where possible (it cannot run inside a transaction).
    """
    conn.execute(sa.text(f"ALTER TABLE {points} ADD COLUMN IF NOT EXISTS {POINT_COLUMN}"))
    conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {points}_pt ON {points} USING gist (pt) INCLUDE (n)"))
    conn.execute(sa.text(f"ANALYZE {points}"))


def leaf_join_sql(points: str) -> str:
    """Every (point, current leaf grid covering it) of table *points*; :parents lists the non-leaves."""
    return f"""
        SELECT p.n, g.id AS grid_id, 'inside'::text AS assignment, NULL::float8 AS snap_distance_m
          FROM {points} p
          JOIN grids g ON p.pt <@ {_CELL_BOX} AND _ST_Covers(g.geom, {_CANDIDATE})
         WHERE g.valid_to IS NULL AND NOT (g.id = ANY(CAST(:parents AS integer[])))
    """


def assign_table(conn: Connection, settings: Settings, points: str, out: str) -> int:
    """Create table *out* (n, grid_id, assignment, snap_distance_m) for the points of table *points*.

    *points* has columns ``n`` (unique) and ``geom`` (Point, 4326, NULL allowed and
    skipped) and has been through ``index_points``; both names are ours, not user input.
    Returns the number of points assigned (all non-NULL ones).
    """
    params = _params(settings)
    # Grids with current children are not leaves; there are few of them, so they are
    # excluded by a list (a hashed lookup) rather than an anti-join per cell.
    parents = conn.execute(sa.text(f"SELECT array_agg(id) FROM ({hierarchy.parents_sql()}) p")).scalar_one()
    # Only the points' index can serve the join, so it is driven from the cells (a
    # parallel scan), each cell's shape cached by PostGIS while its points are tested.
    # Driven from the points it runs ~40x slower.
    pairs = conn.execute(
        sa.text(f"CREATE UNLOGGED TABLE {out} AS " + leaf_join_sql(points)), {"parents": parents or []}
    ).rowcount
    # Points covered by two leaves are rare: a unique index on n proves there are none
    # faster than grouping a million rows (0.35 s against 0.7 s), and serves the joins after.
    try:
        with conn.begin_nested():
            conn.execute(sa.text(f"CREATE UNIQUE INDEX {out}_n ON {out} (n)"))
    except sa.exc.IntegrityError:
        conn.execute(sa.text(f"ANALYZE {out}"))
        ties = conn.execute(sa.text(f"SELECT n FROM {out} GROUP BY n HAVING count(*) > 1")).scalars().all()
        pairs -= conn.execute(sa.text(f"DELETE FROM {out} WHERE n = ANY(:ties)"), {"ties": ties}).rowcount
        pairs += _insert_general(conn, out, f"SELECT n, geom FROM {points} WHERE n = ANY(:ties)",
                                 {**params, "ties": ties})  # fmt: skip
        conn.execute(sa.text(f"CREATE UNIQUE INDEX {out}_n ON {out} (n)"))
    staged = conn.execute(sa.text(f"SELECT count(*) FROM {points} WHERE geom IS NOT NULL")).scalar_one()
    if pairs < staged:
        pairs += _insert_general(
            conn, out,
            f"SELECT s.n, s.geom FROM {points} s "
            f"WHERE s.geom IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {out} o WHERE o.n = s.n)",
            params,
        )  # fmt: skip
    return pairs


def _insert_general(conn: Connection, out: str, points: str, params: dict) -> int:
    """Assign the points of query *points* with the general statement into *out*; how many."""
    return conn.execute(
        sa.text(f"INSERT INTO {out} (n, grid_id, assignment, snap_distance_m) {assign_sql(points)}"), params
    ).rowcount


def spatial_order(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """A permutation putting nearby points next to each other (Z-order on a 2^16 grid).

    Staging points in this order keeps each cell's points on few pages, so the join
    driven from the cells reads far fewer pages (1.89 s -> 1.67 s on the benchmark).
    """
    if len(lon) == 0:
        return np.arange(0)
    bits = []
    for values in (np.asarray(lon, float), np.asarray(lat, float)):
        ok = np.isfinite(values)
        low, high = (values[ok].min(), values[ok].max()) if ok.any() else (0.0, 0.0)
        scale = 65535.0 / (high - low) if high > low else 0.0
        bits.append(((np.where(ok, values, low) - low) * scale).astype(np.uint64))
    return np.argsort(_interleave(bits[0]) | (_interleave(bits[1]) << np.uint64(1)), kind="stable")


def _interleave(v: np.ndarray) -> np.ndarray:
    """Spread the low 16 bits of *v* to the even bit positions."""
    v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
    v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
    v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
    return (v | (v << np.uint64(1))) & np.uint64(0x55555555)
