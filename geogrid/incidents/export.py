"""The indicator table of a period as an Excel workbook: Chinese headers, one sheet per grid
level, one for departments and one for people; rates as percentages, the ranking's score and
place ("不参与排名" for units with too few cases due); then the patrol indicators (巡查), a
sheet for the workers and one per grid level."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.incidents import kpis

#: Column -> Chinese header, in the order of the sheet.
HEADERS = {
    "key": "编码", "name": "名称", "received": "受理数", "accepted": "立案数", "rejected": "不予立案数",
    "dispatched": "派遣数", "pending": "挂账数", "postponed": "缓办数", "due": "应结案数", "closed": "结案数",
    "closed_on_time": "按期结案数", "reworked": "返工数", "extended": "延期数", "handled": "处置数",
    "visited": "回访数", "satisfied": "满意数", "acceptance_rate": "立案率", "dispatch_rate": "派遣率",
    "closure_rate": "结案率", "on_time_rate": "按期结案率", "rework_rate": "返工率", "extension_rate": "延期率",
    "handling_rate": "处置率", "satisfaction_rate": "回访满意率", "completion_rate": "办结率",
    "score": "综合得分", "rank": "排名",
}  # fmt: skip


def indicator_workbook(conn: Connection, settings: Settings, start: dt.datetime, end: dt.datetime,
                       level_name: Callable[[str], str] = str) -> bytes:  # fmt: skip
    """The workbook (xlsx bytes) of every level's and every department's indicators over [start, end);
    *level_name* names a level's sheet (the faces pass the Chinese label)."""
    book = Workbook()
    book.remove(book.active)
    zone = ZoneInfo(settings.timezone)
    last = (end.astimezone(zone) - dt.timedelta(microseconds=1)).date()
    title = f"案件指标 {start.astimezone(zone).date().isoformat()} 至 {last.isoformat()}"
    weights = dict(settings.kpi_weights)
    sheets = [(level_name(level), "grid", level) for level in settings.levels] + [
        ("部门", "department", None),
        ("人员", "person", None),
    ]
    for name, by, level in sheets:
        units = kpis.indicators(conn, start=start, end=end, by=by, level=level, levels=settings.levels)
        rows = []
        for unit in kpis.ranking(units, weights, settings.kpi_min_cases):
            row = [unit.get(column) for column in HEADERS]
            if by == "department" and row[0] is None:
                row[0] = row[1] = "（未派遣部门）"
            elif by == "person" and row[0] is None:
                row[0] = row[1] = "（未派遣到人）"
            if unit["rank"] is None:
                row[-1] = "不参与排名"
            rows.append(row)
        widths = [16, 16, *(max(8, len(h) * 2 + 2) for h in list(HEADERS.values())[2:])]
        _sheet(book, name, f"{title}（{name}）", HEADERS, rows, kpis.RATES, widths, "C3")
    _patrol_sheets(book, conn, settings, start.astimezone(zone).date(), last, title, level_name)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


#: The patrol indicators' columns (docs/kpis.md) -> Chinese header, per worker and per grid.
PATROL_HEADERS = {
    "person": {"name": "人员", "cell_days": "应巡单元日", "met": "达标单元日", "coverage_rate": "巡查覆盖率",
               "missed_days": "漏巡天数", "patrol_days": "巡查天数", "km": "巡查里程（公里）",
               "hours": "在岗时长（小时）"},
    "grid": {"key": "编码", "name": "名称", "cell_days": "应巡单元日", "met": "达标单元日",
             "coverage_rate": "巡查覆盖率", "missed_cell_days": "漏巡单元日"},
}  # fmt: skip


def _patrol_sheets(book: Workbook, conn: Connection, settings: Settings, first: dt.date, last: dt.date, title: str,
                   level_name: Callable[[str], str]) -> None:  # fmt: skip
    """The period's patrol indicators: a sheet for the workers and one per grid level."""
    from geogrid.patrols import indicators as patrol

    sheets = [("巡查（人员）", "person", None)] + [(f"巡查（{level_name(level)}）", "grid", level)
                                                 for level in settings.levels]  # fmt: skip
    days = patrol.judged_days(conn, settings, first, last)  # brought up to date once for every sheet
    for name, by, level in sheets:
        units = patrol.indicators(conn, settings, start=first, end=last, by=by, level=level, days=days)
        headers = PATROL_HEADERS[by]
        _sheet(book, name, f"{title.replace('案件指标', '巡查指标')}（{name}）", headers,
               [[unit.get(column) for column in headers] for unit in units], ("coverage_rate",),
               [14] * len(headers), "B3")  # fmt: skip


def _sheet(book: Workbook, name: str, title: str, headers: dict, rows: list[list], rates, widths: list[int],
           freeze: str) -> None:  # fmt: skip
    """A sheet: the title, the Chinese headers in bold, the rows (*rates* as percentages), column widths."""
    sheet = book.create_sheet(name[:31])
    sheet.append([title])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append(list(headers.values()))
    for cell in sheet[2]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
    percent = [n for n, key in enumerate(headers, start=1) if key in rates]
    for row in rows:
        sheet.append(row)
        for column in percent:
            sheet.cell(sheet.max_row, column).number_format = "0.0%"
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = freeze
