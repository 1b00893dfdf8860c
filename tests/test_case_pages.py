"""One case through the command center's page, in Chinese, at 1366 x 768: registered by a click on the map,
立案, 派遣 to a department and a person, 处置, 延期 asked for and approved, 反馈, 核查 failing (返工), 反馈 again,
核查 passing (结案), 回访. Every step is a button on the case beside the map; screenshots at each step."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from geogrid.api import create_app
from geogrid.incidents import kpis
from geogrid.testing import live_server, open_map, screen_point
from tests.conftest import demo_engine, helper_on, zh_page
from tests.test_language import visible_words

CELL = "XWZ001002"


@pytest.fixture(scope="module")
def site(databases, settings):
    engine = demo_engine(databases)
    with engine.begin() as conn:
        person, *spot = helper_on(conn, CELL)
    chinese = dataclasses.replace(settings, language="zh_CN")
    with live_server(create_app(chinese, bind=engine)) as base:
        yield {"base": base, "engine": engine, "person": person, "spot": tuple(spot)}
    engine.dispose()


def test_one_case_from_registration_to_the_return_visit_through_the_page(browser, site, settings):
    context, page, log = zh_page(browser, site["base"])
    shots = settings.home / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    step = iter(range(1, 100))

    def shot(name: str) -> None:
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots / f"case_flow_{next(step):02d}_{name}.png"))

    def status(expected: str) -> None:
        page.wait_for_selector(f"#case[data-status={expected}]")

    def press(button: str) -> None:
        page.click(f"#case [data-step={button}]")

    def confirm() -> None:
        page.click("#step-form button[type=submit]")
        page.wait_for_selector("#step-form", state="detached")

    open_map(page, site["base"] + "/map/incidents")
    # 信息采集: the register tab, a click on the map, the two-level category.
    page.click("[data-tab=register]")
    lon, lat = site["spot"]
    page.evaluate(f"window[document.querySelector('.folium-map').id].setView([{lat}, {lon}], 17, {{animate: false}})")
    page.click("#r-pick")
    page.mouse.click(*screen_point(page, lon, lat))
    picked = [float(v) for v in page.input_value("#r-position").split(",")]
    assert abs(picked[0] - lon) < 2e-5 and abs(picked[1] - lat) < 2e-5
    page.select_option("#r-class", "01")
    offered = page.eval_on_selector_all("#r-category option:not([hidden])", "os => os.map(o => o.dataset.class)")
    assert len(offered) > 2 and set(offered[1:]) == {"01"}  # the class's categories only
    page.select_option("#r-category", "garbage")
    page.select_option("#r-source", "hotline")
    page.fill("#r-description", "垃圾桶满溢，无人清运")
    page.fill("#r-reporter", "张女士 13900000000")
    page.click("#register button[type=submit]")
    status("reported")
    case = int(page.get_attribute("#case", "data-id"))
    assert page.get_attribute("#case", "data-cell") == CELL
    assert CELL in page.text_content("#notice") and f"#{case}" in page.text_content("#notice")
    # The case is beside the map, visible without scrolling: its actions and people are on screen.
    box = page.locator("#case .actions").bounding_box()
    assert box and box["y"] + box["height"] < 768 and box["x"] > 900
    assert "13800000000" in page.text_content("#case .people")
    assert visible_words(page) == set()
    shot("registered")

    press("accepted")
    status("accepted")
    shot("accepted")

    press("dispatched")
    # The deadline is the category's (garbage: 48 hours), said before it is dispatched.
    assert "垃圾清理为48小时" in page.text_content("#a-deadline")
    page.select_option("#a-department", "环卫")
    page.select_option("#a-person", str(site["person"]))
    confirm()
    status("dispatched")
    assert "王伟" in page.text_content("#case .people") and "环卫" in page.text_content("#case")
    shot("dispatched")

    press("in_progress")
    status("in_progress")
    with site["engine"].connect() as conn:
        before = conn.execute(sa.text("SELECT deadline FROM incidents WHERE id = :i"), {"i": case}).scalar_one()
    press("extend")
    page.fill("#a-hours", "48")
    page.fill("#a-reason", "需协调环卫车辆")
    confirm()
    page.wait_for_selector("#case .request")
    # The request waits on the board among the decisions to take.
    page.wait_for_function("document.querySelector('#queues [data-queue=approvals] b').textContent === '1'")
    shot("more_time_asked")
    press("approve")
    confirm()
    page.wait_for_selector("#case .request", state="detached")
    with site["engine"].connect() as conn:
        after = conn.execute(sa.text("SELECT deadline FROM incidents WHERE id = :i"), {"i": case}).scalar_one()
    assert after - before == dt.timedelta(hours=48)
    assert "批准延期" in page.text_content("#case .history")
    shot("more_time_approved")

    press("resolved")
    page.fill("#a-note", "已清运")
    confirm()
    status("resolved")
    # The board's queue of cases to check holds it now.
    page.wait_for_function("document.querySelector('#queues [data-queue=to_check] b').textContent === '1'")
    press("rework")
    page.fill("#a-reason", "现场仍有散落垃圾")
    confirm()
    status("rework")
    shot("rework")

    press("resolved")
    page.fill("#a-note", "已彻底清理")
    confirm()
    status("resolved")
    press("closed")
    confirm()
    status("closed")
    assert "待回访" in page.text_content("#case .state")
    shot("closed")

    press("visit")
    page.select_option("#a-method", "phone")
    page.select_option("#a-satisfied", "yes")
    confirm()
    page.wait_for_function("!document.querySelector('#case .state').textContent.includes('待回访')")
    history = page.text_content("#case .history")
    assert "回访" in history and "满意" in history and "核查不通过" in history
    assert visible_words(page) == set()
    shot("visited")

    with site["engine"].connect() as conn:
        steps = conn.execute(sa.text("SELECT to_status, details->>'step' FROM incident_events WHERE incident_id = :i "
                                     "ORDER BY at, id"), {"i": case}).all()  # fmt: skip
        assert [s for s, _ in steps] == [
            "reported",
            "accepted",
            "dispatched",
            "in_progress",
            "in_progress",
            "in_progress",
            "resolved",
            "rework",
            "resolved",
            "closed",
            "closed",
        ]
        assert [d for _, d in steps if d] == ["delay_requested", "delay_approved"]
        # The indicators count what the page did: one rework, one extension, closed on time.
        now = dt.datetime.now(dt.UTC)
        units = kpis.indicators(conn, start=now - dt.timedelta(days=1), end=now + dt.timedelta(minutes=1),
                                by="department")  # fmt: skip
    sanitation = next(u for u in units if u["key"] == "环卫")
    assert sanitation["reworked"] == 1 and sanitation["extended"] == 1 and sanitation["closed_on_time"] == 1
    assert log.errors == [] and log.external == []
    context.close()


def test_clusters_take_the_colour_of_their_worst_case_and_count_the_overdue(browser, site, settings):
    from geogrid.incidents.intake import NewIncident, register

    lon, lat = site["spot"]
    with site["engine"].begin() as conn:
        for n, days_ago in enumerate((9, 9, 0, 0, 0)):  # two overdue among five cases a few metres apart
            when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
            register(conn, settings, NewIncident(lon=lon + n * 2e-5, lat=lat + 3e-4, category="garbage",
                                                 source="patrol", reported_at=when), actor="test")  # fmt: skip
        overdue = conn.execute(sa.text("SELECT count(*) FROM incidents WHERE deadline < now() AND status NOT IN "
                                       "('closed', 'rejected', 'resolved')")).scalar_one()  # fmt: skip
    context, page, _ = zh_page(browser, site["base"])
    open_map(page, site["base"] + "/map/incidents")
    page.wait_for_selector(".case-cluster")
    # At the opening zoom the cases sit in clusters: a cluster with an overdue case is red and says how many.
    counted = page.evaluate("""() => {
        const due = [...document.querySelectorAll('.case-cluster b.due')].map(b => Number(b.textContent));
        const red = document.querySelectorAll('.marker-cluster.case-cluster-overdue').length;
        const loose = document.querySelectorAll('path.incident[stroke="#000"]').length;  // overdue markers alone
        return {due: due.reduce((a, b) => a + b, 0), red, loose, badges: due.length}; }""")
    assert overdue == 2
    assert counted["red"] == counted["badges"] >= 1 and counted["due"] + counted["loose"] == overdue
    page.screenshot(path=str(settings.home / "screenshots" / "case_clusters.png"))
    context.close()


def test_the_dashboard_shows_the_indicators_charts_and_ranking_in_chinese(browser, site, settings):
    context, page, log = zh_page(browser, site["base"])
    page.goto(site["base"] + "/dashboard")
    page.wait_for_selector("body[data-ready='1']")
    api = page.evaluate("""async () => {
        const f = document.getElementById('period');
        const q = 'from=' + f.elements.from.value + '&to=' + f.elements.to.value;
        return (await (await fetch('/api/indicators?by=total&' + q)).json()).units[0]; }""")
    assert page.text_content("#tiles [data-key=received] b") == str(api["received"]) and api["received"] >= 4
    assert page.text_content("#tiles [data-key=rework_rate] b") == f"{api['rework_rate'] * 100:.1f}%"
    assert page.locator("#chart-units canvas").count() == 1 and page.locator("#chart-trend canvas").count() == 1
    # By village (the second level) by default: a row per village, the one without cases too.
    rows = page.locator("#ranking tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).text_content().startswith("不参与排名第1村 XWZ001")  # fewer than 5 cases due
    assert rows.nth(1).text_content().startswith("不参与排名第2村 XWZ0020")  # nothing received: empty rates
    assert "–" in rows.nth(1).text_content()
    # The quick periods: the last 7 days are shown at first, and the button says so.
    assert page.get_attribute("[data-period=last-7-days]", "aria-pressed") == "true"
    page.click("[data-period=this-month]")
    page.wait_for_function("document.querySelector('#period').elements.from.value.endsWith('-01')")
    assert page.get_attribute("[data-period=this-month]", "aria-pressed") == "true"
    assert page.get_attribute("[data-period=last-7-days]", "aria-pressed") == "false"
    page.select_option("#by", "department")
    page.click("#period button[type=submit]")
    page.wait_for_function("document.querySelector('#ranking tbody tr[data-key=\"环卫\"]') !== null")
    # The patrols of the same units (an admin sees them): every village, none patrolled in this sample.
    page.select_option("#by", "grid:village")
    page.click("#period button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#patrols tbody tr').length === 2")
    assert "巡查覆盖率" in page.text_content("#patrols thead") and "第1村" in page.text_content("#patrols tbody")
    # The workbook link follows the period.
    assert page.get_attribute("#export", "href").startswith("/api/indicators.xlsx?from=")
    assert visible_words(page) == set()
    page.screenshot(path=str(settings.home / "screenshots" / "dashboard.png"), full_page=True)
    assert log.errors == [] and log.external == []
    context.close()


def test_the_daily_judgement_page_lists_the_overdue_and_opens_a_case(browser, site, settings):
    context, page, log = zh_page(browser, site["base"])
    today = dt.datetime.now(dt.UTC).astimezone(ZoneInfo(settings.timezone)).date()
    page.goto(site["base"] + f"/judgement?date={today}&level=grid")
    assert page.text_content("h2") == f"每日汇总研判（{today}）"
    assert "垃圾清理" in page.text_content("#by-category") and CELL in page.text_content("#by-area")
    with site["engine"].connect() as conn:
        overdue = conn.execute(sa.text("SELECT id FROM incidents WHERE deadline < now() AND status NOT IN "
                                       "('closed', 'rejected', 'resolved', 'handled_on_spot', 'pending', 'postponed') "
                                       "ORDER BY deadline, id")).scalars().all()  # fmt: skip
    rows = page.locator("#overdue tbody tr")
    assert rows.count() == len(overdue) >= 2
    assert rows.first.locator("a").text_content() == f"#{overdue[0]}"
    assert visible_words(page) == set()
    page.screenshot(path=str(settings.home / "screenshots" / "judgement.png"), full_page=True)
    rows.first.locator("a").click()
    page.wait_for_selector(f"#case[data-id='{overdue[0]}']")
    assert "已超期" in page.text_content("#case .state")
    assert log.errors == [] and log.external == []
    context.close()
