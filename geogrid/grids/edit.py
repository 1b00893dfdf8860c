"""Planners' edits: split a grid by a line, merge adjacent siblings, reshape boundaries.

Each edit runs in the caller's transaction, retires what it replaces (``valid_to``)
and writes new versions, so history is kept and ``at=`` queries see the old ground.
Geometry editing is done with Shapely; the tiling checks run in PostGIS.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from shapely.ops import split as shapely_split
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.errors import Conflict, GeogridError, InvalidInput, NotFound
from geogrid.grids.codes import next_codes
from geogrid.grids.metric import area_m2, metric_srid
from geogrid.grids.topology import TopologyProblem, check_topology


@dataclasses.dataclass(frozen=True)
class GridRow:
    """The current version of a grid, locked for the edit."""

    id: int
    code: str
    name: str
    level: str
    parent_code: str | None
    version: int
    attributes: dict
    geom: BaseGeometry


@dataclasses.dataclass
class EditResult:
    """What an edit did: new grids (code -> area m²), retired codes, re-parented children."""

    created: dict[str, float] = dataclasses.field(default_factory=dict)
    retired: list[str] = dataclasses.field(default_factory=list)
    reparented: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        """Plain dict for the API."""
        return {
            "created": [{"code": c, "area_m2": round(a, 1)} for c, a in self.created.items()],
            "retired": self.retired,
            "reparented": self.reparented,
        }


# -- split ---------------------------------------------------------------------------


def split_grid(
    conn: Connection, settings: Settings, code: str, line: BaseGeometry, *, cascade: bool = False
) -> EditResult:
    """Split current grid *code* by *line* (EPSG:4326) into new grids with new codes.

    The line must cross the grid from edge to edge. Children go to the piece that
    holds them; a child the line cuts is refused unless *cascade*, which splits it too.
    The pieces' areas sum to the original's within 0.01%.
    """
    if line.geom_type not in ("LineString", "MultiLineString"):
        raise InvalidInput(f"a split needs a LineString, not a {line.geom_type}")
    grid = lock_current(conn, code)
    if grid.parent_code is None:
        raise InvalidInput(f"{code} is a top-level grid; split the grids below it instead")
    result = EditResult()
    _split(conn, settings, grid, line, cascade, lambda piece: grid.parent_code, result)
    return result


def _split(conn, settings, grid: GridRow, line, cascade: bool, parent_of: Callable, result) -> None:
    pieces = [g for g in shapely_split(grid.geom, line).geoms if g.area > 0]
    if len(pieces) < 2:
        raise InvalidInput(
            f"the line does not cross grid {grid.code} from edge to edge; draw it from "
            "outside the boundary, across, to outside again"
        )
    srid = metric_srid(grid.geom, settings)
    _retire(conn, [grid.id])
    result.retired.append(grid.code)
    new: list[tuple[str, BaseGeometry]] = []
    for piece in sorted(pieces, key=lambda g: (-g.centroid.y, g.centroid.x)):
        parent = parent_of(piece)
        piece_code = next_codes(conn, parent, 1, settings.code_width)[0]
        attrs = {**grid.attributes, "split_from": grid.code}
        _insert(conn, piece_code, f"{grid.name} {len(new) + 1}", grid.level, parent, piece, attrs)
        new.append((piece_code, piece))
        result.created[piece_code] = area_m2(piece, srid)
    before, after = area_m2(grid.geom, srid), sum(area_m2(p, srid) for _, p in new)
    if abs(after - before) > 1e-4 * before:
        raise GeogridError(f"split of {grid.code} changed the area: {before:.1f} -> {after:.1f} m²")

    def holder(geom: BaseGeometry) -> str:
        return max(new, key=lambda item: item[1].intersection(geom).area)[0]

    cut = []
    for child in _children(conn, grid.code):
        shares = [area_m2(p.intersection(child.geom), srid) for _, p in new]
        if sum(share >= settings.sliver_m2 for share in shares) <= 1:
            _reparent(conn, child, holder(child.geom), result)
        elif cascade:
            _split(conn, settings, child, line, cascade, holder, result)
        else:
            cut.append(child.code)
    if cut:
        raise InvalidInput(
            f"the line cuts the child grids {', '.join(cut)} of {grid.code}; "
            'split them too with --cascade (API: "cascade": true)',
            cut_children=cut,
        )


# -- merge ---------------------------------------------------------------------------


def merge_grids(conn: Connection, settings: Settings, codes: list[str], *, name: str | None = None) -> EditResult:
    """Merge adjacent sibling grids into one new grid; their children move to it."""
    codes = list(dict.fromkeys(codes))
    if len(codes) < 2:
        raise InvalidInput("a merge needs at least two different grid codes")
    grids = [lock_current(conn, code) for code in codes]
    parents = {g.parent_code for g in grids}
    levels = {g.level for g in grids}
    if len(parents) != 1 or len(levels) != 1:
        described = ", ".join(f"{g.code} ({g.level} in {g.parent_code})" for g in grids)
        raise InvalidInput(f"only siblings (same parent, same level) can be merged: {described}")
    parent = parents.pop()
    if parent is None:
        raise InvalidInput("top-level grids cannot be merged")
    merged = shapely.union_all([g.geom for g in grids])
    if merged.geom_type != "Polygon":
        parts = list(getattr(merged, "geoms", [merged]))
        groups = [sorted(g.code for g in grids if g.geom.intersection(part).area > 0) for part in parts]
        raise InvalidInput(
            "the grids are not all adjacent (they must share an edge): separate groups "
            + " | ".join(", ".join(group) for group in groups)
        )
    srid = metric_srid(merged, settings)
    new_code = next_codes(conn, parent, 1, settings.code_width)[0]
    _retire(conn, [g.id for g in grids])
    attrs = {"merged_from": codes}
    _insert(conn, new_code, name or "+".join(g.name for g in grids), grids[0].level, parent,
            merged, attrs)  # fmt: skip
    result = EditResult(created={new_code: area_m2(merged, srid)}, retired=codes)
    for grid in grids:
        for child in _children(conn, grid.code):
            _reparent(conn, child, new_code, result)
    return result


# -- reshape -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reshape:
    """A new boundary for *code*, made from the *version* the client read."""

    code: str
    version: int
    geometry: BaseGeometry


def reshape_grids(conn: Connection, settings: Settings, edits: list[Reshape]) -> dict[str, int]:
    """Give grids new boundaries together; returns their new versions.

    409 (Conflict) when a version is stale; 422 when the result would break the tiling
    of a parent or of the grids' own children, naming the new problems.
    """
    if not edits:
        raise InvalidInput("nothing to reshape")
    rows = []
    for edit in edits:
        grid = lock_current(conn, edit.code)
        if grid.version != edit.version:
            raise Conflict(
                f"grid {edit.code} was changed by someone else: you edited version "
                f"{edit.version}, the current one is {grid.version}; reload and try again",
                current_version=grid.version,
            )
        rows.append(grid)
    for edit in edits:
        _check_polygon(conn, edit.code, edit.geometry)
    scopes = {g.parent_code for g in rows if g.parent_code} | {g.code for g in rows}
    before = _problem_keys(conn, settings, scopes)
    with conn.begin_nested() as savepoint:
        versions = {}
        for grid, edit in zip(rows, edits, strict=True):
            _retire(conn, [grid.id])
            _insert(conn, grid.code, grid.name, grid.level, grid.parent_code, edit.geometry,
                    grid.attributes, version=grid.version + 1)  # fmt: skip
            versions[grid.code] = grid.version + 1
        new = [p for p in _problems(conn, settings, scopes) if _key(p) not in before]
        if new:
            savepoint.rollback()
            raise InvalidInput(
                "the new boundary would break the tiling: " + "; ".join(p.describe() for p in new),
                problems={"type": "FeatureCollection", "features": [p.to_json() for p in new]},
            )
    return versions


def _problems(conn, settings, scopes) -> list[TopologyProblem]:
    return [p for code in sorted(scopes) for p in check_topology(conn, settings, code, deep=False)]


def _key(problem: TopologyProblem) -> tuple:
    # Areas are rounded so that an unchanged, pre-existing problem is not "new".
    return (problem.kind, problem.parent_code, problem.codes, round(problem.area_m2))


def _problem_keys(conn, settings, scopes) -> set[tuple]:
    return {_key(p) for p in _problems(conn, settings, scopes)}


def _check_polygon(conn, code: str, geom: BaseGeometry) -> None:
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        raise InvalidInput(f"the new boundary of {code} must be a Polygon or MultiPolygon")
    detail = conn.execute(
        sa.text(
            "SELECT valid, reason, ST_X(location), ST_Y(location) FROM ST_IsValidDetail(ST_GeomFromWKB(:wkb, 4326))"
        ),
        {"wkb": shapely.to_wkb(geom)},
    ).one()
    if not detail.valid:
        where = f" at {detail[2]:.7f} {detail[3]:.7f}" if detail[2] is not None else ""
        raise InvalidInput(f"the new boundary of {code} is invalid: {detail.reason}{where}")


# -- shared --------------------------------------------------------------------------

_SELECT = (
    "SELECT id, code, name, level, parent_code, version, attributes, ST_AsBinary(geom) AS wkb "
    "FROM grids WHERE valid_to IS NULL"
)


def lock_current(conn: Connection, code: str) -> GridRow:
    """The current version of *code*, locked until the transaction ends."""
    for _ in range(3):
        row = conn.execute(sa.text(f"{_SELECT} AND code = :code FOR UPDATE"), {"code": code}).first()
        if row is not None:
            return _row(row)
        # Under READ COMMITTED, a row retired by a transaction we waited for is skipped;
        # a fresh statement sees the version that replaced it.
        if not conn.execute(
            sa.text("SELECT 1 FROM grids WHERE code = :code AND valid_to IS NULL"), {"code": code}
        ).first():
            break
    raise NotFound(f"no current grid with code {code!r}")


def _children(conn: Connection, code: str) -> list[GridRow]:
    rows = conn.execute(sa.text(f"{_SELECT} AND parent_code = :code ORDER BY code FOR UPDATE"), {"code": code})
    return [_row(r) for r in rows]


def _row(row) -> GridRow:
    return GridRow(row.id, row.code, row.name, row.level, row.parent_code, row.version,
                   row.attributes, shapely.from_wkb(row.wkb))  # fmt: skip


def _retire(conn: Connection, ids: list[int]) -> None:
    conn.execute(sa.text("UPDATE grids SET valid_to = now() WHERE id = ANY(:ids)"), {"ids": ids})


def _insert(conn, code, name, level, parent, geom, attributes, version: int = 1) -> None:
    if geom.geom_type == "Polygon":
        geom = shapely.MultiPolygon([geom])
    conn.execute(
        sa.text(
            "INSERT INTO grids (code, name, level, parent_code, geom, attributes, version) "
            "VALUES (:code, :name, :level, :parent, ST_GeomFromWKB(:wkb, 4326), "
            "CAST(:attributes AS jsonb), :version)"
        ),
        {"code": code, "name": name, "level": level, "parent": parent,
         "wkb": shapely.to_wkb(geom), "attributes": json.dumps(attributes, ensure_ascii=False),
         "version": version},
    )  # fmt: skip


def _reparent(conn, child: GridRow, parent: str, result: EditResult) -> None:
    """A new version of *child* with the same ground under a new parent."""
    _retire(conn, [child.id])
    conn.execute(
        sa.text(
            "INSERT INTO grids (code, name, level, parent_code, geom, attributes, version) "
            "SELECT code, name, level, :parent, geom, attributes, version + 1 FROM grids WHERE id = :id"
        ),
        {"parent": parent, "id": child.id},
    )
    result.reparented[child.code] = parent


#: GeoJSON nests at most ~6 deep (a Feature's MultiPolygon); deeper is refused before
#: GEOS sees it (deeply nested collections can crash it: GEOS #1487).
MAX_NESTING = 20


def _count_positions(obj, limit: int) -> int:
    """Positions (coordinate pairs) in a GeoJSON object, counting no further than past *limit*.

    Raises InvalidInput for nesting deeper than ``MAX_NESTING``.
    """
    count, stack = 0, [(obj, 0)]
    while stack and count <= limit:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            raise InvalidInput(f"the geometry is nested more than {MAX_NESTING} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for k, v in item.items() if k in ("coordinates", "geometries", "geometry"))
        elif isinstance(item, list):
            if item and all(isinstance(v, int | float) for v in item[:2]):
                count += 1
            else:
                stack.extend((v, depth + 1) for v in item)
    return count


def parse_geometry(text: str | dict, *, max_vertices: int | None = None) -> BaseGeometry:
    """A geometry from WKT, a GeoJSON geometry or Feature (string or dict), EPSG:4326.

    More than *max_vertices* points is refused before any geometry is built (a boundary
    of a million vertices would otherwise cost seconds of GEOS work per check).
    """
    try:
        if isinstance(text, dict):
            obj = text
        elif text.lstrip().startswith("{"):
            obj = json.loads(text)
        else:
            if max_vertices is not None and text.count(",") + 1 > max_vertices:
                raise InvalidInput(f"the geometry has more than {max_vertices:,} vertices (GEOGRID_MAX_VERTICES)")
            geom = shapely.from_wkt(text)
            obj = None
        if obj is not None:
            limit = max_vertices if max_vertices is not None else 10**9  # nesting is bounded either way
            if _count_positions(obj, limit) > limit:
                raise InvalidInput(f"the geometry has more than {limit:,} vertices (GEOGRID_MAX_VERTICES)")
        if obj is not None:
            if obj.get("type") == "Feature":
                obj = obj.get("geometry") or {}
            if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
                raise InvalidInput("a GeoJSON geometry needs a 'type' (and 'coordinates')")
            geom = shapely.from_geojson(json.dumps(obj))
    except (ValueError, TypeError, AttributeError, RecursionError, shapely.errors.GEOSException) as exc:
        raise InvalidInput(f"cannot read the geometry (WKT or GeoJSON expected): {str(exc)[:200]}") from exc
    coords = shapely.get_coordinates(geom)
    if coords.size == 0:
        raise InvalidInput("the geometry is empty")
    # NaN compares false, so this also refuses NaN and infinities.
    if not ((abs(coords[:, 0]) <= 180).all() and (abs(coords[:, 1]) <= 90).all()):
        raise InvalidInput("geometry coordinates must be finite longitude/latitude (EPSG:4326)")
    return geom
