"""Chinese first: pages and API messages in Simplified Chinese (English selectable), from gettext catalogues,
with no code or English word on a Chinese page and times in the center's zone."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

import pytest
from babel.messages.pofile import read_po

from geogrid import demo
from geogrid.api import create_app
from geogrid.incidents.intake import NewIncident, register
from geogrid.patrols.ingest import import_patrol
from geogrid.testing import PageLog, live_server, open_map, sign_in
from tests.conftest import ROOT, bearer, demo_engine, helper_on

CATALOGUES = ROOT / "geogrid" / "translations"
KEYWORDS = ["-k", "_", "-k", "_l", "-k", "N_", "-k", "lazy_gettext", "-k", "pgettext:1c,2", "-k", "lazy_pgettext:1c,2",
            "-k", "L_:1c,2", "-k", "ngettext:1,2", "-k", "InvalidInput", "-k", "NotFound", "-k", "Conflict", "-k",
            "Forbidden", "-k", "Unauthorized", "-k", "GeogridError", "-k", "ConfigError", "-k", "DatabaseUnavailable",
            "-k", "translate_error"]  # fmt: skip


def _fields(text: str) -> set[str]:
    return set(re.findall(r"\{[^{}]*\}|%\([a-z_]+\)s", text.replace("{{", "").replace("}}", "")))


@pytest.mark.parametrize("domain,config,keywords", [
    ("messages", "babel.cfg", KEYWORDS), ("js", "babel-js.cfg", ["-k", "t"]),
], ids=["server", "page script"])  # fmt: skip
def test_every_message_has_its_chinese_translation_with_the_same_fields(tmp_path, domain, config, keywords):
    pot = tmp_path / f"{domain}.pot"
    pybabel = [sys.executable, "-m", "babel.messages.frontend"]
    subprocess.run([*pybabel, "-q", "extract", "-F", str(ROOT / config), "--no-wrap", *keywords, "-o", str(pot),
                    str(ROOT)], check=True, cwd=ROOT)  # fmt: skip
    wanted = {(m.context, m.id) for m in read_po(open(pot, encoding="utf-8")) if m.id}
    catalogue = read_po(open(CATALOGUES / "zh_Hans_CN" / "LC_MESSAGES" / f"{domain}.po", encoding="utf-8"))
    have = {(m.context, m.id): m for m in catalogue if m.id}
    missing = sorted(wanted - set(have), key=str)
    assert missing == [], f"run `make catalogues` and translate: {missing[:10]}"
    for key in wanted:
        message = have[key]
        assert message.string and not message.fuzzy, f"untranslated: {key}"
        assert _fields(message.id) == _fields(message.string), f"fields differ: {message.id!r} -> {message.string!r}"


def test_api_messages_follow_the_users_choice_then_the_browser_then_the_default(app, client, conn, settings,
                                                                                 make_user):  # fmt: skip
    from geogrid import accounts
    from geogrid.api import create_app as build

    who, token = make_user("operator")
    url = "/api/incidents?status=lost"
    assert client.get(url, headers=bearer(token)).json["detail"].startswith("unknown status")  # tests default: English
    chinese = client.get(url, headers={**bearer(token), "Accept-Language": "zh-CN,zh;q=0.9"}).json
    assert chinese["detail"].startswith("未知状态 lost") and chinese["title"] == "输入有误"
    accounts.set_language(conn, who.id, "en")  # the user's own choice wins over the browser
    assert client.get(url, headers={**bearer(token), "Accept-Language": "zh-CN"}).json["detail"].startswith("unknown")
    import dataclasses

    default = build(dataclasses.replace(settings, language="zh_CN"), bind=conn).test_client()
    _, other = make_user("operator")
    assert (
        default.get(url, headers=bearer(other)).json["detail"].startswith("未知状态")
    )  # nothing said: GEOGRID_LANGUAGE


# -- the pages in a real browser --------------------------------------------------------------------

#: Latin words a Chinese page may show: names of things (codes, formats, products), not UI words.
ALLOWED = {"geogrid", "GeoJSON", "OpenAPI", "API", "Leaflet", "Shift", "GIS", "WKT", "XWZ", "English", "demo", "km",
           "m²", "YYYY", "MM", "DD", "grids", "import", "Excel", "GPX", "CSV"}  # fmt: skip


@pytest.fixture(scope="module")
def site(databases, settings):
    engine = demo_engine(databases)
    with engine.begin() as conn:
        person, x, y = helper_on(conn, "XWZ001002")
        walk = "time,lon,lat\n" + "\n".join(f"2026-11-20T09:{m:02d}:00,{x + m * 1e-5},{y}" for m in range(30))
        import_patrol(conn, settings, person, "walk.csv", walk.encode())
        incident = register(conn, settings, NewIncident(lon=x, lat=y, category="illegal_parking", source="hotline",
                            reported_at=dt.datetime(2026, 11, 20, 8, 10)), actor="值班员李娜")["id"]  # fmt: skip
    with live_server(create_app(settings, bind=engine)) as base:
        yield {"base": base, "incident": incident, "cell": (x, y)}
    engine.dispose()


def visible_words(page) -> set[str]:
    """Latin words in the page's visible text (panel, header, map labels, details)."""
    text = page.evaluate("document.body.innerText")
    return {w for w in re.findall(r"[A-Za-z][A-Za-z_]{2,}", text) if w not in ALLOWED}


def test_every_page_speaks_chinese_with_no_code_or_english_word(browser, site, settings):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 768}, bypass_csp=True)
    page = context.new_page()
    log = PageLog()
    log.watch(page, site["base"])
    shots = settings.home / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.goto(site["base"] + "/login")
    assert visible_words(page) == set(), "login"
    sign_in(page, site["base"], demo.ADMIN_NAME, demo.ADMIN_PASSWORD)
    assert visible_words(page) == set(), "start page"
    page.goto(site["base"] + "/admin/users")
    assert visible_words(page) == set(), "users"
    for path, name in (("/map/grids", "planner_zh"), ("/map/incidents", "command_center_zh"),
                       ("/map/coverage?date=2026-11-20", "coverage_zh")):  # fmt: skip
        open_map(page, site["base"] + path, shots, name)
        assert visible_words(page) == set(), path
        assert re.fullmatch(r"\d+ k?m", page.text_content(".leaflet-control-scale").strip()), "metric scale only"
    # The details a click opens: an incident's, with its times in the center's zone.
    open_map(page, site["base"] + "/map/incidents")
    page.click("[data-tab=map]")
    page.fill("#q", str(site["incident"]))
    page.click("#search button")
    page.wait_for_function("document.getElementById('case').dataset.cell === 'XWZ001002'")
    details = page.text_content("#case")
    assert "违章停车" in details and "12345热线" in details and "网格协管员" in details and "13800000000" in details
    assert "2026-11-20 08:10" in details and "T08:10" not in details and "+00:00" not in details
    assert visible_words(page) == set(), "incident details"
    page.screenshot(path=str(shots / "command_center_incident_zh.png"))
    # A coverage cell's reasons, in words.
    open_map(page, site["base"] + "/map/coverage?date=2026-11-20")
    missed = page.text_content("#missed")
    assert "王伟: 有效巡查 0 次（需 2 次）; 1 次巡查覆盖不足 60%" in missed and "visits_counted" not in missed
    assert log.errors == []
    context.close()


def test_english_is_a_choice_kept_with_the_user(browser, site):
    context = browser.new_context(locale="zh-CN", bypass_csp=True)
    page = context.new_page()
    sign_in(page, site["base"], demo.ADMIN_NAME, demo.ADMIN_PASSWORD)
    assert "退出" in page.text_content("header")
    page.click("form.language button[value=en]")
    page.wait_for_selector("form.language button[value=en][disabled]")
    assert "Sign out" in page.text_content("header")
    open_map(page, site["base"] + "/map/incidents")
    assert "Case board" in page.text_content("#panel") and "illegal_parking" not in page.text_content("#panel")
    # The choice is the user's: another browser (still Chinese) signs in and gets English.
    other = browser.new_context(locale="zh-CN", bypass_csp=True).new_page()
    sign_in(other, site["base"], demo.ADMIN_NAME, demo.ADMIN_PASSWORD)
    assert "Sign out" in other.text_content("header")
    other.click("form.language button[value=zh_CN]")  # and back, for the other tests
    other.wait_for_selector("form.language button[value=zh_CN][disabled]")
    context.close()


def test_day_inputs_do_not_follow_the_browsers_locale(browser, site):
    context = browser.new_context(locale="en-US", bypass_csp=True)
    page = context.new_page()
    sign_in(page, site["base"], demo.ADMIN_NAME, demo.ADMIN_PASSWORD)
    open_map(page, site["base"] + "/map/coverage?date=2026-11-20")
    assert page.get_attribute("#date", "type") == "text" and page.input_value("#date") == "2026-11-20"
    assert page.get_attribute("#date", "placeholder") in ("YYYY-MM-DD", "年-月-日")
    context.close()
