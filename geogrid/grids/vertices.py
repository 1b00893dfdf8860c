"""Editing boundaries by their corners, so that shared edges stay shared: move a corner, undo an edit.

A corner of the hierarchy is a point where some current grid's boundary turns (by more
than ``TURN_DEG``); the points between two corners only densify a straight edge
(generated cells carry hundreds). Moving a corner moves it in **every** current grid whose
boundary passes through it (the neighbours at its level, and the parent and the parent's
neighbours when it lies on their edge: a point on an edge without a vertex gets one), and
the densifying points of the edges that end at it slide along with them, each by its share
of the way, so every edge stays straight and is still the same line for the grids on both
sides. All of it is one change (:func:`geogrid.grids.edit.reshape_grids`): new versions of
each grid, the tiling checked before anything is kept, open incidents following their
ground. :func:`restore` undoes an edit the same way: new versions with the shapes before.
"""

from __future__ import annotations

import math

import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.errors import Conflict, InvalidInput, NotFound
from geogrid.grids.edit import Reshape, reshape_grids
from geogrid.grids.versions import lock_current

#: Two points closer than this (degrees, about 1 cm) are the same point.
TOL = 1e-7
#: A boundary that turns by more than this (degrees) at a point has a corner there.
TURN_DEG = 2.0


def _key(x: float, y: float) -> tuple[float, float]:
    return (round(x, 7), round(y, 7))


def _polygons(geom) -> list[Polygon]:
    return list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]


def _rings(geom) -> list[list[tuple[float, float]]]:
    """Every ring of *geom* as an open list of points (the closing repeat left out)."""
    out = []
    for poly in _polygons(geom):
        for ring in [poly.exterior, *poly.interiors]:
            out.append([(x, y) for x, y, *_ in ring.coords[:-1]])
    return out


def _build(geom, rings: list[list[tuple[float, float]]]):
    """*geom*'s shape again with its rings replaced by *rings* (same order)."""
    polys, n = [], 0
    for poly in _polygons(geom):
        count = 1 + len(poly.interiors)
        shell, *holes = rings[n : n + count]
        polys.append(Polygon(shell, holes))
        n += count
    return MultiPolygon(polys) if isinstance(geom, MultiPolygon) or len(polys) > 1 else polys[0]


def _turns(ring: list[tuple[float, float]], i: int) -> bool:
    """Whether *ring* turns at its point *i* (angles in a local metric frame)."""
    (x0, y0), (x1, y1), (x2, y2) = ring[i - 1], ring[i], ring[(i + 1) % len(ring)]
    k = math.cos(math.radians(y1))
    a = math.atan2(y1 - y0, (x1 - x0) * k)
    b = math.atan2(y2 - y1, (x2 - x1) * k)
    turn = abs((math.degrees(b - a) + 180) % 360 - 180)
    return turn > TURN_DEG


def _grids_near(conn: Connection, box) -> list[dict]:
    """The current grids whose shapes meet *box* (minx, miny, maxx, maxy)."""
    rows = conn.execute(
        sa.text(
            "SELECT code, version, ST_AsBinary(geom) AS wkb FROM grids "
            "WHERE valid_to IS NULL AND geom && ST_MakeEnvelope(:a, :b, :c, :d, 4326) ORDER BY code"
        ),
        {"a": box[0] - TOL, "b": box[1] - TOL, "c": box[2] + TOL, "d": box[3] + TOL},
    ).mappings()
    out = []
    for r in rows:
        geom = shapely.from_wkb(bytes(r["wkb"]))
        out.append({"code": r["code"], "version": r["version"], "geom": geom, "rings": _rings(geom)})
    return out


def _corner_keys(grids: list[dict]) -> set[tuple[float, float]]:
    """The points where any of *grids* turns."""
    return {_key(*ring[i]) for g in grids for ring in g["rings"] for i in range(len(ring)) if _turns(ring, i)}


def corners(conn: Connection, code: str) -> list[tuple[float, float]]:
    """The corners on grid *code*'s boundary: where it turns, or where a grid that meets it turns there."""
    found = conn.execute(sa.text("SELECT ST_AsBinary(geom) FROM grids WHERE code = :c AND valid_to IS NULL"),
                         {"c": code}).scalar()  # fmt: skip
    if found is None:
        raise NotFound("no current grid {code}", code=code)
    geom = shapely.from_wkb(bytes(found))
    turning = _corner_keys(_grids_near(conn, geom.bounds))
    seen, out = set(), []
    for ring in _rings(geom):
        for x, y in ring:
            k = _key(x, y)
            if k in turning and k not in seen:
                seen.add(k)
                out.append((x, y))
    return out


def _insert(ring: list[tuple[float, float]], point: tuple[float, float]) -> bool:
    """Put *point* into *ring* where an edge passes within TOL of it (not at a vertex); whether it did."""
    px, py = point
    if any(abs(x - px) <= TOL and abs(y - py) <= TOL for x, y in ring):
        return False
    for i in range(len(ring)):
        (ax, ay), (bx, by) = ring[i], ring[(i + 1) % len(ring)]
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        if length2 == 0:
            continue
        t = ((px - ax) * dx + (py - ay) * dy) / length2
        if 0 < t < 1 and math.hypot(ax + t * dx - px, ay + t * dy - py) <= TOL:
            ring.insert(i + 1, (px, py))
            return True
    return False


def _chain(ring: list[tuple[float, float]], start: int, step: int, corner_keys) -> list[int]:
    """Indexes from *start* (excluded) along *ring* by *step* up to the next corner (included)."""
    out, i = [], start
    for _ in range(len(ring)):
        i = (i + step) % len(ring)
        out.append(i)
        if _key(*ring[i]) in corner_keys or i == start:
            break
    return out


def move_corner(conn: Connection, settings: Settings, source: tuple[float, float], target: tuple[float, float], *,
                actor: str = "system") -> dict:  # fmt: skip
    """Move the corner at *source* to *target* in every current grid whose boundary passes through it, with the
    edges that end at it; one change, tiling checked. What changed: ``versions`` (code -> new version),
    ``before`` (code -> the version it replaced, for :func:`restore`) and ``incidents_moved``."""
    sx, sy = source
    if (sx, sy) == tuple(target) or math.hypot(target[0] - sx, target[1] - sy) <= TOL:
        raise InvalidInput("the corner did not move")
    touching = conn.execute(
        sa.text(
            "SELECT code FROM grids WHERE valid_to IS NULL AND geom && ST_Expand(ST_SetSRID(ST_MakePoint(:x, :y), "
            "4326), :t) AND ST_DWithin(ST_Boundary(geom), ST_SetSRID(ST_MakePoint(:x, :y), 4326), :t) ORDER BY code"
        ),
        {"x": sx, "y": sy, "t": TOL},
    ).scalars().all()  # fmt: skip
    if not touching:
        raise InvalidInput("no grid boundary passes through {lon}, {lat}", lon=round(sx, 7), lat=round(sy, 7))
    # The grids that must change, locked before they are read; then every grid around them (an edge that ends
    # at the corner may run along others).
    box = shapely.unary_union([lock_current(conn, code).geom for code in touching]).bounds
    grids = _grids_near(conn, box)
    by_code = {g["code"]: g for g in grids}
    # The point itself a vertex of every grid it lies on.
    for code in touching:
        for ring in by_code[code]["rings"]:
            _insert(ring, (sx, sy))
    corner_keys = _corner_keys(grids) | {_key(sx, sy)}
    origin = _key(sx, sy)
    if origin not in {_key(*p) for g in grids for ring in g["rings"] for p in ring}:
        raise InvalidInput("no corner at {lon}, {lat}", lon=round(sx, 7), lat=round(sy, 7))
    dx, dy = target[0] - sx, target[1] - sy
    moved: dict[tuple[float, float], tuple[float, float]] = {origin: (target[0], target[1])}
    ends: set[tuple[float, float]] = set()
    for code in touching:
        for ring in by_code[code]["rings"]:
            for i, p in enumerate(ring):
                if _key(*p) != origin:
                    continue
                for step in (1, -1):
                    chain = _chain(ring, i, step, corner_keys)
                    if not chain:
                        continue
                    *between, end = chain
                    ends.add(_key(*ring[end]))
                    # Each densifying point slides by its share of the way from the corner to the next one.
                    lengths, total, last = [], 0.0, ring[i]
                    for j in [*between, end]:
                        total += math.dist(last, ring[j])
                        lengths.append(total)
                        last = ring[j]
                    for j, along in zip(between, lengths, strict=False):
                        share = 1 - along / total if total else 0
                        x, y = ring[j]
                        moved.setdefault(_key(x, y), (x + share * dx, y + share * dy))
    # Every grid through which a moved point or an edge's end passes has them as vertices, then they move.
    originals = {k for k in moved} | ends
    edits = []
    for g in grids:
        for ring in g["rings"]:
            for k in originals:
                _insert(ring, k)
        changed = False
        new_rings = []
        for ring in g["rings"]:
            new = []
            for x, y in ring:
                k = _key(x, y)
                if k in moved:
                    new.append(moved[k])
                    changed = True
                else:
                    new.append((x, y))
            new_rings.append(new)
        if changed:
            shape = _build(g["geom"], new_rings)
            if not shape.is_valid:
                where = shapely.get_coordinates(shapely.Point(target))[0]
                raise InvalidInput("moving the corner to {lon}, {lat} would make the boundary of {code} cross itself: "
                                   "move it less far, or first move the corners in its way", code=g["code"],
                                   lon=round(float(where[0]), 7), lat=round(float(where[1]), 7))  # fmt: skip
            edits.append(Reshape(code=g["code"], version=g["version"], geometry=shape))
    if not edits:
        raise InvalidInput("no corner at {lon}, {lat}", lon=round(sx, 7), lat=round(sy, 7))
    made, moved_incidents = reshape_grids(conn, settings, edits, actor=actor)
    return {"versions": made, "before": {e.code: e.version for e in edits}, "incidents_moved": moved_incidents}


def restore(conn: Connection, settings: Settings, versions: dict[str, int], *, actor: str = "system") -> dict:
    """Undo an edit: each grid of *versions* (code -> the version the edit made, still current) gets a new version
    with the shape of the one before; tiling checked. 409 when a grid was changed since."""
    if not versions:
        raise InvalidInput("nothing to undo")
    edits = []
    for code, version in sorted(versions.items()):
        grid = lock_current(conn, code)
        if grid.version != version:
            raise Conflict("grid {code} was changed since (version {current}, not {version}); it cannot be undone "
                           "from here", code=code, current=grid.version, version=version)  # fmt: skip
        before = conn.execute(
            sa.text("SELECT ST_AsBinary(geom) FROM grids WHERE code = :c AND version < :v ORDER BY version DESC "
                    "LIMIT 1"),
            {"c": code, "v": version},
        ).scalar()  # fmt: skip
        if before is None:
            raise InvalidInput("grid {code} has no earlier shape to go back to", code=code)
        edits.append(Reshape(code=code, version=version, geometry=shapely.from_wkb(bytes(before))))
    made, moved = reshape_grids(conn, settings, edits, actor=actor)
    return {"versions": made, "before": versions, "incidents_moved": moved}
