"""A grid worker's day on their page, in Chromium, in Chinese, on a 400 x 800 phone (and at 1366 x 768): they land
there after signing in, see today's cells with their own position, take up a case and report back with a photo,
ask for more time, report an incident at their position with a photo, ask for a 补签 with a photo, and send their
track as they walk. The command center sees the worker's photo on the case, with how far from it it was taken."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa

from geogrid import demo
from geogrid.api import create_app
from geogrid.incidents import workflow
from geogrid.testing import PageLog, live_server, open_map, sign_in
from tests.conftest import demo_engine, helper_on, jpeg, zh_page
from tests.test_language import visible_words

CELL = "XWZ001002"
NAME, PASSWORD = "wangwei", "worker-pass-1"
PHONE = {"width": 400, "height": 800}


@pytest.fixture(scope="module")
def site(databases, settings):
    from geogrid import accounts
    from geogrid.incidents.intake import NewIncident, register

    engine = demo_engine(databases)
    chinese = dataclasses.replace(settings, language="zh_CN")
    with engine.begin() as conn:
        person, lon, lat = helper_on(conn, CELL)
        accounts.create_user(conn, NAME, "worker", password=PASSWORD, person_id=person)
        cases = []
        for text in ("路灯不亮", "井盖缺失"):
            made = register(conn, chinese, NewIncident(lon=lon, lat=lat, category="garbage", source="hotline",
                                                       description=text), actor="center")  # fmt: skip
            workflow.transition(conn, chinese, made["id"], "dispatched", actor="center", person_id=person)
            cases.append(made["id"])
    with live_server(create_app(chinese, bind=engine)) as base:
        yield {"base": base, "engine": engine, "person": person, "spot": (lon, lat), "cases": cases}
    engine.dispose()


def phone(browser, site, viewport=PHONE):
    """The worker's phone (or desktop), in Chinese, at the cell's point, signed in: on their page."""
    lon, lat = site["spot"]
    context = browser.new_context(locale="zh-CN", viewport=viewport, bypass_csp=True, permissions=["geolocation"],
                                  geolocation={"longitude": lon, "latitude": lat, "accuracy": 8})  # fmt: skip
    page = context.new_page()
    log = PageLog()
    log.watch(page, site["base"])
    sign_in(page, site["base"], NAME, PASSWORD)
    assert page.url.endswith("/worker")  # workers land on their own page
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("document.getElementById('position').textContent.includes('精度')")
    return context, page, log


def query(site, sql: str, **params):
    with site["engine"].connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def shot(page, settings, name: str) -> None:
    shots = settings.home / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / f"worker_{name}.png"))


def test_the_day_on_a_phone_cells_position_and_a_case_taken_up_and_reported_back(browser, site, settings):
    context, page, log = phone(browser, site)
    # The map is on top, the whole width; nothing runs off the side of a 400 px screen.
    box = page.locator(".folium-map").bounding_box()
    assert box["width"] >= 390 and box["height"] >= 250
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    # Today's cells: the one they stand in is marked, with what is still to do.
    position = page.text_content("#position")
    assert "您在" in position and "待巡查" in position and "精度 8 米" in position
    cell = page.locator(f"#cells li[data-code='{CELL}']")
    assert "您在此处" in cell.text_content() and "巡查 0/2 次" in cell.text_content()
    assert page.text_content("#today-counts").strip() == "已完成 0 / 1 个单元"
    assert visible_words(page) - {NAME} == set()  # the sign-in name is the user's own
    shot(page, settings, "phone_cells")

    first, second = site["cases"]
    page.click("[data-tab=cases]")
    item = page.locator(f"#my-cases li[data-id='{first}']")
    assert "派给您的" in item.text_content() and "剩余" in item.text_content()
    item.locator("[data-step=in_progress]").click()
    page.wait_for_function(f"document.getElementById('notice').textContent.includes('{first}')")
    assert query(site, "SELECT status FROM incidents WHERE id = :i", i=first) == [("in_progress",)]
    page.click("#notice")  # a tap puts the news away (it goes by itself after a few seconds)
    assert page.text_content("#notice") == ""
    page.locator(f"#my-cases li[data-id='{first}'] [data-step=resolved]").click()
    form = page.locator(f"#my-cases li[data-id='{first}'] .step-form")
    form.locator("textarea").fill("已清运，现场已恢复")
    lon, lat = site["spot"]
    form.locator("input[type=file]").set_input_files(
        files=[{"name": "done.jpg", "mimeType": "image/jpeg", "buffer": jpeg(lon + 0.0002, lat)}]
    )
    shot(page, settings, "phone_report_back")
    form.locator("button[type=submit]").click()
    page.wait_for_function("document.getElementById('notice').textContent.includes('已反馈')")
    assert query(site, "SELECT status FROM incidents WHERE id = :i", i=first) == [("resolved",)]
    page.click("#notice")
    (distance,) = query(site, "SELECT ST_Distance(p.geom::geography, i.location::geography) FROM photos p "
                              "JOIN incidents i ON i.id = p.incident_id WHERE i.id = :i", i=first)[0]  # fmt: skip
    assert distance == pytest.approx(17.6, abs=1.5)  # the photo's EXIF position, 0.0002 degrees east

    # More time on the second case: hours and a reason; the center decides.
    page.locator(f"#my-cases li[data-id='{second}'] [data-step=delay]").click()
    form = page.locator(f"#my-cases li[data-id='{second}'] .step-form")
    form.locator("input[type=number]").fill("48")
    form.locator("textarea").fill("需等待供电部门配合")
    form.locator("button[type=submit]").click()
    page.wait_for_function("document.getElementById('notice').textContent.includes('已申请延期')")
    asked = query(site, "SELECT details->>'hours', note FROM incident_events WHERE incident_id = :i "
                        "AND details->>'step' = 'delay_requested'", i=second)  # fmt: skip
    assert asked == [("48", "需等待供电部门配合")]
    assert "已申请延期" in page.text_content(f"#my-cases li[data-id='{second}']")
    shot(page, settings, "phone_cases")
    assert log.errors == [] and log.external == []
    context.close()


def test_a_report_at_the_worker_s_position_with_a_photo_seen_by_the_command_center(browser, site, settings):
    context, page, log = phone(browser, site)
    page.click("[data-tab=report]")
    page.select_option("#report-major", "01")
    page.select_option("#report-category", "garbage")
    page.fill("#report-description", "垃圾堆放在路边")
    lon, lat = site["spot"]
    page.set_input_files("#report-photos", files=[
        {"name": "a.jpg", "mimeType": "image/jpeg", "buffer": jpeg(lon, lat + 0.0001, "2026:11:30 09:15:00")},
        {"name": "b.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}])  # fmt: skip
    page.check("#report-on-spot")
    shot(page, settings, "phone_report")
    page.click("#report-form button[type=submit]")
    page.wait_for_function("document.getElementById('notice').textContent.includes('已上报')")
    ((case, status, source, x, y, accuracy),) = query(
        site, "SELECT id, status, source, ST_X(location), ST_Y(location), gps_accuracy_m FROM incidents "
              "WHERE description = '垃圾堆放在路边'")  # fmt: skip
    assert (status, source) == ("handled_on_spot", "patrol")  # 一级处置, at the worker's position
    assert abs(x - lon) < 1e-6 and abs(y - lat) < 1e-6 and accuracy == 8
    assert query(site, "SELECT count(*) FROM photos WHERE incident_id = :i", i=case) == [(2,)]
    assert f"#{case}" in page.text_content("#notice") and "第1村 网格2" in page.text_content("#notice")  # by name
    # It is the worker's own case now (registered by them), waiting for the center's check.
    page.click("[data-tab=cases]")
    assert page.locator(f"#my-cases li[data-id='{case}']").count() == 1
    assert log.errors == []
    context.close()

    # The command center opens the case: the photos, when and how far from the case they were taken.
    context, center, log = zh_page(browser, site["base"])
    open_map(center, site["base"] + f"/map/incidents?case={case}")
    center.wait_for_selector(f"#case[data-id='{case}']")
    photos = center.locator("#case .photos figure")
    assert photos.count() == 2
    assert "拍摄点距案件 11 米" in photos.nth(0).text_content() and "2026-11-30 09:15" in photos.nth(0).text_content()
    assert "照片无位置信息" in photos.nth(1).text_content()
    assert center.evaluate("document.querySelector('#case .photos img').naturalWidth") == 320  # the small copy
    shot(center, settings, "command_center_photos")
    assert log.errors == []
    context.close()


def test_a_repair_asked_for_with_a_photo(browser, site, settings):
    context, page, log = phone(browser, site)
    page.click("[data-tab=repairs]")
    # The form starts on yesterday: a missed patrol is noticed the day after.
    day = page.input_value("#repair-day")
    today = page.evaluate("JSON.parse(document.getElementById('geogrid-config').textContent).day")
    assert day == (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()
    page.select_option("#repair-cell", CELL)
    page.fill("#repair-time", "09:30")
    page.fill("#repair-reason", "终端没电，已按时巡查")
    page.set_input_files("#repair-photo", files=[{"name": "r.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}])
    page.click("#repair-form button[type=submit]")
    page.wait_for_function("document.getElementById('notice').textContent.includes('补签')")
    ((repair, status, photos),) = query(
        site, "SELECT r.id, r.status, (SELECT count(*) FROM photos p WHERE p.repair_id = r.id) FROM patrol_repairs r "
              "WHERE r.person_id = :p AND r.day = :d", p=site["person"], d=day)  # fmt: skip
    assert (status, photos) == ("pending", 1)
    listed = page.locator(f"#my-repairs li[data-id='{repair}']")
    assert "待审批" in listed.text_content() and "第1村 网格2" in listed.text_content()  # the cell by its name
    assert listed.locator("img").count() == 1
    assert page.text_content("#repair-form .chosen") == ""  # the sent photo's name is gone with the form
    shot(page, settings, "phone_repair")
    # A second for the same cell and day is refused in words.
    page.select_option("#repair-cell", CELL)
    page.fill("#repair-day", day)
    page.fill("#repair-time", "10:10")
    page.fill("#repair-reason", "再试一次")
    page.click("#repair-form button[type=submit]")
    page.wait_for_selector("#notice.error")
    assert "已" in page.text_content("#notice")
    assert all("409" in e for e in log.errors)  # the refused request, and nothing else
    context.close()

    # The supervisor sees the request with its photo in the coverage page's 补签 tab, and on a phone too.
    for size in ({"width": 1366, "height": 768}, PHONE):
        context = browser.new_context(locale="zh-CN", viewport=size, bypass_csp=True)
        page = context.new_page()
        sign_in(page, site["base"], demo.ADMIN_NAME, demo.ADMIN_PASSWORD)
        open_map(page, site["base"] + f"/map/coverage?day={day}")  # ?day= as ?date=
        assert page.input_value("#date") == day
        page.click("[data-tab=repairs]")
        asked = page.locator(f"#repairs-list li[data-id='{repair}'], li.repair[data-id='{repair}']").first
        asked.wait_for()
        assert "终端没电" in asked.text_content() and asked.locator(".photos img").count() == 1
        assert page.locator(".folium-map").bounding_box()["width"] >= size["width"] * (0.95 if size is PHONE else 0.6)
        shot(page, settings, f"supervisor_repair_{size['width']}")
        context.close()


def test_the_track_sent_as_the_worker_walks(browser, site, settings):
    context, page, log = phone(browser, site)
    page.click("[data-tab=track]")
    page.click("#track-start")
    assert "recording" in page.get_attribute("[data-tab=track]", "class")
    lon, lat = site["spot"]
    for step in range(1, 7):  # 6 m a second, northwards
        page.wait_for_timeout(1100)
        context.set_geolocation({"longitude": lon, "latitude": lat + step * 0.00005, "accuracy": 8})
    page.wait_for_function("document.getElementById('track-status').textContent.match(/(\\d+) 个定位点待上传/)[1] >= 5")
    page.click("#track-send")
    page.wait_for_function("document.getElementById('track-status').textContent.includes('最近上传')")
    ((tracks, fixes),) = query(site, "SELECT count(DISTINCT track_id), count(*) FROM gps_fixes WHERE person_id = :p",
                               p=site["person"])  # fmt: skip
    assert tracks == 1 and fixes >= 5
    # The page's cells follow: the worker has been in their cell today.
    page.click("[data-tab=cells]")
    page.wait_for_function(f"document.querySelector(\"#cells li[data-code='{CELL}']\").textContent.includes('最近')")
    shot(page, settings, "phone_track")
    # More steps, sent again: still one track (the piece continues it).
    page.click("[data-tab=track]")
    for step in range(7, 10):
        page.wait_for_timeout(1100)
        context.set_geolocation({"longitude": lon, "latitude": lat + step * 0.00005, "accuracy": 8})
    page.click("#track-stop")
    page.wait_for_function("document.getElementById('track-status').textContent.includes('0 个定位点待上传')")
    ((tracks, more),) = query(site, "SELECT count(DISTINCT track_id), count(*) FROM gps_fixes WHERE person_id = :p",
                              p=site["person"])  # fmt: skip
    assert tracks == 1 and more > fixes
    assert log.errors == []
    context.close()


def test_the_same_page_on_a_desktop(browser, site, settings):
    context, page, log = phone(browser, site, {"width": 1366, "height": 768})
    panel, map_box = page.locator("#panel").bounding_box(), page.locator(".folium-map").bounding_box()
    assert panel["x"] + panel["width"] <= map_box["x"] + 1 and map_box["width"] > 900  # side by side
    page.click("[data-tab=cases]")
    assert page.locator("#my-cases li.case").count() >= 1
    assert visible_words(page) - {NAME} == set()  # the sign-in name is the user's own
    shot(page, settings, "desktop")
    assert log.errors == []
    context.close()
