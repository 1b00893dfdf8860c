"""Every error is application/problem+json with a clear detail; the OpenAPI document is valid."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from geogrid.api import create_app
from geogrid.api.auth import PUBLIC, access
from tests.conftest import bearer


def assert_problem(response, status: int, detail_has: str = ""):
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["status"] == status
    assert body["title"] and body["type"] == "about:blank"
    assert isinstance(body["detail"], str) and body["detail"]
    assert detail_has in body["detail"]
    return body


@pytest.fixture
def admin_token(make_user):
    return make_user("admin")[1]


def test_401_403_404_405(client, make_user, admin_token):
    assert_problem(client.get("/api/me"), 401, "Bearer")
    assert_problem(client.get("/api/me", headers=bearer("gg_nonsense")), 401, "unknown or revoked")
    _, worker = make_user("worker")
    assert_problem(client.get("/api/users", headers=bearer(worker)), 403, "worker")
    assert_problem(client.get("/api/nothing-here", headers=bearer(admin_token)), 404, "/api/nothing-here")
    assert_problem(client.get("/api/grids/NOPE", headers=bearer(admin_token)), 404, "NOPE")
    response = client.delete("/api/users", headers=bearer(admin_token))
    assert_problem(response, 405, "DELETE")
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        ({"data": "{not json", "content_type": "application/json"}, "not valid JSON"),
        ({"data": "name=x", "content_type": "application/x-www-form-urlencoded"}, "as JSON"),
        ({"json": ["a", "list"]}, "JSON object"),
        ({"json": {"role": "planner"}}, "missing required field 'name'"),
        ({"json": {"name": "x", "role": "emperor"}}, "unknown role"),
        ({"json": {"name": "x", "role": "admin", "person_id": True}}, "must be a int"),
        ({"json": {"name": "'; DROP TABLE users; --", "role": "admin"}}, "user names are"),
    ],
)
def test_422_on_bad_input(client, admin_token, kwargs, detail):
    response = client.post("/api/users", headers=bearer(admin_token), **kwargs)
    assert_problem(response, 422, detail)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        # Both found by tests/test_fuzz_api.py: a NUL in text, a number past bigint.
        ("GET", "/api/audit?actor=%00x", None),
        ("POST", "/api/users", {"name": "big", "role": "worker", "person_id": 28260113390052147200}),
    ],
)
def test_values_the_database_refuses_are_422_not_500(client, admin_token, method, path, body):
    response = client.open(path, method=method, json=body, headers=bearer(admin_token))
    assert_problem(response, 422, "cannot be stored or searched")


def test_409_on_duplicate(client, admin_token):
    body = {"name": "dup", "role": "planner"}
    assert client.post("/api/users", json=body, headers=bearer(admin_token)).status_code == 201
    assert_problem(client.post("/api/users", json=body, headers=bearer(admin_token)), 409, "already exists")


def test_422_on_unknown_level(client, admin_token):
    assert_problem(client.get("/api/grids?level=galaxy", headers=bearer(admin_token)), 422, "township")


def test_413_over_the_size_limit(settings, conn, make_user):
    small = create_app(settings.__class__(**{**settings.__dict__, "max_upload_bytes": 1024}), bind=conn)
    token = make_user("admin")[1]
    response = small.test_client().post(
        "/api/users", data="x" * 4096, content_type="application/json", headers=bearer(token)
    )
    assert_problem(response, 413, "1024 bytes")


def test_500_hides_the_exception(settings, conn):
    app = create_app(settings, bind=conn)

    @access(PUBLIC)
    def boom():
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/boom", view_func=boom)
    response = app.test_client().get("/api/boom")
    body = assert_problem(response, 500, "server log")
    assert "secret" not in body["detail"]


def test_health_reports_postgis(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert response.json["postgis"].startswith("3.")


def test_openapi_is_valid_and_lists_every_route(app, client):
    spec = client.get("/api/openapi.json").json
    validate(spec)  # raises on an invalid OpenAPI 3.x document
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == routes
    me = spec["paths"]["/api/me"]["get"]
    assert me["security"] and "401" in me["responses"] and "403" in me["responses"]
    assert spec["paths"]["/api/health"]["get"]["security"] == []
    assert spec["paths"]["/api/grids/{code}"]["get"]["parameters"][0]["name"] == "code"


def test_app_refuses_views_without_access_declaration(settings, conn):
    from flask import Blueprint

    from geogrid.api import auth

    app = create_app(settings, bind=conn)
    bp = Blueprint("sneaky", __name__)
    bp.add_url_rule("/api/sneaky", view_func=lambda: "open")
    app.register_blueprint(bp)
    with pytest.raises(RuntimeError, match="sneaky"):
        auth.install(app)


def test_extra_members_never_replace_the_standard_ones(settings, conn):
    from geogrid.errors import Conflict

    app = create_app(settings, bind=conn)

    @access(PUBLIC)
    def clash():
        raise Conflict("it clashes", status="not a number", detail="sneaky", current_version=3)

    app.add_url_rule("/api/clash", view_func=clash)
    body = assert_problem(app.test_client().get("/api/clash"), 409, "it clashes")
    assert body["status"] == 409 and body["current_version"] == 3
