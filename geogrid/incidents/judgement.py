"""The daily judgement (每天汇总研判): what the command center's morning meeting looks at.

For one day (default: yesterday in the center's time zone):

- the day's cases by category and by area (the grids of one level, default the second);
- new early warnings: (cell, category) pairs flagged at the day's end that were not flagged at its start
  (:func:`geogrid.incidents.metrics.early_warnings`), and the categories rising in many cells at once;
- cases common to many places: the day's categories reported in at least ``min_areas`` areas;
- the overdue list: every open case past its deadline now, most overdue first.

The same content is a page (``/judgement``), JSON (``/api/judgement``) and a workbook (``.xlsx``).
"""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy.engine import Connection

from geogrid.incidents.metrics import early_warnings
from geogrid.incidents.queries import OVERDUE
from geogrid.incidents.taxonomy import categories

#: How many overdue cases the list shows (the count is always complete).
OVERDUE_LIMIT = 500
#: A category reported in this many areas (grids of the chosen level) in one day is common to many places.
MIN_AREAS = 3


def day_bounds(day: dt.date, zone: str) -> tuple[dt.datetime, dt.datetime]:
    """[00:00, next 00:00) of *day* in *zone*."""
    tz = ZoneInfo(zone)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


def daily(conn: Connection, *, day: dt.date, zone: str, level: str, categories_file=None,
          min_areas: int = MIN_AREAS) -> dict:  # fmt: skip
    """The judgement of *day*: totals, by category, by area (grids of *level*), warnings, common cases, overdue."""
    start, end = day_bounds(day, zone)
    span = {"start": start, "end": end}
    totals = dict(conn.execute(sa.text(f"""
        SELECT (SELECT count(*) FROM incidents WHERE reported_at >= :start AND reported_at < :end) AS received,
               (SELECT count(*) FROM incidents WHERE closed_at >= :start AND closed_at < :end) AS closed,
               (SELECT count(*) FROM incidents i WHERE {OVERDUE}) AS overdue
    """), span).mappings().one())  # fmt: skip
    names = categories(categories_file)
    by_category = [
        {"category": code, "class": names[code].major if code in names else None, "count": n}
        for code, n in conn.execute(
            sa.text(
                "SELECT category, count(*) FROM incidents WHERE reported_at >= :start AND reported_at < :end "
                "GROUP BY category ORDER BY count(*) DESC, category"
            ),
            span,
        ).all()  # fmt: skip
    ]
    by_area = [dict(r) for r in conn.execute(sa.text("""
        SELECT coalesce(a.ancestor, '') AS code, coalesce(min(g2.name), '') AS name, count(*) AS count,
               count(*) FILTER (WHERE i.status IN ('closed', 'rejected')) AS done
          FROM incidents i
          LEFT JOIN grids g ON g.id = i.grid_id
          LEFT JOIN grid_ancestry a ON a.code = g.code AND a.ancestor_level = :level
          LEFT JOIN grids g2 ON g2.code = a.ancestor AND g2.valid_to IS NULL
         WHERE i.reported_at >= :start AND i.reported_at < :end
         GROUP BY 1 ORDER BY count(*) DESC, 1
    """), {**span, "level": level}).mappings()]  # fmt: skip
    common = [dict(r) for r in conn.execute(sa.text("""
        SELECT i.category, count(DISTINCT a.ancestor) AS areas, count(*) AS count,
               array_agg(DISTINCT a.ancestor) AS codes
          FROM incidents i JOIN grids g ON g.id = i.grid_id
          JOIN grid_ancestry a ON a.code = g.code AND a.ancestor_level = :level
         WHERE i.reported_at >= :start AND i.reported_at < :end
         GROUP BY i.category HAVING count(DISTINCT a.ancestor) >= :min_areas
         ORDER BY count(DISTINCT a.ancestor) DESC, i.category
    """), {**span, "level": level, "min_areas": min_areas}).mappings()]  # fmt: skip
    now, before = early_warnings(conn, now=end), early_warnings(conn, now=start)
    seen = {(w["grid_code"], w["category"]) for w in before["cells"]}
    overdue = [dict(r) for r in conn.execute(sa.text(f"""
        SELECT i.id, i.category, i.status, i.deadline, i.department, g.code AS grid_code, g.name AS grid_name,
               p.name AS handler, p.phone AS handler_phone,
               extract(epoch FROM now() - i.deadline)::bigint AS seconds_over
          FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id LEFT JOIN people p ON p.id = i.handler_person_id
         WHERE {OVERDUE}
         ORDER BY i.deadline, i.id LIMIT :limit
    """), {"limit": OVERDUE_LIMIT}).mappings()]  # fmt: skip
    for row in overdue:
        row["deadline"] = row["deadline"].astimezone(ZoneInfo(zone)).isoformat()
    return {
        "day": day.isoformat(), "from": start.isoformat(), "to": end.isoformat(), "level": level,
        "totals": totals, "by_category": by_category, "by_area": by_area,
        "new_warnings": [w for w in now["cells"] if (w["grid_code"], w["category"]) not in seen],
        "widespread": now["widespread"], "warning_rule": now["rule"], "common": common, "min_areas": min_areas,
        "overdue": overdue, "overdue_shown": len(overdue),
    }  # fmt: skip


def workbook(report: dict, category_name, status_name) -> bytes:
    """The judgement as an xlsx: a sheet per part, Chinese headers. *category_name* and *status_name* put codes
    into words."""
    book = Workbook()
    summary = book.active
    summary.title = "概况"
    summary.append([f"每日汇总研判 {report['day']}"])
    summary["A1"].font = Font(bold=True, size=13)
    for label, key in (("受理案件", "received"), ("当日结案", "closed"), ("当前超期案件", "overdue")):
        summary.append([label, report["totals"][key]])
    summary.append(["新增预警", len(report["new_warnings"])])
    summary.append(["普遍性问题（多处同类）", len(report["common"])])
    summary.column_dimensions["A"].width = 26
    parts = [
        ("分类统计", ["类别", "大类", "案件数"],
         [[category_name(r["category"]), r["class"], r["count"]] for r in report["by_category"]]),
        ("区域统计", ["区域编码", "区域名称", "案件数", "已办结"],
         [[r["code"] or "（不在任何网格）", r["name"], r["count"], r["done"]] for r in report["by_area"]]),
        ("新增预警", ["网格编码", "类别", "近7天案件", "前8周周均", "P值"],
         [[w["grid_code"], category_name(w["category"]), w["last_7_days"], w["weekly_baseline"], w["p_value"]]
          for w in report["new_warnings"]]),
        ("普遍性问题", ["类别", "区域数", "案件数", "区域"],
         [[category_name(r["category"]), r["areas"], r["count"], "、".join(sorted(r["codes"]))]
          for r in report["common"]]),
        ("超期案件", ["案件号", "类别", "状态", "办理时限", "超期（小时）", "网格编码", "网格名称", "部门", "承办人",
                      "电话"],
         [[r["id"], category_name(r["category"]), status_name(r["status"]), r["deadline"][:16].replace("T", " "),
           round(r["seconds_over"] / 3600, 1), r["grid_code"], r["grid_name"], r["department"], r["handler"],
           r["handler_phone"]] for r in report["overdue"]]),
    ]  # fmt: skip
    for title, headers, rows in parts:
        sheet = book.create_sheet(title)
        sheet.append(headers)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
        for n in range(len(headers)):
            sheet.column_dimensions[chr(ord("A") + n)].width = 14
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
