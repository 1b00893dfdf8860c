"""Browser security: framing refused, headers on every answer, sessions that end, throttled sign-in,
the user lifecycle, and external ids scoped by their system."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from playwright.sync_api import sync_playwright

from geogrid import demo
from geogrid.api import create_app
from geogrid.cli import main
from geogrid.incidents.intake import NewIncident, import_incidents
from geogrid.testing import PageLog, launch, live_server, open_map, sign_in
from tests.conftest import bearer, demo_engine
from tests.test_api_access import MATRIX

PASSWORD = "correct horse"


def csrf_of(client) -> str:
    client.get("/login")
    with client.session_transaction() as s:
        return s["csrf"]


def sign_in_client(client, name: str, password: str = PASSWORD, address: str = "127.0.0.1"):
    csrf = csrf_of(client)
    return client.post("/login", data={"name": name, "password": password, "csrf": csrf},
                       environ_base={"REMOTE_ADDR": address})  # fmt: skip


def copy_of(app, client):
    """A second browser holding a copy of *client*'s session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


# -- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "admin"])
def test_every_page_and_api_route_refuses_framing_and_sends_the_headers(client, make_user, demo_grids, signed_in):
    headers = bearer(make_user("admin")[1]) if signed_in else {}
    cacheable = ("/vendor/", "/basemap/", "/static/")
    paths = {path for (_, _, path, _) in MATRIX} | {"/static/geogrid/maps.js", "/no/such/page", "/api/no-such"}
    for path in sorted(paths):
        response = client.get(path, headers=headers)
        csp = response.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, path
        assert "script-src 'self' 'nonce-" in csp and "unsafe-eval" not in csp, path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "same-origin", path
        if not path.startswith(cacheable):
            assert response.headers["Cache-Control"] == "no-store", path


def test_the_nonce_is_new_for_every_answer_and_on_every_inline_script(client, make_user, demo_grids):
    import re

    headers = bearer(make_user("admin")[1])
    first, second = (client.get("/map/grids", headers=headers) for _ in range(2))
    nonces = [re.search(r"'nonce-([^']+)'", r.headers["Content-Security-Policy"]).group(1) for r in (first, second)]
    assert nonces[0] != nonces[1]
    html = first.get_data(as_text=True)
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline and all(f'nonce="{nonces[0]}"' in attrs or "application/json" in attrs for attrs in inline)


def test_the_basemap_host_is_allowed_for_images_only(settings, conn):
    osm = dataclasses.replace(settings, basemap="https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png")
    csp = create_app(osm, bind=conn).test_client().get("/login").headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob: https://*.tile.openstreetmap.org" in csp
    assert "openstreetmap" not in csp.split("img-src")[0] and "connect-src 'self';" in csp


# -- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(databases, settings):
    engine = demo_engine(databases)
    with live_server(create_app(settings, bind=engine)) as base:
        yield base
    engine.dispose()


def test_pages_keep_to_their_content_security_policy(site):
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1366, "height": 768})  # the policy in force
        log = PageLog()
        log.watch(page, site)
        sign_in(page, site, demo.ADMIN_NAME, demo.ADMIN_PASSWORD)
        for path in ("/map/grids", "/map/incidents", "/map/coverage"):
            open_map(page, site + path)
            page.wait_for_timeout(300)
        page.goto(site + "/admin/users")
        page.goto(site + "/")
        browser.close()
    assert log.errors == [] and log.external == []


def test_another_origin_cannot_frame_the_planners_map(site, settings):
    """Clickjacking: a page of another origin on the same site frames /map/grids for a signed-in planner."""
    from werkzeug.wrappers import Response

    def attacker(environ, start_response):
        html = f'<!doctype html><iframe id="f" src="{site}/map/grids" width="1200" height="700"></iframe>'
        return Response(html, mimetype="text/html")(environ, start_response)

    with live_server(attacker) as evil, sync_playwright() as playwright:
        assert evil.split(":")[-1] != site.split(":")[-1]  # same host, another port: another origin
        browser = launch(playwright)
        page = browser.new_page()
        sign_in(page, site, demo.ADMIN_NAME, demo.ADMIN_PASSWORD)  # the victim is signed in
        open_map(page, site + "/map/grids")  # ... and the map works at home
        blocked = []
        page.on("console", lambda m: blocked.append(m.text) if "frame-ancestors" in m.text else None)
        page.goto(evil)
        page.wait_for_timeout(1500)
        frame = page.frame_locator("#f")
        assert frame.locator(".folium-map").count() == 0  # nothing of the map rendered inside the frame
        framed = [f for f in page.frames if f != page.main_frame]
        assert all(".folium-map" not in (f.content() if not f.url.startswith(site) else "") for f in framed)
        assert blocked, "Chromium said why it refused to frame the page"
        browser.close()


# -- sessions ---------------------------------------------------------------------------------


def test_a_copied_cookie_stops_working_at_sign_out(app, client, make_user):
    make_user("planner", name="ping", password=PASSWORD)
    assert sign_in_client(client, "ping").status_code == 302
    stolen = copy_of(app, client)
    assert stolen.get("/api/me").json["name"] == "ping"
    with client.session_transaction() as s:
        csrf = s["csrf"]
    client.post("/logout", data={"csrf": csrf})
    assert stolen.get("/api/me").status_code == 401  # before: the signed cookie went on working
    assert stolen.get("/map/grids").status_code == 302


def test_a_new_password_or_disabling_ends_every_session(app, client, make_user, conn):
    make_user("admin", name="boss", password=PASSWORD)
    make_user("operator", name="pong", password=PASSWORD)
    admin = app.test_client()
    assert sign_in_client(admin, "boss").status_code == 302
    with admin.session_transaction() as s:
        admin_csrf = {"X-CSRF-Token": s["csrf"]}

    assert sign_in_client(client, "pong").status_code == 302
    stolen = copy_of(app, client)
    assert admin.post("/api/users/pong/password", json={"password": "another horse"}, headers=admin_csrf).json == {
        "sessions_ended": 1}  # fmt: skip
    assert stolen.get("/api/me").status_code == 401 and client.get("/api/me").status_code == 401

    # Changing one's own password keeps this session and ends the others.
    assert sign_in_client(client, "pong", "another horse").status_code == 302
    elsewhere = app.test_client()
    assert sign_in_client(elsewhere, "pong", "another horse").status_code == 302
    with client.session_transaction() as s:
        own_csrf = {"X-CSRF-Token": s["csrf"]}
    wrong = client.post("/api/me/password", json={"current": "nope", "new": "third horse"}, headers=own_csrf)
    assert wrong.status_code == 403
    changed = client.post("/api/me/password", json={"current": "another horse", "new": "third horse"},
                          headers=own_csrf)  # fmt: skip
    assert changed.json == {"sessions_ended": 1}
    assert client.get("/api/me").status_code == 200 and elsewhere.get("/api/me").status_code == 401

    # Disabled: the session and the API token stop at once; enabled, the token works again.
    token = conn.execute(sa.text("SELECT id FROM users WHERE name = 'pong'")).scalar()
    _, pong_token = make_user("operator", name="pong2", password=PASSWORD)
    assert admin.post("/api/users/pong/disable", headers=admin_csrf).json["active"] is False
    assert client.get("/api/me").status_code == 401
    assert admin.post("/api/users/pong2/disable", headers=admin_csrf).status_code == 200
    assert client.get("/api/me", headers=bearer(pong_token)).status_code == 401
    assert admin.post("/api/users/pong2/enable", headers=admin_csrf).json["active"] is True
    assert client.get("/api/me", headers=bearer(pong_token)).status_code == 200
    assert admin.post("/api/users/boss/disable", headers=admin_csrf).status_code == 422  # not oneself
    audited = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE table_name = 'users' AND actor = 'boss' "
                                   "AND operation = 'UPDATE'")).scalar()  # fmt: skip
    assert token and audited >= 4  # the new password, disable, disable, enable


def test_sessions_end_after_their_lifetime_and_when_idle(app, client, make_user, conn, settings):
    make_user("operator", name="idle", password=PASSWORD)
    assert sign_in_client(client, "idle").status_code == 302
    assert client.get("/api/me").status_code == 200
    idle, hours = settings.session_idle_minutes * 60, settings.session_hours * 3600

    def age(column: str, seconds: float) -> None:
        statement = f"UPDATE sessions SET {column} = now() - make_interval(secs => :s) WHERE ended_at IS NULL"
        conn.execute(sa.text(statement), {"s": seconds})

    age("last_seen_at", idle - 60)
    assert client.get("/api/me").status_code == 200  # a minute before the idle timeout: still on
    age("last_seen_at", idle + 1)
    assert client.get("/api/me").status_code == 401  # just past it: over
    assert sign_in_client(client, "idle").status_code == 302
    age("created_at", hours - 60)
    assert client.get("/api/me").status_code == 200  # busy, and a minute short of the absolute lifetime
    age("created_at", hours)
    assert client.get("/api/me").status_code == 401  # busy or not, the lifetime is over


def test_behind_a_tls_proxy_the_cookie_is_secure_and_the_client_address_is_forwarded(settings, conn, make_user):
    make_user("operator", name="tls", password=PASSWORD)
    plain = create_app(settings, bind=conn).test_client()
    response = sign_in_client(plain, "tls")
    assert "Secure" not in response.headers["Set-Cookie"] and "Strict-Transport-Security" not in response.headers
    proxied = create_app(dataclasses.replace(settings, tls=True, proxy_hops=1), bind=conn).test_client()
    csrf = csrf_of(proxied)
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    response = proxied.post("/login", data={"name": "tls", "password": PASSWORD, "csrf": csrf}, headers=forwarded)
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    address = conn.execute(sa.text("SELECT address FROM sessions s JOIN users u ON u.id = s.user_id "
                                   "WHERE u.name = 'tls' ORDER BY s.id DESC LIMIT 1")).scalar()  # fmt: skip
    assert address == "203.0.113.9"  # the client behind the proxy, not the proxy


# -- throttled sign-in -----------------------------------------------------------------------


def said(response) -> str:
    """The error the sign-in form shows."""
    import re

    return re.search(r'<p class="error" role="alert">([^<]*)</p>', response.get_data(as_text=True)).group(1)


def test_sign_in_is_throttled_by_name_and_by_address_with_one_answer_for_all(client, make_user, conn, settings):
    make_user("planner", name="victim", password=PASSWORD)
    limit = settings.login_failures
    for n in range(limit):
        assert sign_in_client(client, "victim", "guess", address="198.51.100.1").status_code == 401, n
    locked = sign_in_client(client, "victim", PASSWORD, address="198.51.100.2")  # the right one, from elsewhere
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    for _ in range(limit):  # a name nobody has gets the same answers
        assert sign_in_client(client, "nobody", "guess", address="198.51.100.3").status_code == 401
    unknown = sign_in_client(client, "nobody", "guess", address="198.51.100.3")
    assert (unknown.status_code, said(unknown)) == (429, said(locked))
    # By address: many names from one address.
    make_user("planner", name="other", password=PASSWORD)
    for n in range(settings.login_address_failures):
        sign_in_client(client, f"name{n}", "guess", address="198.51.100.7")
    assert sign_in_client(client, "other", PASSWORD, address="198.51.100.7").status_code == 429
    assert sign_in_client(client, "other", PASSWORD, address="198.51.100.8").status_code == 302
    # The lockouts are in the record and the audit trail.
    events = dict(conn.execute(sa.text("SELECT event, count(*) FROM sign_in_events GROUP BY event")).all())
    assert events["locked"] == 3 and events["failed"] >= 2 * limit
    assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE table_name = 'sign_in_events'")).scalar() > 0
    # Once the window has passed, the right password works again.
    conn.execute(sa.text("UPDATE sign_in_events SET at = at - make_interval(secs => :w)"),
                 {"w": settings.login_window_s})  # fmt: skip
    assert sign_in_client(client, "victim", PASSWORD, address="198.51.100.1").status_code == 302


def test_one_failure_short_of_the_limit_still_signs_in(client, make_user, settings):
    make_user("planner", name="almost", password=PASSWORD)
    for _ in range(settings.login_failures - 1):
        sign_in_client(client, "almost", "guess")
    assert sign_in_client(client, "almost", PASSWORD).status_code == 302
    # ... and a success starts the count again.
    for _ in range(settings.login_failures - 1):
        sign_in_client(client, "almost", "guess")
    assert sign_in_client(client, "almost", PASSWORD).status_code == 302


# -- the user lifecycle from the CLI and the page -----------------------------------------------


def test_users_disable_enable_passwd_and_list_from_the_cli(scratch_url, settings):
    env = {"GEOGRID_DATABASE_URL": scratch_url}

    def run(*args, input=None):
        return CliRunner().invoke(main, list(args), env=env, input=input)

    token = run("users", "add", "wei", "--role", "operator", "--password", "first password").stdout.strip()
    app = create_app(dataclasses.replace(settings, database_url=scratch_url))
    web = app.test_client()
    assert sign_in_client(web, "wei", "first password").status_code == 302
    assert "wei                      operator    active    password    1 session(s)" in run("users", "list").output
    changed = run("users", "passwd", "wei", input="second password\nsecond password\n")
    assert changed.exit_code == 0 and "1 session(s) ended" in changed.output
    assert web.get("/api/me").status_code == 401
    assert run("users", "passwd", "wei", "--password", "short").exit_code == 2
    assert run("users", "disable", "wei").exit_code == 0
    assert web.get("/api/me", headers=bearer(token)).status_code == 401
    assert sign_in_client(web, "wei", "second password").status_code == 401
    assert run("users", "enable", "wei").exit_code == 0
    assert sign_in_client(web, "wei", "second password").status_code == 302
    missing = run("users", "disable", "nobody")
    assert missing.exit_code == 2 and missing.output == "geogrid: no user 'nobody'\n"


def test_the_admins_users_page_disables_and_sets_passwords(app, client, make_user, conn):
    make_user("admin", name="chief", password=PASSWORD)
    make_user("worker", name="walker", password=PASSWORD)
    assert sign_in_client(client, "chief").status_code == 302
    with client.session_transaction() as s:
        csrf = s["csrf"]
    page = client.get("/admin/users").get_data(as_text=True)
    assert "walker" in page and "Disable" in page
    assert client.post("/admin/users/walker/disable", data={"csrf": csrf}).status_code == 302
    assert "walker is disabled" in client.get("/admin/users?m=disable&name=walker").get_data(as_text=True)
    assert conn.execute(sa.text("SELECT active FROM users WHERE name = 'walker'")).scalar() is False
    short = client.post("/admin/users/walker/password", data={"csrf": csrf, "password": "x"})
    assert "at least 8 characters" in client.get(short.location).get_data(as_text=True)
    assert client.post("/admin/users/walker/enable", data={"csrf": "forged"}).status_code == 302
    assert conn.execute(sa.text("SELECT active FROM users WHERE name = 'walker'")).scalar() is False  # no CSRF: no


# -- external ids ------------------------------------------------------------------------------


def test_external_ids_are_scoped_by_system_and_a_different_report_is_refused(client, conn, settings, make_user,
                                                                           demo_grids):  # fmt: skip
    worker, worker_token = make_user("worker")
    conn.execute(sa.text("INSERT INTO assignments (person_id, grid_code, duty) VALUES (:p, 'XWZ001', 'grid_helper')"),
                 {"p": worker.person_id})  # fmt: skip
    _, operator_token = make_user("operator")
    body = {"lon": 115.255, "lat": 37.765, "category": "garbage", "source": "app", "external_id": "A-1"}
    from_worker = client.post("/api/incidents", json=body, headers=bearer(worker_token))
    assert from_worker.status_code == 201
    # The operator's app report A-1 is another incident (before: dropped as a "duplicate" of the worker's).
    other = {**body, "lon": 115.256, "description": "另一件事"}
    from_desk = client.post("/api/incidents", json=other, headers=bearer(operator_token))
    assert from_desk.status_code == 201 and from_desk.json["id"] != from_worker.json["id"]
    # The same report again is the same incident; the same id saying something else is refused, naming it.
    again = client.post("/api/incidents", json=other, headers=bearer(operator_token))
    assert again.status_code == 200 and again.json["duplicate"] and again.json["id"] == from_desk.json["id"]
    clash = client.post("/api/incidents", json={**other, "category": "water"}, headers=bearer(operator_token))
    assert clash.status_code == 409 and clash.json["existing"]["id"] == from_desk.json["id"]
    # Another system's A-1 is its own.
    hotline = client.post("/api/incidents", json={**other, "category": "water", "system": "12345"},
                          headers=bearer(operator_token))  # fmt: skip
    assert hotline.status_code == 201
    # A bulk file: a duplicate is skipped, a clash is rejected with its reason.
    rejected = []
    rows = [
        (1, {}, NewIncident(lon=115.256, lat=37.765, category="garbage", source="app", description="另一件事",
                            external_id="A-1")),
        (2, {}, NewIncident(lon=115.257, lat=37.765, category="gas", source="app", external_id="A-1")),
    ]  # fmt: skip
    report = import_incidents(conn, settings, rows, actor="t", reject=lambda *r: rejected.append(r))
    assert (report.inserted, report.duplicates, report.rejected) == (0, 1, 1)
    assert "is incident" in rejected[0][2] and "says something else" in rejected[0][2]
