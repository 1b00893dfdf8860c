"""``/api/health`` and ``/api/openapi.json``: open to anyone, for monitors and clients."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from geogrid.api import openapi
from geogrid.api.auth import PUBLIC, access
from geogrid.api.context import db
from geogrid.store.db import server_versions
from geogrid.store.migrate import current_revision, head_revision

bp = Blueprint("health", __name__, url_prefix="/api")

_HEALTH = {
    "type": "object",
    "properties": {
        "status": {"type": "string"},
        "postgresql": {"type": "string"},
        "postgis": {"type": "string"},
        "schema": {"type": "string"},
    },
}


@bp.get("/health")
@access(PUBLIC)
@openapi.doc(response=_HEALTH)
def health():
    """Check that the database answers, has PostGIS and is migrated."""
    with db() as conn:
        versions = server_versions(conn)
        revision = current_revision(conn)
    head = head_revision()
    ok = versions["postgis"] != "not installed" and revision == head
    body = {
        "status": "ok" if ok else "degraded",
        "postgresql": versions["postgresql"],
        "postgis": versions["postgis"],
        "schema": f"{revision} (latest {head})",
    }
    return jsonify(body), 200 if ok else 503


@bp.get("/openapi.json")
@access(PUBLIC)
@openapi.doc(response={"type": "object"})
def openapi_document():
    """This API described as OpenAPI 3.1."""
    return jsonify(openapi.build(current_app))
