"""Planners' edits: split a grid by a line, merge adjacent siblings, reshape boundaries.

Each edit runs in the caller's transaction through :mod:`geogrid.grids.versions`
(retire what it replaces, write new versions), so history is kept and ``at=`` queries
see the old ground. What hangs on the grids follows in the same transaction: the
duties of a split cell go to each piece and those of merged cells to the merged one
(unless the planner says who goes where), and the open incidents of a retired cell
are assigned again, each move an event naming both cells and the edit. A *dry run*
does all of it and rolls it back, so a planner sees the pieces, who goes where and
how many incidents would move before anything is written. Geometry editing is done
with Shapely; the tiling checks run in PostGIS.
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

from geogrid import people
from geogrid.config import Settings
from geogrid.errors import Conflict, GeogridError, InvalidInput
from geogrid.grids import versions
from geogrid.grids.codes import check_scheme, next_codes, reading_order
from geogrid.grids.metric import area_m2, metric_srid
from geogrid.grids.topology import TopologyProblem, check_topology
from geogrid.grids.versions import GridRow, lock_current


@dataclasses.dataclass
class EditResult:
    """What an edit did (or, in a dry run, would do).

    New grids (code -> area m²), retired codes, re-parented children, the duties carried
    to the new grids and those the planner's plan ended, and how many open incidents
    moved to another cell. A dry run also has each new grid's GeoJSON geometry.
    """

    created: dict[str, float] = dataclasses.field(default_factory=dict)
    retired: list[str] = dataclasses.field(default_factory=list)
    reparented: dict[str, str] = dataclasses.field(default_factory=dict)
    duties: list[dict] = dataclasses.field(default_factory=list)
    dropped: list[dict] = dataclasses.field(default_factory=list)
    incidents_moved: int = 0
    dry_run: bool = False
    geometries: dict[str, dict] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        """Plain dict for the API."""
        return {
            "created": [{"code": c, "area_m2": round(a, 1), **({"geometry": self.geometries[c]}
                         if c in self.geometries else {})} for c, a in self.created.items()],
            "retired": self.retired,
            "reparented": self.reparented,
            "duties": self.duties,
            "dropped": self.dropped,
            "incidents_moved": self.incidents_moved,
            "dry_run": self.dry_run,
        }  # fmt: skip


def run_or_preview(conn: Connection, dry_run: bool, work: Callable[[], EditResult]) -> EditResult:
    """Run *work*; in a dry run inside a savepoint rolled back afterwards, with the new grids' shapes."""
    if not dry_run:
        return work()
    with conn.begin_nested() as savepoint:
        result = work()
        rows = conn.execute(
            sa.text("SELECT code, ST_AsGeoJSON(geom, 7) FROM grids WHERE valid_to IS NULL AND code = ANY(:codes)"),
            {"codes": list(result.created)},
        ).all()
        result.geometries = {code: json.loads(geometry) for code, geometry in rows}
        result.dry_run = True
        savepoint.rollback()
    return result


def follow_change(conn: Connection, settings: Settings, result: EditResult, moves: dict[str, list[str]],
                  retired_ids: list[int], *, reason: str, actor: str, plan: dict[str, set[int]] | None = None,
                  near_ids: list[int] | None = None) -> None:  # fmt: skip
    """Carry the duties of the grids *moves* retires to those replacing them, and assign again the open
    incidents of the versions *retired_ids* (and any near the new ground of *near_ids*)."""
    from geogrid.incidents.intake import reassign

    if moves:
        carried, dropped = people.carry_duties(conn, moves, reason=reason, plan=plan)
        result.duties += carried
        result.dropped += dropped
    result.incidents_moved += reassign(conn, settings, grid_ids=retired_ids, near_ids=near_ids, actor=actor,
                                       reason=reason)  # fmt: skip


# -- split ---------------------------------------------------------------------------


def split_grid(
    conn: Connection,
    settings: Settings,
    code: str,
    line: BaseGeometry,
    *,
    cascade: bool = False,
    duties: dict[str, list] | None = None,
    actor: str = "system",
    dry_run: bool = False,
) -> EditResult:
    """Split current grid *code* by *line* (EPSG:4326) into new grids with new codes.

    The line must cross the grid from edge to edge. Children go to the piece that
    holds them; a child the line cuts is refused unless *cascade*, which splits it too.
    The pieces' areas sum to the original's within 0.01%. The pieces are numbered from
    north to south (then west to east) and take the next free codes in that order.

    Every duty on the grid goes to each piece, unless *duties* says who goes where:
    ``{piece: [person, ...]}`` with a piece's number (``"1"``) or code (from a dry run)
    and people by id, staff number or name (holders of a duty on the grid); a holder
    named for no piece loses the duty (it ends, kept in the history).
    """
    if line.geom_type not in ("LineString", "MultiLineString"):
        raise InvalidInput("a split needs a LineString, not a {geom_type}", geom_type=line.geom_type)

    def work() -> EditResult:
        grid = lock_current(conn, code)
        if grid.parent_code is None:
            raise InvalidInput("{code} is a top-level grid; split the grids below it instead", code=code)
        result = EditResult()
        _split(conn, settings, grid, line, cascade, lambda piece: grid.parent_code, result, actor, duties)
        return result

    return run_or_preview(conn, dry_run, work)


def _split(conn, settings, grid: GridRow, line, cascade: bool, parent_of: Callable, result, actor: str,
           duties: dict[str, list] | None = None) -> None:  # fmt: skip
    pieces = [g for g in shapely_split(grid.geom, line).geoms if g.area > 0]
    if len(pieces) < 2:
        raise InvalidInput(
            "the line does not cross grid {code} from edge to edge; draw it from outside the boundary, "
            "across, to outside again",
            code=grid.code,
        )
    srid = metric_srid(grid.geom, settings)
    versions.retire(conn, [grid.id])
    result.retired.append(grid.code)
    new: list[tuple[str, BaseGeometry]] = []
    for piece in [pieces[i] for i in reading_order(pieces)]:  # numbered west to east, north to south
        parent = parent_of(piece)
        piece_code = next_codes(conn, settings, parent, 1)[0]
        attrs = {**grid.attributes, "split_from": grid.code}
        versions.insert(conn, piece_code, f"{grid.name} {len(new) + 1}", grid.level, parent, piece, attrs)
        new.append((piece_code, piece))
        result.created[piece_code] = area_m2(piece, srid)
    before, after = area_m2(grid.geom, srid), sum(area_m2(p, srid) for _, p in new)
    if abs(after - before) > 1e-4 * before:
        raise GeogridError(
            "split of {code} changed the area: {before:.1f} -> {after:.1f} m²",
            code=grid.code,
            before=before,
            after=after,
        )

    def holder(geom: BaseGeometry) -> str:
        return max(new, key=lambda item: item[1].intersection(geom).area)[0]

    cut, retired_ids = [], [grid.id]
    for child in versions.children(conn, grid.code):
        shares = [area_m2(p.intersection(child.geom), srid) for _, p in new]
        if sum(share >= settings.sliver_m2 for share in shares) <= 1:
            versions.reparent(conn, child, holder(child.geom))
            result.reparented[child.code] = holder(child.geom)
            retired_ids.append(child.id)
        elif cascade:
            _split(conn, settings, child, line, cascade, holder, result, actor)
        else:
            cut.append(child.code)
    if cut:
        raise InvalidInput(
            'the line cuts the child grids {cut} of {code}; split them too with --cascade (API: "cascade": true)',
            cut_children=cut,
            cut=", ".join(cut),
            code=grid.code,
        )
    codes = [c for c, _ in new]
    plan = _piece_plan(conn, grid.code, codes, duties) if duties is not None else None
    follow_change(conn, settings, result, {grid.code: codes}, retired_ids, reason=f"split of {grid.code}", actor=actor,
            plan=plan)  # fmt: skip


def _piece_plan(conn: Connection, code: str, pieces: list[str], duties: dict[str, list]) -> dict[str, set[int]]:
    """Who goes to which piece: ``{piece number or code: [person refs]}`` -> ``{piece code: {person ids}}``."""
    if not isinstance(duties, dict):
        raise InvalidInput("'duties' must map each piece (its number or code) to a list of people")
    plan: dict[str, set[int]] = {piece: set() for piece in pieces}
    for key, refs in duties.items():
        key = str(key).strip()
        if key.isdigit() and 1 <= int(key) <= len(pieces):
            piece = pieces[int(key) - 1]
        elif key in plan:
            piece = key
        elif key.isdigit():
            raise InvalidInput(
                "the split of {code} makes {n_pieces} pieces (1-{n_pieces}), not a piece {key}",
                code=code,
                n_pieces=len(pieces),
                key=key,
            )
        else:
            raise Conflict(
                "the split of {code} now makes the pieces {piece_codes}, not {key}: someone changed the grids "
                "since the preview; look at the preview again",
                pieces=pieces,
                code=code,
                piece_codes=", ".join(pieces),
                key=key,
            )
        if not isinstance(refs, list):
            raise InvalidInput("piece {key}: give a list of people", key=key)
        plan[piece] |= {people.find_person(conn, ref) for ref in refs}
    return plan


# -- merge ---------------------------------------------------------------------------


def merge_grids(conn: Connection, settings: Settings, codes: list[str], *, name: str | None = None,
                keep: list | None = None, actor: str = "system", dry_run: bool = False) -> EditResult:  # fmt: skip
    """Merge adjacent sibling grids into one new grid; their children move to it.

    The merged grid gets one duty per person and duty held on any of the merged grids,
    or, with *keep* (people by id, staff number or name), only those people's.
    """
    codes = list(dict.fromkeys(codes))
    if len(codes) < 2:
        raise InvalidInput("a merge needs at least two different grid codes")

    def work() -> EditResult:
        grids = [lock_current(conn, code) for code in codes]
        parents = {g.parent_code for g in grids}
        levels = {g.level for g in grids}
        if len(parents) != 1 or len(levels) != 1:
            described = ", ".join(f"{g.code} ({g.level} in {g.parent_code})" for g in grids)
            raise InvalidInput(
                "only siblings (same parent, same level) can be merged: {described}", described=described
            )
        parent = parents.pop()
        if parent is None:
            raise InvalidInput("top-level grids cannot be merged")
        merged = shapely.union_all([g.geom for g in grids])
        if merged.geom_type != "Polygon":
            parts = list(getattr(merged, "geoms", [merged]))
            groups = [sorted(g.code for g in grids if g.geom.intersection(part).area > 0) for part in parts]
            raise InvalidInput(
                "the grids are not all adjacent (they must share an edge): separate groups {groups}",
                groups=" | ".join(", ".join(group) for group in groups),
            )
        srid = metric_srid(merged, settings)
        new_code = next_codes(conn, settings, parent, 1)[0]
        versions.retire(conn, [g.id for g in grids])
        versions.insert(conn, new_code, name or "+".join(g.name for g in grids), grids[0].level, parent, merged,
                        {"merged_from": codes})  # fmt: skip
        result = EditResult(created={new_code: area_m2(merged, srid)}, retired=codes)
        retired_ids = [g.id for g in grids]
        for grid in grids:
            for child in versions.children(conn, grid.code):
                versions.reparent(conn, child, new_code)
                result.reparented[child.code] = new_code
                retired_ids.append(child.id)
        plan = None if keep is None else {new_code: {people.find_person(conn, ref) for ref in keep}}
        follow_change(conn, settings, result, {code: [new_code] for code in codes}, retired_ids,
                reason=f"merge of {', '.join(codes)}", actor=actor, plan=plan)  # fmt: skip
        return result

    return run_or_preview(conn, dry_run, work)


# -- reshape -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reshape:
    """A new boundary for *code*, made from the *version* the client read."""

    code: str
    version: int
    geometry: BaseGeometry


def reshape_grids(conn: Connection, settings: Settings, edits: list[Reshape], *,
                  actor: str = "system") -> tuple[dict[str, int], int]:  # fmt: skip
    """Give grids new boundaries together; returns their new versions and how many open incidents moved.

    409 (Conflict) when a version is stale; 422 when the result would break the tiling
    of a parent or of the grids' own children, naming the new problems. Duties stay
    (same codes); incidents on ground that changed hands move to the cell now holding them.
    """
    if not edits:
        raise InvalidInput("nothing to reshape")
    rows = []
    for edit in edits:
        grid = lock_current(conn, edit.code)
        if grid.version != edit.version:
            raise Conflict(
                "grid {code} was changed by someone else: you edited version {version}, the current one is "
                "{current}; reload and try again",
                current_version=grid.version,
                code=edit.code,
                version=edit.version,
                current=grid.version,
            )
        rows.append(grid)
    for edit in edits:
        _check_polygon(conn, edit.code, edit.geometry)
    scopes = {g.parent_code for g in rows if g.parent_code} | {g.code for g in rows}
    before = _problem_keys(conn, settings, scopes)
    with conn.begin_nested() as savepoint:
        made, new_ids = {}, []
        for grid, edit in zip(rows, edits, strict=True):
            versions.retire(conn, [grid.id])
            new_ids.append(versions.insert(conn, grid.code, grid.name, grid.level, grid.parent_code, edit.geometry,
                                           grid.attributes, version=grid.version + 1))  # fmt: skip
            made[grid.code] = grid.version + 1
        new = [p for p in _problems(conn, settings, scopes) if _key(p) not in before]
        if new:
            savepoint.rollback()
            raise InvalidInput(
                "the new boundary would break the tiling: {listed}",
                problems={"type": "FeatureCollection", "features": [p.to_json() for p in new]},
                listed="; ".join(p.describe() for p in new),
            )
    result = EditResult()
    follow_change(
        conn,
        settings,
        result,
        {},
        [g.id for g in rows],
        near_ids=new_ids,
        actor=actor,
        reason=f"new boundary of {', '.join(made)}",
    )
    return made, result.incidents_moved


def rename_grid(conn: Connection, code: str, name: str, *, version: int) -> int:
    """Give grid *code* a new name from the version read (same ground, same parent, a new version); the new
    version number. 409 when someone changed it since; 422 for an empty or overlong name."""
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise InvalidInput("a grid's name is 1 to 100 characters")
    grid = lock_current(conn, code)
    if grid.version != version:
        raise Conflict("grid {code} was changed by someone else: you edited version {version}, the current one is "
                       "{current}; reload and try again", code=code, version=version, current=grid.version)  # fmt: skip
    return versions.rename(conn, code, name)


def recode_grid(conn: Connection, settings: Settings, code: str, new_code: str, *, version: int,
                actor: str = "system", dry_run: bool = False) -> EditResult:  # fmt: skip
    """Give grid *code* the code *new_code* from the version read: the same ground under a new code.

    The old code is retired (kept in the history, never given to other ground) and the
    grid written again under the new one; the grids below whose codes begin with the
    old one (the code schemes build a child's code on its parent's) take the new prefix
    the same way, and the others a new version under their new parent. Duties follow
    the codes, open incidents their ground; one change. 409 on a stale version; 422 for a
    taken or malformed code.
    """
    new_code = new_code.strip()
    if not new_code or len(new_code) > 64 or not all(c.isalnum() or c in "-_." for c in new_code):
        raise InvalidInput("a grid code is 1 to 64 letters, digits, '-', '_' or '.'")
    grid = lock_current(conn, code)
    if grid.version != version:
        raise Conflict("grid {code} was changed by someone else: you edited version {version}, the current one is "
                       "{current}; reload and try again", code=code, version=version, current=grid.version)  # fmt: skip
    if new_code == code:
        raise InvalidInput("{code} already has that code", code=code)
    check_scheme(settings, new_code, grid.level, grid.parent_code)

    def work() -> EditResult:
        below = conn.execute(
            sa.text("SELECT d.code, d.depth FROM geogrid_descendants(ARRAY[CAST(:c AS text)]) d WHERE d.depth > 0 "
                    "ORDER BY d.depth, d.code"),
            {"c": code},
        ).all()  # fmt: skip
        renamed = {code: new_code} | {c: new_code + c[len(code) :] for c, _ in below if c.startswith(code)}
        taken = conn.execute(sa.text("SELECT DISTINCT code FROM grids WHERE code = ANY(:c)"),
                             {"c": list(renamed.values())}).scalars().all()  # fmt: skip
        if taken:
            raise Conflict("code {codes} is taken (a code once used is never given to other ground)",
                           codes=", ".join(sorted(taken)))  # fmt: skip
        result, retired_ids, new_ids = EditResult(), [], []
        for old in [code, *(c for c, _ in below)]:
            row = lock_current(conn, old)
            parent = renamed.get(row.parent_code, row.parent_code) if old != code else row.parent_code
            if old in renamed:
                versions.retire(conn, [row.id])
                new_ids.append(versions.insert(conn, renamed[old], row.name, row.level, parent, row.geom,
                                               row.attributes))  # fmt: skip
                result.created[renamed[old]] = area_m2(row.geom, metric_srid(row.geom, settings))
                result.retired.append(old)
                retired_ids.append(row.id)
            elif parent != row.parent_code:
                versions.reparent(conn, row, parent)
                result.reparented[old] = parent
                retired_ids.append(row.id)
        follow_change(conn, settings, result, {old: [new] for old, new in renamed.items()}, retired_ids,
                      near_ids=new_ids, actor=actor, reason=f"{code} recoded as {new_code}")  # fmt: skip
        return result

    return run_or_preview(conn, dry_run, work)


def _problems(conn, settings, scopes) -> list[TopologyProblem]:
    return [p for code in sorted(scopes) for p in check_topology(conn, settings, code, deep=False)]


def _key(problem: TopologyProblem) -> tuple:
    # Areas are rounded so that an unchanged, pre-existing problem is not "new".
    return (problem.kind, problem.parent_code, problem.codes, round(problem.area_m2))


def _problem_keys(conn, settings, scopes) -> set[tuple]:
    return {_key(p) for p in _problems(conn, settings, scopes)}


def _check_polygon(conn, code: str, geom: BaseGeometry) -> None:
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        raise InvalidInput("the new boundary of {code} must be a Polygon or MultiPolygon", code=code)
    detail = conn.execute(
        sa.text(
            "SELECT valid, reason, ST_X(location), ST_Y(location) FROM ST_IsValidDetail(ST_GeomFromWKB(:wkb, 4326))"
        ),
        {"wkb": shapely.to_wkb(geom)},
    ).one()
    if not detail.valid:
        where = f" at {detail[2]:.7f} {detail[3]:.7f}" if detail[2] is not None else ""
        raise InvalidInput(
            "the new boundary of {code} is invalid: {reason}{where}", code=code, reason=detail.reason, where=where
        )


# -- geometry input ------------------------------------------------------------------

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
            raise InvalidInput("the geometry is nested more than {MAX_NESTING} levels deep", MAX_NESTING=MAX_NESTING)
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
                raise InvalidInput(
                    "the geometry has more than {max_vertices:,} vertices (GEOGRID_MAX_VERTICES)",
                    max_vertices=max_vertices,
                )
            geom = shapely.from_wkt(text)
            obj = None
        if obj is not None:
            limit = max_vertices if max_vertices is not None else 10**9  # nesting is bounded either way
            if _count_positions(obj, limit) > limit:
                raise InvalidInput("the geometry has more than {limit:,} vertices (GEOGRID_MAX_VERTICES)", limit=limit)
        if obj is not None:
            if obj.get("type") == "Feature":
                obj = obj.get("geometry") or {}
            if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
                raise InvalidInput("a GeoJSON geometry needs a 'type' (and 'coordinates')")
            geom = shapely.from_geojson(json.dumps(obj))
    except (ValueError, TypeError, AttributeError, RecursionError, shapely.errors.GEOSException) as exc:
        raise InvalidInput("cannot read the geometry (WKT or GeoJSON expected): {exc}", exc=str(exc)[:200]) from exc
    coords = shapely.get_coordinates(geom)
    if coords.size == 0:
        raise InvalidInput("the geometry is empty")
    # NaN compares false, so this also refuses NaN and infinities.
    if not ((abs(coords[:, 0]) <= 180).all() and (abs(coords[:, 1]) <= 90).all()):
        raise InvalidInput("geometry coordinates must be finite longitude/latitude (EPSG:4326)")
    return geom
