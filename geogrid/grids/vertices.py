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

import contextvars
import functools
import math

import shapely
import shapely.ops
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


#: The points met so far in one edit, by TOL-sized bucket: two copies of a point (in two grids, a few 1e-12 apart)
#: are one key, however they round (rounding alone would split a pair that straddles a rounding boundary).
_POINTS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("geogrid_edit_points", default=None)


def _key(x: float, y: float) -> tuple[float, float]:
    """The point's key: the first point seen within TOL of it in this edit."""
    buckets = _POINTS.get()
    if buckets is None:
        return (round(x, 7), round(y, 7))
    bx, by = math.floor(x / TOL), math.floor(y / TOL)
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            for k in buckets.get((bx + i, by + j), ()):
                if abs(k[0] - x) <= TOL and abs(k[1] - y) <= TOL:
                    return k
    buckets.setdefault((bx, by), []).append((x, y))
    return (x, y)


def _one_edit(fn):
    """Run *fn* with its own point keys (shared by the calls it makes)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if _POINTS.get() is not None:
            return fn(*args, **kwargs)
        token = _POINTS.set({})
        try:
            return fn(*args, **kwargs)
        finally:
            _POINTS.reset(token)

    return run


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


def _current_shape(conn: Connection, code: str):
    found = conn.execute(sa.text("SELECT ST_AsBinary(geom) FROM grids WHERE code = :c AND valid_to IS NULL"),
                         {"c": code}).scalar()  # fmt: skip
    if found is None:
        raise NotFound("no current grid {code}", code=code)
    return shapely.from_wkb(bytes(found))


@_one_edit
def corners(conn: Connection, code: str) -> list[tuple[float, float]]:
    """The corners on grid *code*'s boundary: where it turns, or where a grid that meets it turns there."""
    geom = _current_shape(conn, code)
    turning = _corner_keys(_grids_near(conn, geom.bounds))
    seen, out = set(), []
    for ring in _rings(geom):
        for x, y in ring:
            k = _key(x, y)
            if k in turning and k not in seen:
                seen.add(k)
                out.append((x, y))
    return out


@_one_edit
def midpoints(conn: Connection, code: str) -> list[tuple[float, float]]:
    """Halfway along each stretch of grid *code*'s boundary between two corners: where a planner adds a corner."""
    geom = _current_shape(conn, code)
    turning = {_key(*p) for p in corners(conn, code)}
    out = []
    for ring in _rings(geom):
        at = [i for i, p in enumerate(ring) if _key(*p) in turning]
        for n, i in enumerate(at):
            j = at[(n + 1) % len(at)]
            stretch = [ring[(i + k) % len(ring)] for k in range((j - i) % len(ring) + 1)] if len(at) > 1 else ring
            if len(stretch) >= 2:
                half = shapely.LineString(stretch).interpolate(0.5, normalized=True)
                out.append((half.x, half.y))
    return out


@_one_edit
def remove_corner(conn: Connection, settings: Settings, code: str, at: tuple[float, float], *,
                  actor: str = "system") -> dict:  # fmt: skip
    """Take away the corner of grid *code* at *at*: it goes onto the straight line between the corners before and
    after it (in every grid that has it, as :func:`move_corner` moves it), so the boundary no longer turns there."""
    grid = lock_current(conn, code)
    turning = corners(conn, code)
    keys = {_key(*p) for p in turning}
    for ring in _rings(grid.geom):
        idx = [i for i, p in enumerate(ring) if _key(*p) in keys]
        here = next((i for i in idx if math.dist(ring[i], at) <= 1e-6), None)
        if here is None:
            continue
        if len(idx) <= 3:
            raise InvalidInput("{code} keeps at least three corners on each boundary ring", code=code)
        n = idx.index(here)
        before, after = idx[n - 1], idx[(n + 1) % len(idx)]
        way_in = [ring[(before + k) % len(ring)] for k in range((here - before) % len(ring) + 1)]
        way_out = [ring[(here + k) % len(ring)] for k in range((after - here) % len(ring) + 1)]
        length = shapely.LineString(way_in).length + shapely.LineString(way_out).length
        share = shapely.LineString(way_in).length / length if length else 0.5
        line = shapely.LineString([ring[before], ring[after]])
        target = line.interpolate(share, normalized=True)
        return move_corner(conn, settings, ring[here], (target.x, target.y), actor=actor)
    raise InvalidInput("no corner of {code} at {lon}, {lat}", code=code, lon=round(at[0], 7), lat=round(at[1], 7))


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


def _put_corners_on_edges(grids: list[dict], corner_keys) -> None:
    """Insert each corner into every ring of *grids* whose edge passes within TOL of it (not at a vertex)."""
    points = list(corner_keys)
    if not points:
        return
    tree = shapely.STRtree([shapely.Point(p) for p in points])
    for g in grids:
        for n, ring in enumerate(g["rings"]):
            out = []
            for i, a in enumerate(ring):
                b = ring[(i + 1) % len(ring)]
                out.append(a)
                box = shapely.box(min(a[0], b[0]) - TOL, min(a[1], b[1]) - TOL, max(a[0], b[0]) + TOL,
                                  max(a[1], b[1]) + TOL)  # fmt: skip
                segment = shapely.LineString([a, b])
                found = []
                for k in tree.query(box):
                    p = points[k]
                    if math.dist(p, a) <= TOL or math.dist(p, b) <= TOL:
                        continue
                    if segment.distance(shapely.Point(p)) <= TOL:
                        found.append((segment.project(shapely.Point(p)), p))
                out.extend(p for _, p in sorted(found))
            g["rings"][n] = out


def _chain(ring: list[tuple[float, float]], start: int, step: int, corner_keys) -> list[int]:
    """Indexes from *start* (excluded) along *ring* by *step* up to the next corner (included)."""
    out, i = [], start
    for _ in range(len(ring)):
        i = (i + step) % len(ring)
        out.append(i)
        if _key(*ring[i]) in corner_keys or i == start:
            break
    return out


@_one_edit
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
    # Every corner is a vertex of every grid whose edge it lies on, before the edges are walked: each walk from the
    # moved corner then stops at the same next corner in every grid along that edge.
    _put_corners_on_edges(grids, corner_keys)
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


#: How far (metres) a drawn path's ends may be from the grid's boundary: they are put on it.
REACH_M = 15.0


def _metres(p: tuple[float, float], q: tuple[float, float]) -> float:
    """About how many metres apart two lon/lat points are (close ones)."""
    k = math.cos(math.radians((p[1] + q[1]) / 2))
    return math.hypot((p[0] - q[0]) * k, p[1] - q[1]) * 111_320


@_one_edit
def reshape_edge(conn: Connection, settings: Settings, code: str, path: list[tuple[float, float]], *,
                 actor: str = "system") -> dict:  # fmt: skip
    """Replace the part of grid *code*'s boundary between *path*'s ends (the shorter way round) by *path*, in every
    current grid whose boundary runs along that part (the neighbour on the other side; the parents, when it lies on
    their edge): one change, tiling checked. The ends must lie within ``REACH_M`` of the boundary; they are put on
    it. What changed, as :func:`move_corner` says it."""
    if len(path) < 2:
        raise InvalidInput("draw a path of two points or more, from the boundary to the boundary")
    grid = lock_current(conn, code)
    boundary = grid.geom.boundary
    corners_here = corners(conn, code)
    ends = []
    for point in (path[0], path[-1]):
        # On a corner when one is within a third of the reach (a click is a few pixels off), else on the boundary.
        near = min(corners_here, key=lambda c: math.dist(c, point), default=None)
        if near is not None and _metres(near, point) <= REACH_M / 3:
            ends.append(near)
            continue
        on = shapely.ops.nearest_points(boundary, shapely.Point(point))[0]
        metres = _metres((on.x, on.y), point)
        if metres > REACH_M:
            raise InvalidInput("the path must start and end on the boundary of {code}: an end is {m} m from it",
                               code=code, m=round(metres, 1))  # fmt: skip
        ends.append((on.x, on.y))
    a, b = ends
    if math.dist(a, b) <= TOL:
        raise InvalidInput("the path must end at another point of the boundary than where it starts")
    line = [a, *path[1:-1], b]
    grids = _grids_near(conn, shapely.unary_union([grid.geom, shapely.LineString(line)]).bounds)
    for g in grids:
        for ring in g["rings"]:
            _insert(ring, a)
            _insert(ring, b)
    ka, kb = _key(*a), _key(*b)
    mine = next(g for g in grids if g["code"] == code)
    arc = None
    for ring in mine["rings"]:
        keys = [_key(*p) for p in ring]
        if ka in keys and kb in keys:
            i, j = keys.index(ka), keys.index(kb)
            forward = [ring[(i + n) % len(ring)] for n in range((j - i) % len(ring) + 1)]
            backward = [ring[(i - n) % len(ring)] for n in range((i - j) % len(ring) + 1)]
            length = lambda pts: sum(math.dist(p, q) for p, q in zip(pts, pts[1:], strict=False))  # noqa: E731
            arc = forward if length(forward) <= length(backward) else backward
            break
    if arc is None:
        raise InvalidInput("the path must start and end on the same ring of {code}'s boundary", code=code)
    # Every point of any grid that lies on the arc (a child's corner where its edge meets it) is a point of the arc,
    # and every point of the arc a vertex of every grid whose boundary runs there.
    course = shapely.LineString(arc)
    extra = {(x, y) for g in grids for ring in g["rings"] for x, y in ring
             if course.distance(shapely.Point(x, y)) <= TOL and _key(x, y) not in {_key(*p) for p in arc}}  # fmt: skip
    arc = sorted({_key(*p): p for p in [*arc, *extra]}.values(), key=lambda p: course.project(shapely.Point(p)))
    for g in grids:
        for ring in g["rings"]:
            for p in arc[1:-1]:
                _insert(ring, p)
    # Each point of the arc goes to the same share of the way along the drawn path.
    drawn = shapely.LineString(line)
    along = [course.project(shapely.Point(p), normalized=True) for p in arc]
    along[0], along[-1] = 0.0, 1.0
    mapped = [line[0], *[tuple(drawn.interpolate(f, normalized=True).coords[0]) for f in along[1:-1]], line[-1]]
    bends = [(drawn.project(shapely.Point(p), normalized=True), p) for p in line[1:-1]]
    index = {_key(*p): n for n, p in enumerate(arc)}

    # A grid that meets the edge part of the way (a cell of one of the two grids, its own edge ending on it) would have
    # that edge cut by the new course: not done here; redraw the cells' edges at their level, or merge them first.
    for g in grids:
        for ring in g["rings"]:
            at = [index.get(_key(*p)) for p in ring]
            for k, n in enumerate(at):
                if n is not None and 0 < n < len(arc) - 1 and (at[k - 1] is None or at[(k + 1) % len(at)] is None):
                    raise InvalidInput(
                        "{other} meets this edge part of the way along it: redraw the edges of the cells at their own "
                        "level (or merge them first), so that no grid's edge is cut by the new course",
                        other=g["code"])  # fmt: skip

    def stretch(i: int, j: int) -> list[tuple[float, float]]:
        """The new course from the arc's point *i* to its point *j* (i < j), with the drawn bends between."""
        return [mapped[i], *[p for f, p in bends if along[i] < f < along[j]], mapped[j]]

    edits = []
    for g in grids:
        new_rings, changed = [], False
        for ring in g["rings"]:
            at = [index.get(_key(*p)) for p in ring]
            if all(n is None for n in at):
                new_rings.append(ring)
                continue
            changed = True
            # Start where the ring is off the arc (or anywhere, when all of it is on it), then walk it once.
            first = next((k for k, n in enumerate(at) if n is None), 0)
            order = [(first + k) % len(ring) for k in range(len(ring))]
            out, k = [], 0
            while k < len(order):
                n = at[order[k]]
                if n is None:
                    out.append(ring[order[k]])
                    k += 1
                    continue
                run = [n]  # consecutive points of the arc, going one way along it
                while k + len(run) < len(order) and at[order[k + len(run)]] is not None and \
                        abs(at[order[k + len(run)]] - run[-1]) == 1 and \
                        (len(run) == 1 or at[order[k + len(run)]] - run[-1] == run[1] - run[0]):  # fmt: skip
                    run.append(at[order[k + len(run)]])
                if len(run) == 1:
                    out.append(mapped[n])
                elif run[-1] > run[0]:
                    out.extend(stretch(run[0], run[-1]))
                else:
                    out.extend(stretch(run[-1], run[0])[::-1])
                k += len(run)
            new_rings.append(out)
        if changed:
            shape = _build(g["geom"], new_rings)
            if shape.is_valid and shape.symmetric_difference(g["geom"]).area < TOL * TOL:
                continue  # only a point of the path put on its boundary: the same ground
            if not shape.is_valid:
                raise InvalidInput("the new path would make the boundary of {code} cross itself: draw it so that it "
                                   "crosses no other edge", code=g["code"])  # fmt: skip
            edits.append(Reshape(code=g["code"], version=g["version"], geometry=shape))
    made, moved = reshape_grids(conn, settings, edits, actor=actor)
    return {"versions": made, "before": {e.code: e.version for e in edits}, "incidents_moved": moved}
