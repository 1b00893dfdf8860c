"""Generate unit cells inside a grid: a regular tessellation, or K cells around the weight.

K cells come either from weighted bisection (compact, near-equal weight, straight
cuts) or from Voronoi regions around K weighted k-means centres (irregular borders
that follow where people live, like village boundaries drawn around settlements).

Shapes are laid out in metres (the grid's projected CRS) and applied to the grid in
EPSG:4326 by intersection, so the parent's own boundary is kept vertex for vertex
and the cells tile it. Pieces smaller than a fraction of the target area are merged
into the neighbour they share the longest border with.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import numpy as np
import shapely
import sqlalchemy as sa
from shapely import Polygon, box
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.errors import InvalidInput
from geogrid.grids import versions
from geogrid.grids.codes import next_codes, reading_order
from geogrid.grids.edit import EditResult, follow_change, run_or_preview
from geogrid.grids.metric import area_m2, from_metric, metric_srid, to_metric

#: Generating more cells than this in one go is refused (a typo in --area, not a plan).
MAX_CELLS = 20_000
#: Voronoi cells are for villages and grids, not for tessellating a city in one go.
MAX_VORONOI = 2_000


def generate_cells(
    conn: Connection,
    settings: Settings,
    code: str,
    *,
    shape: str = "square",
    area_m2_target: float | None = None,
    balanced: int | None = None,
    weights: list[tuple[float, float, float]] | None = None,
    sliver_fraction: float = 0.3,
    names: Callable[[int], str] | None = None,
    at: dt.datetime | None = None,
    actor: str = "system",
    dry_run: bool = False,
) -> EditResult:
    """Create the children of grid *code* on the level below it (*dry_run*: only say which, with their shapes).

    Either a regular tessellation (*shape* ``square`` or ``hex`` of *area_m2_target*
    m² each, slivers under *sliver_fraction* of it merged into a neighbour), or
    *balanced* cells of near-equal total weight, from (lon, lat, weight) *weights*
    (equal area when there are none). The grid must not have children yet.

    The cells are numbered north to south, then west to east, and named ``names(n)``
    (default: the grid's name and the number); *at* backdates them. The grid's open
    incidents move to the cells that now hold them.
    """
    return run_or_preview(conn, dry_run, lambda: _generate(
        conn, settings, code, shape=shape, area_m2_target=area_m2_target, balanced=balanced, weights=weights,
        sliver_fraction=sliver_fraction, names=names, at=at, actor=actor))  # fmt: skip


def _generate(conn: Connection, settings: Settings, code: str, *, shape, area_m2_target, balanced, weights,
              sliver_fraction, names, at, actor) -> EditResult:  # fmt: skip
    parent = versions.lock_current(conn, code)
    levels = settings.levels
    if parent.level not in levels or levels.index(parent.level) == len(levels) - 1:
        raise InvalidInput("{code} is on the lowest level ({level}); it has no cells", code=code, level=parent.level)
    child_level = levels[levels.index(parent.level) + 1]
    existing = conn.execute(
        sa.text("SELECT count(*) FROM grids WHERE parent_code = :code AND valid_to IS NULL"),
        {"code": code},
    ).scalar_one()
    if existing:
        raise InvalidInput(
            "{code} already has {existing} child grids; merge or retire them first", code=code, existing=existing
        )
    srid = metric_srid(parent.geom, settings)
    if balanced is not None:
        if not 1 <= balanced <= MAX_CELLS:
            raise InvalidInput("--balanced must be between 1 and {MAX_CELLS}", MAX_CELLS=MAX_CELLS)
        if shape == "voronoi":
            if balanced > MAX_VORONOI:
                raise InvalidInput("voronoi makes at most {MAX_VORONOI} cells at a time", MAX_VORONOI=MAX_VORONOI)
            cells = _voronoi(parent.geom, srid, balanced, weights or [])
        else:
            cells = _balanced(parent.geom, srid, balanced, weights or [])
    else:
        if shape not in ("square", "hex"):
            raise InvalidInput("shape must be square or hex (voronoi needs --balanced K), not {shape!r}", shape=shape)
        if area_m2_target is None or not area_m2_target > 0:
            raise InvalidInput("give the target cell area in m² (--area)")
        expected = area_m2(parent.geom, srid) / area_m2_target
        if expected > MAX_CELLS:
            raise InvalidInput(
                "{area_m2_target:g} m² cells would make about {expected:,.0f} cells (limit {MAX_CELLS:,}); "
                "choose a larger area",
                area_m2_target=area_m2_target,
                expected=expected,
                MAX_CELLS=MAX_CELLS,
            )
        cells = _regular(parent.geom, srid, shape, area_m2_target)
        cells = _merge_slivers(cells, srid, sliver_fraction * area_m2_target)
    cells = [cells[i] for i in reading_order(cells)]  # numbered west to east, north to south
    codes = next_codes(conn, settings, code, len(cells))
    result = EditResult()
    for n, (cell_code, cell) in enumerate(zip(codes, cells, strict=True), start=1):
        versions.insert(conn, cell_code, names(n) if names else f"{parent.name} {n}", child_level, code, cell,
                        {"generated": shape if shape == "voronoi" else balanced and "balanced" or shape},
                        at=at)  # fmt: skip
        result.created[cell_code] = area_m2(cell, srid)
    follow_change(conn, settings, result, {}, [parent.id], reason=f"cells generated in {code}", actor=actor)
    return result


def _regular(parent: BaseGeometry, srid: int, shape: str, target: float) -> list[Polygon]:
    minx, miny, maxx, maxy = to_metric(parent, srid).bounds
    if shape == "square":
        side = math.sqrt(target)
        xs = np.arange(minx, maxx + side, side)
        ys = np.arange(miny, maxy + side, side)
        tiles = [box(x, y, x + side, y + side) for x in xs[:-1] for y in ys[:-1]] or [
            box(minx, miny, minx + side, miny + side)
        ]
    else:
        # Pointy-top hexagons: area = 3*sqrt(3)/2 * r².
        r = math.sqrt(2 * target / (3 * math.sqrt(3)))
        w, h = math.sqrt(3) * r, 1.5 * r
        tiles = []
        for row, y in enumerate(np.arange(miny - r, maxy + 2 * r, h)):
            offset = w / 2 if row % 2 else 0.0
            for x in np.arange(minx - w + offset, maxx + w, w):
                tiles.append(
                    Polygon(
                        [
                            (x + r * math.cos(math.radians(a)), y + r * math.sin(math.radians(a)))
                            for a in range(30, 390, 60)
                        ]
                    )  # fmt: skip
                )
    # Vertices only are transformed: an edge shared by two tiles stays the same segment.
    tiles_ll = from_metric(np.array(tiles), srid)
    tree = shapely.STRtree(tiles_ll)
    cells = []
    for index in tree.query(parent, predicate="intersects"):
        cells += _polygons(shapely.intersection(tiles_ll[index], parent))
    return cells


def _weights_in(parent, srid: int, weights: list[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The weights inside *parent*: metric x, y and weight arrays (checked)."""
    pts = np.array([(x, y) for x, y, _ in weights], dtype=float).reshape(-1, 2)
    w = np.array([wt for _, _, wt in weights], dtype=float)
    if pts.size:
        inside = shapely.contains_xy(parent, pts[:, 0], pts[:, 1])
        pts, w = pts[inside], w[inside]
        if (w < 0).any() or not np.isfinite(w).all():
            raise InvalidInput("weights must be finite and not negative")
    metric_pts = to_metric(shapely.MultiPoint(pts), srid, densify=False) if len(pts) else None
    xy = shapely.get_coordinates(metric_pts) if metric_pts is not None else np.empty((0, 2))
    return xy, w


def _balanced(parent, srid: int, k: int, weights: list[tuple[float, float, float]]) -> list[Polygon]:
    xy, w = _weights_in(parent, srid, weights)
    return _bisect(parent, srid, xy, w, k)


def _voronoi(parent, srid: int, k: int, weights: list[tuple[float, float, float]]) -> list[Polygon]:
    """K cells: Voronoi regions of K weighted k-means centres, clipped to *parent*.

    Without weights the grid's area is the weight (an even lattice of points). A
    region cut in several parts by a concave grid keeps its largest part; the others
    join the cell they share the longest border with, so there are exactly K cells.
    """
    xy, w = _weights_in(parent, srid, weights)
    parent_m = to_metric(parent, srid)
    if w.sum() <= 0:
        minx, miny, maxx, maxy = parent_m.bounds
        step = math.sqrt(parent_m.area / max(200 * k, 2000))
        gx, gy = np.meshgrid(np.arange(minx, maxx, step), np.arange(miny, maxy, step))
        xy = np.column_stack([gx.ravel(), gy.ravel()])
        xy = xy[shapely.contains_xy(parent_m, xy[:, 0], xy[:, 1])]
        w = np.ones(len(xy))
    if len(xy) < k:
        raise InvalidInput("not enough weight points inside the grid for {k} cells", k=k)
    centres = _kmeans(xy, w, k)
    minx, miny, maxx, maxy = parent_m.bounds
    pad = (maxx - minx) + (maxy - miny)
    frame = box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    regions = shapely.voronoi_polygons(shapely.MultiPoint(centres), extend_to=frame).geoms
    # Vertices only are transformed (as for regular cells), so shared edges stay shared.
    regions_ll = from_metric(np.array([shapely.segmentize(r, max(pad / 400, 5.0)) for r in regions]), srid)
    mains, rest = [], []
    for region in regions_ll:
        parts = sorted(_polygons(shapely.intersection(region, parent)), key=lambda g: -g.area)
        if parts:
            mains.append(parts[0])
            rest += parts[1:]
    if len(mains) != k:
        raise InvalidInput("cannot make {k} cells in this grid; ask for fewer", k=k)
    for part in rest:
        shared = [(_shared_m(part, cell, srid), i) for i, cell in enumerate(mains)]
        length, i = max(shared)
        if length > 0:
            mains[i] = shapely.union_all([mains[i], part])
    return mains


def _kmeans(xy: np.ndarray, w: np.ndarray, k: int, rounds: int = 40) -> np.ndarray:
    """Weighted k-means centres, deterministic: weighted k-means++ start from a fixed seed, then Lloyd."""
    rng = np.random.default_rng(0)
    p = w / w.sum()
    centres = [xy[rng.choice(len(xy), p=p)]]
    nearest = ((xy - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        score = nearest * w
        choice = rng.choice(len(xy), p=score / score.sum()) if score.sum() > 0 else rng.choice(len(xy))
        centres.append(xy[choice])
        nearest = np.minimum(nearest, ((xy - xy[choice]) ** 2).sum(axis=1))
    centres = np.array(centres)
    for _ in range(rounds):
        tree = shapely.STRtree(shapely.points(centres))
        label = tree.query_nearest(shapely.points(xy), all_matches=False)[1]
        sums = np.zeros((k, 2))
        np.add.at(sums, label, xy * w[:, None])
        mass = np.bincount(label, weights=w, minlength=k)
        moved = np.where(mass[:, None] > 0, sums / np.maximum(mass, 1e-12)[:, None], centres)
        if np.allclose(moved, centres, atol=0.5):
            break
        centres = moved
    return centres


def _bisect(poly, srid, xy: np.ndarray, w: np.ndarray, k: int) -> list[Polygon]:
    """Recursive weighted bisection: compact, contiguous, near-equal pieces.

    Each step cuts across the longer side at the weighted median (equal area when
    there is no weight); when that leaves a piece in two parts (a concave grid), the
    other direction is tried and the cut with fewer parts wins.
    """
    if k == 1:
        return [poly]
    k1 = k // 2
    poly_m = to_metric(poly, srid)
    minx, miny, maxx, maxy = poly_m.bounds
    longer = 0 if maxx - minx >= maxy - miny else 1
    best = None
    for axis in (longer, 1 - longer):
        first, second, side = _cut(poly, poly_m, srid, xy, w, axis, k1 / k)
        parts = _parts(first) + _parts(second)
        if best is None or parts < best[0]:
            best = (parts, first, second, side)
        if parts == 2:
            break
    _, first, second, side = best
    if first.is_empty or second.is_empty:
        raise InvalidInput("cannot balance this many cells in this grid; ask for fewer")
    return _bisect(first, srid, xy[side], w[side], k1) + _bisect(second, srid, xy[~side], w[~side], k - k1)


def _cut(poly, poly_m, srid, xy, w, axis: int, fraction: float):
    """Split *poly* across *axis* leaving *fraction* of the weight (or area) on the low side."""
    minx, miny, maxx, maxy = poly_m.bounds
    lo, hi = (minx, maxx) if axis == 0 else (miny, maxy)
    if w.sum() > 0:
        order = np.argsort(xy[:, axis])
        cum = np.cumsum(w[order])
        i = min(max(int(np.searchsorted(cum, cum[-1] * fraction)), 0), len(order) - 1)
        here = xy[order[i], axis]
        cut = here if i + 1 >= len(order) else (here + xy[order[i + 1], axis]) / 2
    else:
        cut = _area_cut(poly_m, axis, lo, hi, fraction)
    pad = (maxx - minx) + (maxy - miny)
    half = box(minx - pad, miny - pad, cut, maxy + pad) if axis == 0 else box(minx - pad, miny - pad, maxx + pad, cut)
    half_ll = from_metric(shapely.segmentize(half, max(pad / 200, 5.0)), srid)
    return poly.intersection(half_ll), poly.difference(half_ll), xy[:, axis] <= cut


def _parts(geom: BaseGeometry) -> int:
    return len(_polygons(geom))


def _area_cut(poly_m, axis: int, lo: float, hi: float, fraction: float) -> float:
    """The coordinate along *axis* that leaves *fraction* of the area on the low side."""
    minx, miny, maxx, maxy = poly_m.bounds
    total = poly_m.area
    for _ in range(50):
        mid = (lo + hi) / 2
        part = box(minx, miny, mid, maxy) if axis == 0 else box(minx, miny, maxx, mid)
        if poly_m.intersection(part).area < fraction * total:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _merge_slivers(cells: list[Polygon], srid: int, min_area: float) -> list[Polygon]:
    """Merge pieces under *min_area* m² into the neighbour sharing the longest border."""
    cells = list(cells)
    while True:
        areas = [area_m2(c, srid) for c in cells]
        small = [i for i in np.argsort(areas) if areas[i] < min_area]
        if not small or len(cells) == 1:
            return cells
        tree = shapely.STRtree(cells)
        merged = False
        for i in small:
            neighbours = [j for j in tree.query(cells[i], predicate="touches") if j != i]
            shared = [(_shared_m(cells[i], cells[j], srid), j) for j in neighbours]
            shared = [(length, j) for length, j in shared if length > 0]
            if not shared:
                continue
            _, j = max(shared)
            union = shapely.union_all([cells[i], cells[j]])
            cells[j] = union if union.geom_type == "Polygon" else cells[j]
            if union.geom_type == "Polygon":
                del cells[i]
                merged = True
                break
        if not merged:
            return cells


def _shared_m(a: Polygon, b: Polygon, srid: int) -> float:
    """Length in metres of the border two cells share."""
    border = a.boundary.intersection(b.boundary)
    return to_metric(border, srid).length if not border.is_empty else 0.0


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    return [g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "Polygon" and g.area > 0]
