"""Grid boundaries as GeoJSON; workers see only the grids assigned to them."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from geogrid import accounts
from geogrid.api import openapi
from geogrid.api.auth import ANY_ROLE, access
from geogrid.api.context import db, principal, state
from geogrid.errors import InvalidInput
from geogrid.grids.queries import current_grid, current_grids

bp = Blueprint("grids", __name__, url_prefix="/api")

_FEATURE = {"type": "object", "properties": {"type": {"const": "Feature"}}}


@bp.get("/grids")
@access(*ANY_ROLE)
@openapi.doc(
    query={"level": {"type": "string"}},
    response={"type": "object", "properties": {"type": {"const": "FeatureCollection"}}},
    media_type="application/geo+json",
)
def list_grids():
    """Current grids as a GeoJSON FeatureCollection, optionally of one level."""
    level = request.args.get("level")
    levels = state().settings.levels
    if level is not None and level not in levels:
        raise InvalidInput(f"unknown level {level!r}; levels are {', '.join(levels)}")
    with db() as conn:
        scope = accounts.visible_grid_codes(conn, principal())
        body = current_grids(conn, level=level, codes=scope)
    return jsonify(body), 200, {"Content-Type": "application/geo+json"}


@bp.get("/grids/<code>")
@access(*ANY_ROLE)
@openapi.doc(response=_FEATURE, media_type="application/geo+json")
def get_grid(code: str):
    """One current grid as a GeoJSON Feature."""
    with db() as conn:
        scope = accounts.visible_grid_codes(conn, principal())
        body = current_grid(conn, code, codes=scope)
    return jsonify(body), 200, {"Content-Type": "application/geo+json"}
