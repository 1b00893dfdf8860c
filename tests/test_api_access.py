"""Who may call what: every route x every role, anonymous and a revoked token."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from geogrid import accounts
from geogrid.store.models import ROLES
from tests.conftest import bearer

ANON, REVOKED = "anonymous", "revoked"
CALLERS = (ANON, REVOKED, *ROLES)
ALL_ROLES_OK = {ANON: 401, REVOKED: 401, **{r: 200 for r in ROLES}}
ADMIN_ONLY = {ANON: 401, REVOKED: 401, **{r: 403 for r in ROLES}}
EDIT_OK = ADMIN_ONLY | {"admin": 200, "planner": 200}
READERS_OK = ADMIN_ONLY | {"admin": 200, "operator": 200, "supervisor": 200}

# (method, URL rule, concrete path, JSON body text) -> expected status per caller.
MATRIX = {
    ("GET", "/api/health", "/api/health", None): {c: 200 for c in CALLERS} | {REVOKED: 401},
    ("GET", "/api/openapi.json", "/api/openapi.json", None): {c: 200 for c in CALLERS} | {REVOKED: 401},
    ("GET", "/api/me", "/api/me", None): ALL_ROLES_OK,
    ("GET", "/api/users", "/api/users", None): ADMIN_ONLY | {"admin": 200},
    ("GET", "/api/audit", "/api/audit", None): ADMIN_ONLY | {"admin": 200},
    ("POST", "/api/users", "/api/users", '{"name": "newplanner", "role": "planner"}'): ADMIN_ONLY | {"admin": 201},
    ("GET", "/api/people", "/api/people", None): READERS_OK,
    ("POST", "/api/people", "/api/people", '{"name": "新人"}'): ADMIN_ONLY | {"admin": 201, "supervisor": 201},
    ("GET", "/api/people/<int:person_id>", "/api/people/999999999", None): ADMIN_ONLY
    | {"admin": 404, "operator": 404, "supervisor": 404},
    (
        "POST",
        "/api/people/<int:person_id>/duties",
        "/api/people/999999999/duties",
        '{"grid_code": "XWZ001", "duty": "grid_helper"}',
    ): ADMIN_ONLY | {"admin": 404, "supervisor": 404},
    (
        "POST",
        "/api/people/<int:person_id>/duties/<int:duty_id>/end",
        "/api/people/999999999/duties/1/end",
        None,
    ): ADMIN_ONLY | {"admin": 404, "supervisor": 404},
    ("GET", "/api/grids", "/api/grids", None): ALL_ROLES_OK,
    # The worker is assigned to village XWZ001: its own cell is visible, the other village's is not.
    ("GET", "/api/grids/<code>", "/api/grids/XWZ001001", None): ALL_ROLES_OK,
    ("GET", "/api/grids/<code>", "/api/grids/XWZ002001", None): ALL_ROLES_OK | {"worker": 404},
    ("GET", "/api/grids/<code>/topology", "/api/grids/XWZ001/topology", None): ALL_ROLES_OK,
    ("GET", "/api/grids/<code>/topology", "/api/grids/XWZ/topology", None): ALL_ROLES_OK | {"worker": 404},
    (
        "POST",
        "/api/grids/<code>/split",
        "/api/grids/XWZ001002/split",
        '{"line": "LINESTRING(115.257 37.76, 115.258 37.79)"}',
    ): EDIT_OK,
    ("POST", "/api/grids/merge", "/api/grids/merge", '{"codes": ["XWZ001001", "XWZ001002"]}'): EDIT_OK,
    ("POST", "/api/grids/<code>/rename", "/api/grids/XWZ001001/rename", '{"name": "x", "version": 99}'): ADMIN_ONLY
    | {"admin": 409, "planner": 409},
    ("POST", "/api/grids/<code>/recode", "/api/grids/XWZ001001/recode", '{"code": "X9", "version": 99}'): ADMIN_ONLY
    | {"admin": 409, "planner": 409},
    ("GET", "/api/grids/<code>/corners", "/api/grids/XWZ001001/corners", None): EDIT_OK,
    ("POST", "/api/grids/<code>/corner/remove", "/api/grids/XWZ001001/corner/remove", '{"at": [1, 1]}'): ADMIN_ONLY
    | {"admin": 422, "planner": 422},
    (
        "POST",
        "/api/grids/<code>/reshape",
        "/api/grids/XWZ001001/reshape",
        '{"path": {"type": "LineString", "coordinates": [[1, 1], [1.001, 1]]}}',
    ): ADMIN_ONLY | {"admin": 422, "planner": 422},
    ("POST", "/api/grids/import", "/api/grids/import?format=geojson&level=grid&dry_run=true", "{}"): ADMIN_ONLY
    | {"admin": 422, "planner": 422},
    ("POST", "/api/grids/corner", "/api/grids/corner", '{"from": [1, 1], "to": [1.001, 1]}'): ADMIN_ONLY
    | {"admin": 422, "planner": 422},
    ("POST", "/api/grids/restore", "/api/grids/restore", '{"versions": {"XWZ001001": 99}}'): ADMIN_ONLY
    | {"admin": 409, "planner": 409},
    (
        "PUT",
        "/api/grids/<code>",
        "/api/grids/XWZ001001",
        '{"version": 99, "geometry": {"type": "Point", "coordinates": [115.25, 37.75]}}',
    ): EDIT_OK | {"admin": 409, "planner": 409},
    (
        "POST",
        "/api/grids/<code>/generate",
        "/api/grids/XWZ001001/generate",
        '{"shape": "hex", "area_m2": 200000}',
    ): EDIT_OK | {"admin": 201, "planner": 201},
    (
        "POST",
        "/api/incidents",
        "/api/incidents",
        '{"lon": 115.26, "lat": 37.76, "category": "garbage", "source": "patrol"}',
    ): ADMIN_ONLY | {"admin": 201, "operator": 201, "worker": 201},
    ("GET", "/api/incidents/<int:incident_id>", "/api/incidents/999999999", None): ADMIN_ONLY
    | {"admin": 404, "operator": 404, "supervisor": 404, "worker": 404},
    ("GET", "/api/incidents", "/api/incidents", None): READERS_OK,
    (
        "POST",
        "/api/incidents/<int:incident_id>/transition",
        "/api/incidents/999999999/transition",
        '{"to": "dispatched"}',
    ): ADMIN_ONLY | {"admin": 404, "operator": 404},
    (
        "POST",
        "/api/incidents/<int:incident_id>/visit",
        "/api/incidents/999999999/visit",
        '{"method": "phone", "satisfied": true}',
    ): ADMIN_ONLY | {"admin": 404, "operator": 404},
    (
        "POST",
        "/api/incidents/<int:incident_id>/delay",
        "/api/incidents/999999999/delay",
        '{"kind": "extend", "hours": 5, "reason": "parts"}',
    ): ADMIN_ONLY | {"admin": 404, "operator": 404, "worker": 404},
    # A grid worker's own day (their page, cells and cases) and the photos of cases and 补签 requests.
    ("GET", "/worker", "/worker", None): ADMIN_ONLY | {ANON: 302, "worker": 200},
    ("GET", "/api/me/day", "/api/me/day", None): ADMIN_ONLY | {"worker": 200},
    ("GET", "/api/me/cases", "/api/me/cases", None): ADMIN_ONLY | {"worker": 200},
    ("POST", "/api/incidents/<int:incident_id>/photos", "/api/incidents/999999999/photos", "photo"): ADMIN_ONLY
    | {"admin": 404, "operator": 404, "worker": 404},
    (
        "POST",
        "/api/patrols/repairs/<int:repair_id>/photos",
        "/api/patrols/repairs/999999999/photos",
        "photo",
    ): ADMIN_ONLY | {"admin": 404, "supervisor": 404, "worker": 404},
    ("GET", "/api/photos/<int:photo_id>", "/api/photos/999999999", None): ADMIN_ONLY
    | {"admin": 404, "operator": 404, "supervisor": 404, "worker": 404},
    (
        "POST",
        "/api/incidents/<int:incident_id>/delay/decision",
        "/api/incidents/999999999/delay/decision",
        '{"approve": true}',
    ): ADMIN_ONLY | {"admin": 404, "operator": 404},
    (
        "POST",
        "/api/incidents/<int:incident_id>/supervise",
        "/api/incidents/999999999/supervise",
        "{}",
    ): ADMIN_ONLY | {"admin": 404, "operator": 404, "supervisor": 404},
    ("GET", "/api/metrics", "/api/metrics", None): READERS_OK,
    ("GET", "/api/indicators", "/api/indicators", None): READERS_OK,
    ("GET", "/api/indicators.xlsx", "/api/indicators.xlsx", None): READERS_OK,
    ("GET", "/api/indicators/trend", "/api/indicators/trend", None): READERS_OK,
    ("GET", "/api/judgement", "/api/judgement", None): READERS_OK,
    ("GET", "/api/judgement.xlsx", "/api/judgement.xlsx", None): READERS_OK,
    ("GET", "/dashboard", "/dashboard", None): READERS_OK | {ANON: 302},
    ("GET", "/judgement", "/judgement", None): READERS_OK | {ANON: 302},
    ("GET", "/api/incidents/warnings", "/api/incidents/warnings", None): READERS_OK,
    ("GET", "/api/categories", "/api/categories", None): ALL_ROLES_OK,
    ("GET", "/api/cases/board", "/api/cases/board", None): READERS_OK,
    ("POST", "/api/patrols", "/api/patrols", None): ADMIN_ONLY | {"admin": 422, "supervisor": 422, "worker": 422},
    ("GET", "/api/coverage", "/api/coverage", None): ADMIN_ONLY | {"admin": 422, "supervisor": 422},
    ("GET", "/api/coverage/gaps", "/api/coverage/gaps", None): ADMIN_ONLY | {"admin": 422, "supervisor": 422},
    ("GET", "/api/coverage/tracks", "/api/coverage/tracks", None): ADMIN_ONLY | {"admin": 422, "supervisor": 422},
    ("GET", "/api/coverage/fixes", "/api/coverage/fixes", None): ADMIN_ONLY | {"admin": 422, "supervisor": 422},
    ("GET", "/api/patrols/indicators", "/api/patrols/indicators", None): ADMIN_ONLY | {"admin": 200, "supervisor": 200},
    ("GET", "/api/patrols/repairs", "/api/patrols/repairs", None): ADMIN_ONLY
    | {"admin": 200, "supervisor": 200, "worker": 200},
    ("POST", "/api/patrols/repairs", "/api/patrols/repairs", "{}"): ADMIN_ONLY
    | {"admin": 422, "supervisor": 422, "worker": 422},
    (
        "POST",
        "/api/patrols/repairs/<int:repair_id>/decision",
        "/api/patrols/repairs/999999999/decision",
        '{"approve": true}',
    ): ADMIN_ONLY | {"admin": 404, "supervisor": 404},
    ("GET", "/", "/", None): {ANON: 302, REVOKED: 401, **{r: 200 for r in ROLES}},
    ("GET", "/map/grids", "/map/grids", None): {ANON: 302, REVOKED: 401, **{r: 200 for r in ROLES}},
    ("GET", "/map/incidents", "/map/incidents", None): READERS_OK | {ANON: 302},
    ("GET", "/map/coverage", "/map/coverage", None): ADMIN_ONLY | {ANON: 302, "admin": 200, "supervisor": 200},
    ("GET", "/tiles/grids/<int:z>/<int:x>/<int:y>.pbf", "/tiles/grids/14/13437/6317.pbf", None): {
        ANON: 302,
        REVOKED: 401,
        **{r: 200 for r in ROLES},
    },
    (
        "GET",
        "/tiles/coverage/<int:z>/<int:x>/<int:y>.pbf",
        "/tiles/coverage/14/13437/6317.pbf?date=2026-11-20",
        None,
    ): ADMIN_ONLY | {ANON: 302, "admin": 200, "supervisor": 200},
    ("GET", "/tiles/incidents/<int:z>/<int:x>/<int:y>.pbf", "/tiles/incidents/14/13437/6317.pbf", None): READERS_OK
    | {ANON: 302},
    ("GET", "/vendor/<path:name>", "/vendor/leaflet/dist/leaflet.js", None): {c: 200 for c in CALLERS} | {REVOKED: 401},
    # No such basemap is configured: nothing to serve, but only to those signed in.
    ("GET", "/basemap/<name>/<int:z>/<int:x>/<int:y>", "/basemap/city/1/0/0", None): {
        ANON: 302,
        REVOKED: 401,
        **{r: 404 for r in ROLES},
    },
    ("GET", "/login", "/login", None): {c: 200 for c in CALLERS} | {REVOKED: 401},
    ("POST", "/login", "/login", None): {c: 401 for c in CALLERS},
    ("POST", "/logout", "/logout", None): {ANON: 302, REVOKED: 401, **{r: 302 for r in ROLES}},
    # Without the form's CSRF token nothing changes: back to the page that says so.
    ("POST", "/password", "/password", None): {ANON: 302, REVOKED: 401, **{r: 302 for r in ROLES}},
    ("GET", "/admin/users", "/admin/users", None): ADMIN_ONLY | {ANON: 302, "admin": 200},
    # The language switch works signed in or not (the sign-in page has it too); no CSRF token, no change.
    ("POST", "/language", "/language", None): {c: 302 for c in CALLERS} | {REVOKED: 401},
    ("POST", "/admin/users/<name>/<action>", "/admin/users/nobody/disable", None): ADMIN_ONLY
    | {ANON: 302, "admin": 302},
    ("POST", "/api/users/<name>/disable", "/api/users/nobody/disable", None): ADMIN_ONLY | {"admin": 404},
    ("POST", "/api/users/<name>/enable", "/api/users/nobody/enable", None): ADMIN_ONLY | {"admin": 404},
    ("POST", "/api/users/<name>/password", "/api/users/nobody/password", '{"password": "long enough"}'): ADMIN_ONLY
    | {"admin": 404},
    ("POST", "/api/me/password", "/api/me/password", '{"current": "x", "new": "long enough"}'): ALL_ROLES_OK
    | {r: 403 for r in ROLES},
}


@pytest.fixture
def tokens(conn, make_user, demo_grids):
    out = {}
    for role in ROLES:
        who, out[role] = make_user(role)
        if role == "worker":
            conn.execute(
                sa.text("INSERT INTO assignments (person_id, grid_code, duty) VALUES (:p, 'XWZ001', 'grid_helper')"),
                {"p": who.person_id},
            )
    _, revoked = make_user("admin")
    accounts.revoke_token(conn, revoked)
    out[REVOKED] = revoked
    return out


def test_matrix_covers_every_route(app):
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == {(method, rule) for method, rule, _, _ in MATRIX}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", list(MATRIX), ids=lambda r: f"{r[0]} {r[2]}")
def test_route_access(client, tokens, route, caller):
    method, _, path, body = route
    headers = bearer(tokens[caller]) if caller != ANON else {}
    response = client.open(path, method=method, data=body, content_type="application/json", headers=headers)
    assert response.status_code == MATRIX[route][caller], response.get_data(as_text=True)[:300]
    if response.status_code >= 400 and path.startswith("/api/"):
        assert response.mimetype == "application/problem+json"


def test_wrong_role_gets_403_with_a_reason(client, tokens):
    response = client.get("/api/users", headers=bearer(tokens["worker"]))
    assert response.status_code == 403
    assert "worker" in response.json["detail"]


def test_worker_lists_only_assigned_grids(client, tokens, demo_grids):
    response = client.get("/api/grids", headers=bearer(tokens["worker"]))
    codes = {f["properties"]["code"] for f in response.json["features"]}
    assert codes == {"XWZ001", "XWZ001001", "XWZ001002"}
    everyone = client.get("/api/grids", headers=bearer(tokens["planner"])).json["features"]
    assert {f["id"] for f in everyone} == {g["code"] for g in demo_grids}


def test_a_worker_guessing_ids_learns_nothing(client, conn, tokens, demo_grids):
    """Real ids of records outside the worker's grids: refused alike, nothing read, nothing changed."""
    operator = tokens["operator"]
    made = client.post("/api/incidents", headers=bearer(operator), json={
        "lon": 115.275, "lat": 37.772, "category": "water", "source": "hotline"}).json  # fmt: skip
    assert made["grid_code"].startswith("XWZ002")  # the other village
    worker = bearer(tokens["worker"])
    for method, path, body in [
        ("POST", f"/api/incidents/{made['id']}/transition", {"to": "dispatched"}),
        ("POST", f"/api/incidents/{made['id']}/visit", {"method": "phone", "satisfied": True}),
        ("POST", f"/api/incidents/{made['id']}/supervise", {}),
    ]:
        response = client.open(path, method=method, json=body, headers=worker)
        assert response.status_code == 403 and "role" in response.json["detail"], (path, response.json)
    # A case that is not theirs answers as one that does not exist.
    for method, tail, body in [("GET", "", None), ("POST", "/delay", {"kind": "extend", "hours": 5, "reason": "x"}),
                               ("POST", "/transition", {"to": "in_progress"}), ("POST", "/photos", None)]:  # fmt: skip
        answers = [client.open(f"/api/incidents/{n}{tail}", method=method, json=body, headers=worker)
                   for n in (made["id"], made["id"] + 1)]  # fmt: skip
        assert [a.status_code for a in answers] == [404, 404], tail
        assert answers[0].json["detail"].replace(str(made["id"]), "N") == \
            answers[1].json["detail"].replace(str(made["id"] + 1), "N")  # fmt: skip
    assert client.get("/api/grids/XWZ002001", headers=worker).status_code == 404
    assert client.get("/api/grids/NOSUCH01", headers=worker).status_code == 404  # same answer as a real code
    line = {"type": "LineString", "coordinates": [[115.275, 37.76], [115.2751, 37.79]]}
    assert client.post("/api/grids/XWZ002001/split", json={"line": line}, headers=worker).status_code == 403
    status = conn.execute(sa.text("SELECT status FROM incidents WHERE id = :i"), {"i": made["id"]}).scalar_one()
    assert status == "reported"


def test_worker_with_no_assignment_sees_nothing(client, make_user, demo_grids):
    _, token = make_user("worker")
    assert client.get("/api/grids", headers=bearer(token)).json["features"] == []


def test_malformed_authorization_header_is_401(client):
    response = client.get("/api/me", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_created_user_token_works_once_shown(client, tokens):
    created = client.post("/api/users", json={"name": "op2", "role": "operator"},
                          headers=bearer(tokens["admin"]))  # fmt: skip
    assert created.status_code == 201
    me = client.get("/api/me", headers=bearer(created.json["token"]))
    assert me.json["name"] == "op2" and me.json["role"] == "operator"
    listed = client.get("/api/users", headers=bearer(tokens["admin"])).json
    assert "op2" in {u["name"] for u in listed}
    assert all("token" not in u and "password_hash" not in u for u in listed)


def test_tokens_are_stored_hashed(conn, make_user):
    _, token = make_user("planner")
    stored = conn.execute(sa.text("SELECT token_sha256 FROM api_tokens")).scalars().all()
    assert token not in stored
    assert accounts.hash_token(token) in stored


class TestSessionLogin:
    def _csrf(self, client):
        client.get("/login")
        with client.session_transaction() as s:
            return s["csrf"]

    def test_login_then_pages_and_api_with_csrf(self, client, make_user):
        make_user("admin", name="alice", password="correct horse")
        csrf = self._csrf(client)
        bad = client.post("/login", data={"name": "alice", "password": "wrong", "csrf": csrf})
        assert bad.status_code == 401 and b"Wrong user name or password" in bad.data
        good = client.post("/login", data={"name": "alice", "password": "correct horse",
                                           "csrf": csrf, "next": "/"})  # fmt: skip
        assert good.status_code == 302 and good.location == "/"
        assert client.get("/").status_code == 200
        assert client.get("/api/me").json["name"] == "alice"
        with client.session_transaction() as s:
            session_csrf = s["csrf"]
        # A cookie alone cannot change anything: the CSRF header is required.
        refused = client.post("/api/users", json={"name": "x1", "role": "planner"})
        assert refused.status_code == 403
        accepted = client.post("/api/users", json={"name": "x1", "role": "planner"},
                               headers={"X-CSRF-Token": session_csrf})  # fmt: skip
        assert accepted.status_code == 201
        client.post("/logout", data={"csrf": session_csrf})
        assert client.get("/api/me").status_code == 401

    def test_login_form_without_csrf_is_refused(self, client, make_user):
        make_user("admin", name="bob", password="correct horse")
        response = client.post("/login", data={"name": "bob", "password": "correct horse"})
        assert response.status_code == 401 and b"expired" in response.data

    def test_next_cannot_leave_the_site(self, client, make_user):
        make_user("admin", name="carol", password="correct horse")
        csrf = self._csrf(client)
        form = {"name": "carol", "password": "correct horse", "csrf": csrf}
        response = client.post("/login", data={**form, "next": "//evil.example/"})
        assert response.location == "/"

    def test_anonymous_page_redirects_to_login(self, client):
        response = client.get("/")
        assert response.status_code == 302 and response.location.startswith("/login?next=")
