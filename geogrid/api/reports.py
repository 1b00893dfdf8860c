"""The command center's report pages: the indicator dashboard (ECharts, from the npm registry) and the daily
judgement (每天汇总研判). Both read the same API the pages' downloads and other systems use."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, render_template, request

from geogrid import inputs
from geogrid.api import i18n
from geogrid.api.auth import access, csrf_token
from geogrid.api.context import principal, state
from geogrid.api.incidents import READERS, judgement_of
from geogrid.api.labels import label, labels
from geogrid.incidents import kpis

bp = Blueprint("reports", __name__)


@bp.get("/dashboard")
@access(*READERS)
def dashboard():
    """The case indicators per area, department or person: charts, the trend, the ranking; the Excel export."""
    settings = state().settings
    today = inputs.today(settings.timezone)
    config = {
        "levels": [{"code": level, "name": label("level", level)} for level in settings.levels],
        "rates": list(kpis.RATES), "weights": dict(settings.kpi_weights), "min_cases": settings.kpi_min_cases,
        "messages": i18n.js_messages(), "labels": labels(), "language": i18n.current(),
        "today": today.isoformat(), "timezone": settings.timezone,
        # The patrol indicators are the supervisors' (and admins'): shown to them only.
        "patrols": principal().role in ("admin", "supervisor"),
    }  # fmt: skip
    return render_template("dashboard.html", user=principal(), csrf=csrf_token(), config=config,
                           start=(today - dt.timedelta(days=6)).isoformat(), end=today.isoformat(),
                           levels=config["levels"])  # fmt: skip


@bp.get("/judgement")
@access(*READERS)
def judgement_page():
    """每天汇总研判: yesterday's (or a chosen day's) cases by category and area, new early warnings, cases common
    to many places and the overdue list; the same as a workbook."""
    settings = state().settings
    report = judgement_of(request.args)
    levels = [{"code": level, "name": label("level", level)} for level in settings.levels]
    return render_template("judgement.html", user=principal(), csrf=csrf_token(), report=report, levels=levels,
                           query=f"date={report['day']}&level={report['level']}")  # fmt: skip
