"""Grid boundaries: read (GeoJSON, at a date), topology, split, merge, reshape, generate.

Workers see only the grids assigned to them; edits are for planners and admins.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from geogrid import accounts, inputs
from geogrid.api import openapi
from geogrid.api.auth import ANY_ROLE, access
from geogrid.api.context import db, principal, state
from geogrid.api.params import json_body, optional, required
from geogrid.errors import InvalidInput, NotFound
from geogrid.grids import edit, vertices
from geogrid.grids.generate import generate_cells
from geogrid.grids.queries import grid_detail, grids_at_point, grids_geojson
from geogrid.grids.topology import check_topology

bp = Blueprint("grids", __name__, url_prefix="/api")

EDITORS = ("admin", "planner")
GEOJSON = "application/geo+json"
_GEOMETRY = {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}}
_COLLECTION = {"type": "object", "properties": {"type": {"const": "FeatureCollection"}}}
_FEATURE = {"type": "object", "properties": {"type": {"const": "Feature"}}}
_EDIT_RESULT = {
    "type": "object",
    "properties": {
        "created": {"type": "array"}, "retired": {"type": "array"}, "reparented": {"type": "object"},
        "duties": {"type": "array", "description": "duties carried to the new grids"},
        "dropped": {"type": "array", "description": "duties ended with no successor (the plan left them out)"},
        "incidents_moved": {"type": "integer", "description": "open incidents now in another cell"},
        "dry_run": {"type": "boolean"},
    },
}  # fmt: skip
_DRY_RUN = {"type": "boolean", "description": "do everything, answer, and write nothing (a preview)"}


@bp.get("/grids")
@access(*ANY_ROLE)
@openapi.doc(
    query={
        "level": {"type": "string"},
        "parent": {"type": "string"},
        "bbox": {"type": "string", "description": "minlon,minlat,maxlon,maxlat"},
        "point": {
            "type": "string",
            "description": "lon,lat: the grids containing it, top level first (lat,lon "
            "typed the wrong way round is recognised and said: swapped)",
        },
        "at": {"type": "string", "description": "ISO date or date-time: boundaries as they were"},
    },
    response=_COLLECTION,
    media_type=GEOJSON,
)
def list_grids():
    """Grids as a GeoJSON FeatureCollection: current, or as they were at a date."""
    settings = state().settings
    level = inputs.level(request.args.get("level"), settings.levels)
    at = inputs.at(request.args.get("at"), settings.timezone)
    if request.args.get("point") is not None:
        first, second = inputs.position(request.args["point"])
        with db() as conn:
            scope = accounts.visible_grid_codes(conn, principal())
            body = grids_at_point(conn, first, second, levels=settings.levels, level=level, at=at, codes=scope,
                                  srid=settings.metric_srid)  # fmt: skip
        return jsonify(body), 200, {"Content-Type": GEOJSON}
    with db() as conn:
        body = grids_geojson(
            conn,
            level=level,
            parent=request.args.get("parent"),
            bbox=inputs.bbox(request.args.get("bbox")),
            at=at,
            codes=accounts.visible_grid_codes(conn, principal()),
            srid=settings.metric_srid,
        )
    return jsonify(body), 200, {"Content-Type": GEOJSON}


@bp.get("/grids/<code>")
@access(*ANY_ROLE)
@openapi.doc(query={"at": {"type": "string"}}, response=_FEATURE, media_type=GEOJSON)
def get_grid(code: str):
    """One grid with its parent chain, children count, assigned people and area (m²)."""
    with db() as conn:
        body = grid_detail(
            conn,
            code,
            at=inputs.at(request.args.get("at"), state().settings.timezone),
            codes=accounts.visible_grid_codes(conn, principal()),
            srid=state().settings.metric_srid,
        )
    return jsonify(body), 200, {"Content-Type": GEOJSON}


@bp.get("/grids/<code>/topology")
@access(*ANY_ROLE)
@openapi.doc(query={"tolerance_m": {"type": "number", "description": "narrower problems are slivers (m)"}},
             response=_COLLECTION, media_type=GEOJSON)  # fmt: skip
def topology(code: str):
    """Gaps, sibling overlaps and parts outside the parent, under this grid (areas in m², widths in m)."""
    tolerance_m = inputs.tolerance(request.args.get("tolerance_m"))
    with db() as conn:
        scope = accounts.visible_grid_codes(conn, principal())
        if scope is not None and code not in scope:
            raise NotFound("no grid {code}", code=code)
        problems = check_topology(conn, state().settings, code, tolerance_m=tolerance_m)
    body = {
        "type": "FeatureCollection",
        "valid": not problems,
        "features": [p.to_json() for p in problems],
    }
    return jsonify(body), 200, {"Content-Type": GEOJSON}


@bp.post("/grids/<code>/split")
@access(*EDITORS)
@openapi.doc(
    body={
        "type": "object",
        "required": ["line"],
        "properties": {
            "line": {"description": "LineString as GeoJSON geometry or WKT, EPSG:4326"},
            "cascade": {"type": "boolean"},
            "duties": {
                "type": "object",
                "description": "who goes to which piece: {piece number (1 = northmost) or code: [person id, "
                "staff number or name]}; default: every duty of the grid on every piece",
                "additionalProperties": {"type": "array", "items": {"type": ["string", "integer"]}},
            },
            "dry_run": _DRY_RUN,
        },
    },
    response=_EDIT_RESULT,
)
def split(code: str):
    """Split a grid by a line drawn across it; the pieces get new codes."""
    body = json_body()
    line = body.get("line")
    if not isinstance(line, dict | str):
        raise InvalidInput("'line' must be a GeoJSON LineString or WKT text")
    geometry = edit.parse_geometry(line, max_vertices=state().settings.max_vertices)
    with db() as conn:
        result = edit.split_grid(conn, state().settings, code, geometry, cascade=bool(optional(body, "cascade", bool)),
                                 duties=optional(body, "duties", dict), actor=principal().name,
                                 dry_run=bool(optional(body, "dry_run", bool)))  # fmt: skip
    return jsonify(result.to_json())


@bp.post("/grids/merge")
@access(*EDITORS)
@openapi.doc(
    body={
        "type": "object",
        "required": ["codes"],
        "properties": {
            "codes": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "name": {"type": "string"},
            "duties": {
                "type": "array",
                "items": {"type": ["string", "integer"]},
                "description": "the people who keep their duties on the merged grid; default: everyone's",
            },
            "dry_run": _DRY_RUN,
        },
    },
    response=_EDIT_RESULT,
)
def merge():
    """Merge adjacent sibling grids into one new grid."""
    body = json_body()
    codes = required(body, "codes", list)
    if not all(isinstance(c, str) for c in codes):
        raise InvalidInput("'codes' must be a list of grid codes")
    keep = optional(body, "duties", list)
    if keep is not None and not all(isinstance(p, str | int) and not isinstance(p, bool) for p in keep):
        raise InvalidInput("'duties' must be a list of people (id, staff number or name)")
    with db() as conn:
        result = edit.merge_grids(conn, state().settings, codes, name=optional(body, "name", str), keep=keep,
                                  actor=principal().name, dry_run=bool(optional(body, "dry_run", bool)))  # fmt: skip
    return jsonify(result.to_json())


@bp.put("/grids/<code>")
@access(*EDITORS)
@openapi.doc(
    body={
        "type": "object",
        "required": ["geometry", "version"],
        "properties": {
            "geometry": _GEOMETRY,
            "version": {"type": "integer"},
            "also": {
                "type": "array",
                "description": "neighbours reshaped in the same edit",
                "items": {
                    "type": "object",
                    "required": ["code", "geometry", "version"],
                    "properties": {
                        "code": {"type": "string"},
                        "geometry": _GEOMETRY,
                        "version": {"type": "integer"},
                    },
                },
            },
        },
    },
    response={"type": "object", "properties": {"versions": {"type": "object"}, "incidents_moved": {"type": "integer"}}},
)
def reshape(code: str):
    """New boundary for a grid (and optionally its neighbours), from the version read.

    409 when someone else changed the grid since; 422 when the tiling would break.
    """
    body = json_body()
    edits = [_reshape(code, body)]
    also = optional(body, "also", list) or []
    for item in also:
        if not isinstance(item, dict):
            raise InvalidInput("each item of 'also' must be an object with code, geometry, version")
        edits.append(_reshape(required(item, "code", str), item))
    with db() as conn:
        versions, moved = edit.reshape_grids(conn, state().settings, edits, actor=principal().name)
    return jsonify({"versions": versions, "incidents_moved": moved})


def _reshape(code: str, body: dict) -> edit.Reshape:
    return edit.Reshape(
        code=code,
        version=required(body, "version", int),
        geometry=edit.parse_geometry(required(body, "geometry", dict), max_vertices=state().settings.max_vertices),
    )


_POINT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "[lon, lat]"}
_EDITED = {"type": "object", "properties": {
    "versions": {"type": "object", "description": "code -> the new version"},
    "before": {"type": "object", "description": "code -> the version replaced (send `versions` to /restore to undo)"},
    "incidents_moved": {"type": "integer"}}}  # fmt: skip


@bp.get("/grids/<code>/corners")
@access(*EDITORS)
@openapi.doc(
    response={
        "type": "object",
        "properties": {"corners": {"type": "array", "items": _POINT}, "midpoints": {"type": "array", "items": _POINT}},
    }
)
def grid_corners(code: str):
    """The corners of a grid's boundary (where it or a grid meeting it turns), the handles of the planner's map, and
    the points halfway between them (where a corner can be added by dragging)."""
    with db() as conn:
        return jsonify({"code": code, "corners": [list(p) for p in vertices.corners(conn, code)],
                        "midpoints": [list(p) for p in vertices.midpoints(conn, code)]})  # fmt: skip


@bp.post("/grids/<code>/corner/remove")
@access(*EDITORS)
@openapi.doc(body={"type": "object", "required": ["at"], "properties": {"at": _POINT}}, response=_EDITED)
def remove_corner(code: str):
    """Take a corner away: it goes onto the line between the corners before and after it, in every grid that has
    it, as one versioned change."""
    at = _point(json_body(), "at")
    with db() as conn:
        return jsonify(vertices.remove_corner(conn, state().settings, code, at, actor=principal().name))


@bp.post("/grids/corner")
@access(*EDITORS)
@openapi.doc(body={"type": "object", "required": ["from", "to"], "properties": {"from": _POINT, "to": _POINT}},
             response=_EDITED)  # fmt: skip
def move_corner():
    """Move a corner in every grid whose boundary passes through it (neighbours, parents), with the edges that end
    at it: one versioned change; 422 naming what would break when the tiling would."""
    body = json_body()
    source, target = _point(body, "from"), _point(body, "to")
    with db() as conn:
        return jsonify(vertices.move_corner(conn, state().settings, source, target, actor=principal().name))


@bp.post("/grids/<code>/reshape")
@access(*EDITORS)
@openapi.doc(body={"type": "object", "required": ["path"], "properties": {"path": _GEOMETRY}}, response=_EDITED)
def reshape_edge(code: str):
    """Replace the part of a grid's boundary between the ends of a drawn path by the path, on both sides of the
    shared edge (and on the parents' when it is theirs too): one versioned change, tiling checked."""
    line = edit.parse_geometry(required(json_body(), "path", dict), max_vertices=state().settings.max_vertices)
    if line.geom_type != "LineString":
        raise InvalidInput("the path is a LineString from the boundary to the boundary")
    with db() as conn:
        return jsonify(vertices.reshape_edge(conn, state().settings, code, [(x, y) for x, y, *_ in line.coords],
                                             actor=principal().name))  # fmt: skip


@bp.post("/grids/restore")
@access(*EDITORS)
@openapi.doc(body={"type": "object", "required": ["versions"], "properties": {"versions": {"type": "object"}}},
             response=_EDITED)  # fmt: skip
def restore():
    """Undo an edit: the grids of ``versions`` (code -> the version the edit made) go back to the shapes before,
    as new versions; 409 when one was changed since."""
    asked = required(json_body(), "versions", dict)
    if not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in asked.items()):
        raise InvalidInput("versions maps grid codes to version numbers")
    with db() as conn:
        return jsonify(vertices.restore(conn, state().settings, asked, actor=principal().name))


def _point(body: dict, name: str) -> tuple[float, float]:
    value = required(body, name, list)
    if len(value) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise InvalidInput("field {name!r} must be [lon, lat]", name=name)
    lon, lat = float(value[0]), float(value[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput("field {name!r} is out of range: [lon, lat] in degrees", name=name)
    return lon, lat


_FILE_TYPES = {"geojson": ".geojson", "json": ".geojson", "zip": ".zip", "shp": ".zip", "gpkg": ".gpkg"}


@bp.post("/grids/import")
@access(*EDITORS)
@openapi.doc(
    query={
        "level": {"type": "string"}, "format": {"type": "string", "enum": sorted(_FILE_TYPES)},
        "code_field": {"type": "string"}, "name_field": {"type": "string"}, "parent_field": {"type": "string"},
        "parent": {"type": "string"}, "crs": {"type": "string"}, "layer": {"type": "string"},
        "make_valid": {"type": "boolean"}, "snap_to_parent": {"type": "boolean"},
        "dry_run": {"type": "boolean", "description": "say what it would do; write nothing"},
        "skip_refused": {"type": "boolean", "description": "leave out features that cannot be imported (with the "
                         "reason, in `refused`) and import the rest"},
    },
    response={"type": "object"},
)  # fmt: skip
def import_file():
    """Import a boundary file sent as the body (GeoJSON, a zipped Shapefile, a GeoPackage), or with ``dry_run``
    only say what it would do: new, changed (with the ground moved), unchanged, and the tiling check after."""
    import tempfile
    from pathlib import Path

    from geogrid.grids.importer import import_grids
    from geogrid.grids.io import read_boundaries

    args = request.args
    fmt = (args.get("format") or "").lower()
    if fmt not in _FILE_TYPES:
        raise InvalidInput("say the file's format: ?format=geojson, zip (a Shapefile) or gpkg")
    level = args.get("level") or ""
    settings = state().settings
    if level not in settings.levels:
        raise InvalidInput("unknown level {level!r}; levels are {levels}", level=level,
                           levels=", ".join(settings.levels))  # fmt: skip
    data = request.get_data(cache=False)
    if not data:
        raise InvalidInput("the request body is empty; send the file as the body")
    flags = {name: _flag(args, name) for name in ("make_valid", "snap_to_parent", "dry_run", "skip_refused")}
    with tempfile.TemporaryDirectory(prefix="geogrid-import-") as folder:
        path = Path(folder) / ("upload" + _FILE_TYPES[fmt])
        path.write_bytes(data)
        frame = read_boundaries(path, crs=args.get("crs") or None, layer=args.get("layer") or None,
                                max_vertices=settings.max_vertices)  # fmt: skip
        with db() as conn:
            report = import_grids(
                conn, frame, level=level, settings=settings, code_field=args.get("code_field") or None,
                name_field=args.get("name_field") or None, parent_field=args.get("parent_field") or None,
                parent_code=args.get("parent") or None, actor=principal().name, **flags,
            )  # fmt: skip
    return jsonify({"features": len(frame), **report.to_json()})


def _flag(args, name: str) -> bool:
    value = (args.get(name) or "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidInput("{name} must be true or false", name=name)
    return value in ("true", "1")


@bp.post("/grids/<code>/recode")
@access(*EDITORS)
@openapi.doc(body={"type": "object", "required": ["code", "version"], "properties": {
    "code": {"type": "string", "description": "the new code"}, "version": {"type": "integer"},
    "dry_run": {"type": "boolean"}}}, response=_EDIT_RESULT)  # fmt: skip
def recode(code: str):
    """A new code for a grid (the grids below whose codes begin with it follow): the old codes retired, duties and
    open incidents following; ``dry_run`` says which codes would change."""
    body = json_body()
    with db() as conn:
        result = edit.recode_grid(conn, state().settings, code, required(body, "code", str),
                                  version=required(body, "version", int), actor=principal().name,
                                  dry_run=optional(body, "dry_run", bool) or False)  # fmt: skip
    return jsonify(result.to_json())


@bp.post("/grids/<code>/rename")
@access(*EDITORS)
@openapi.doc(body={"type": "object", "required": ["name", "version"],
                   "properties": {"name": {"type": "string"}, "version": {"type": "integer"}}},
             response={"type": "object",
                       "properties": {"code": {"type": "string"}, "version": {"type": "integer"}}})  # fmt: skip
def rename(code: str):
    """A new name for a grid (a new version with the same ground); 409 if the version read is not the current one."""
    body = json_body()
    with db() as conn:
        made = edit.rename_grid(conn, code, required(body, "name", str), version=required(body, "version", int))
    return jsonify({"code": code, "version": made})


@bp.post("/grids/<code>/generate")
@access(*EDITORS)
@openapi.doc(
    body={
        "type": "object",
        "properties": {
            "shape": {"type": "string", "enum": ["square", "hex", "voronoi"]},
            "area_m2": {"type": "number", "exclusiveMinimum": 0},
            "balanced": {"type": "integer", "minimum": 1},
            "weights": {"description": "GeoJSON FeatureCollection of points"},
            "weight_field": {"type": "string"},
            "dry_run": {"type": "boolean", "description": "say which cells (with their shapes); write nothing"},
        },
    },
    response=_EDIT_RESULT,
)
def generate(code: str):
    """Generate the cells of a grid: squares or hexagons of an area, or K balanced cells (Voronoi regions round
    the settlements with ``shape`` voronoi); ``dry_run`` previews them."""
    body = json_body()
    balanced = optional(body, "balanced", int)
    weights = None
    if balanced is not None and body.get("weights") is not None:
        weights = points_from_geojson(body["weights"], optional(body, "weight_field", str))
    area = body.get("area_m2")
    if area is not None and (isinstance(area, bool) or not isinstance(area, int | float)):
        raise InvalidInput("'area_m2' must be a number")
    with db() as conn:
        result = generate_cells(
            conn, state().settings, code,
            shape=optional(body, "shape", str) or "square", area_m2_target=area,
            balanced=balanced, weights=weights, actor=principal().name,
            dry_run=optional(body, "dry_run", bool) or False,
        )  # fmt: skip
    return jsonify(result.to_json()), 200 if result.dry_run else 201


def points_from_geojson(collection, weight_field: str | None) -> list[tuple[float, float, float]]:
    """(lon, lat, weight) from a GeoJSON FeatureCollection of points."""
    if not isinstance(collection, dict) or not isinstance(collection.get("features"), list):
        raise InvalidInput("'weights' must be a GeoJSON FeatureCollection")
    out = []
    for n, feature in enumerate(collection["features"], start=1):
        geometry = (feature or {}).get("geometry") or {}
        coords = geometry.get("coordinates")
        if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
            raise InvalidInput("weights feature {n} is not a Point", n=n)
        weight = ((feature.get("properties") or {}).get(weight_field) if weight_field else 1) or 0
        if not all(isinstance(v, int | float) for v in (*coords[:2], weight)):
            raise InvalidInput("weights feature {n} has a non-numeric coordinate or weight", n=n)
        out.append((float(coords[0]), float(coords[1]), float(weight)))
    return out
