"""`geogrid incidents ...`: the command center's intake, workflow, indicators, reassignment."""

from __future__ import annotations

import sys

import click

from geogrid import inputs
from geogrid.cli.context import ACTOR, Group, engine_of, settings_of, write_rejects


@click.group(cls=Group)
def incidents() -> None:
    """Command center: register incidents and assign them to their cells."""


@incidents.command("add")
@click.option("--lon", type=float, required=True, help="Longitude, WGS84.")
@click.option("--lat", type=float, required=True, help="Latitude, WGS84.")
@click.option("--category", required=True, help="Category code (see the taxonomy).")
@click.option("--source", default="reception", show_default=True)
@click.option("--description", default="")
@click.option("--reporter")
@click.option("--accuracy", "accuracy", type=float, help="GPS accuracy in metres.")
@click.option("--at", "reported_at", help="When it was reported (ISO; naive = GEOGRID_TIMEZONE).")
@click.option("--external-id", help="Its id in the system it comes from.")
@click.option("--system", help="The system that id belongs to (default: the source).")
@click.pass_context
def incidents_add(ctx, lon, lat, category, source, description, reporter, accuracy, reported_at, external_id, system):
    """Register one incident; prints the cell it was assigned to."""
    from geogrid import inputs
    from geogrid.incidents.intake import NewIncident, register
    from geogrid.store.db import unit_of_work

    when = inputs.moment(reported_at, "reported_at", settings_of(ctx).timezone)
    incident = NewIncident(
        lon=lon, lat=lat, category=category, source=source, description=description, reporter=reporter,
        reported_at=when, gps_accuracy_m=accuracy, external_id=external_id, system=system,
    )  # fmt: skip
    with unit_of_work(engine_of(ctx)) as conn:
        out = register(conn, settings_of(ctx), incident, actor=ACTOR)
    where = out["grid_code"] or "no cell (unassigned, flagged)"
    extra = f", snapped {out['snap_distance_m']} m" if out["assignment"] == "snapped" else ""
    click.echo(f"incident {out['id']}: {where}{extra}; deadline {out['deadline']}")


@incidents.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--reject",
    "reject_path",
    type=click.Path(dir_okay=False),
    help="Where bad rows go with their reason (default FILE.rejects.csv).",
)
@click.option("--category", help="Category for rows that have none.")
@click.option("--source", default="hotline", show_default=True, help="Source for rows that have none.")
@click.option("--system", help="The system the file's ids belong to (default: each row's source).")
@click.option("--id-column", help="Header of the column holding each row's id (default: id, case_no, 工单编号, "
              "编号...; rows without one get an id made from their content).")  # fmt: skip
@click.option("--batch-size", default=20_000, show_default=True)
@click.pass_context
def incidents_import(ctx, file, reject_path, category, source, system, id_column, batch_size):
    """Bulk import from CSV or GeoJSON: assigned in PostGIS a batch at a time, idempotent."""
    from geogrid.incidents.files import read_incidents
    from geogrid.incidents.intake import import_incidents
    from geogrid.store.db import unit_of_work

    rejected = []

    def reject(line: int, raw: dict, reason: str) -> None:
        rejected.append((line, raw, reason))

    settings = settings_of(ctx)
    rows = read_incidents(file, default_category=category, default_source=source, id_column=id_column,
                          categories_file=settings.categories_file, system=system)  # fmt: skip
    total = sum(1 for _ in open(file, encoding="utf-8", errors="replace")) if file.endswith(".csv") else 0
    with (
        unit_of_work(engine_of(ctx)) as conn,
        click.progressbar(length=max(total - 1, 1), label="importing", file=sys.stderr) as bar,
    ):
        report = import_incidents(conn, settings, rows, actor=ACTOR, reject=reject, batch_size=batch_size,
                                  progress=bar.update)  # fmt: skip
    report.id_source = rows.id_source()
    write_rejects(rejected, reject_path or f"{file}.rejects.csv")
    click.echo(report.summary())


@incidents.command("list")
@click.option("--status", help="One or more states, comma separated.")
@click.option("--category", help="A category code, its 4-digit event code (0501) or a 2-digit class (05).")
@click.option("--grid", help="Incidents of this grid and the grids below it.")
@click.option("--overdue", is_flag=True, help="Only overdue ones.")
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def incidents_list(ctx, status, category, grid, overdue, limit):
    """List incidents, newest first."""
    from geogrid.grids import hierarchy
    from geogrid.incidents.queries import list_incidents, statuses
    from geogrid.incidents.taxonomy import matching
    from geogrid.store.db import unit_of_work

    categories = matching(category, settings_of(ctx).categories_file)
    with unit_of_work(engine_of(ctx)) as conn:
        if grid:
            hierarchy.require(conn, grid)
        found = list_incidents(conn, statuses=statuses(status), category=categories,
                               grid=grid, overdue=True if overdue else None, limit=limit)  # fmt: skip
    for f in found["features"]:
        p = f["properties"]
        flag = "  OVERDUE" if p["overdue"] else ""
        click.echo(f"{p['id']:>8}  {p['reported_at'][:16]}  {p['status']:<15} {p['category']:<22} "
                   f"{p['grid_code'] or '(unassigned)'}{flag}")  # fmt: skip
    click.echo(f"{found['numberReturned']} of {found['numberMatched']}")


@incidents.command("transition")
@click.argument("incident_id", type=int)
@click.argument("to")
@click.option("--note", default="", help="The reason: required for rejected, rework and pending.")
@click.option("--department", help="Department it is dispatched or escalated to.")
@click.option("--person", "person_id", type=int, help="dispatched: id of the person who handles it.")
@click.option("--review-at", help="pending (挂账): the ISO date it is looked at again.")
@click.pass_context
def incidents_transition(ctx, incident_id, to, note, department, person_id, review_at):
    """Move a case on by the case flow: accepted (立案), rejected, dispatched, in_progress, resolved (反馈),
    closed (核查 passed, 结案), rework (核查 failed, 返工), escalated, pending (挂账), handled_on_spot."""
    from geogrid.incidents import workflow
    from geogrid.store.db import unit_of_work

    settings = settings_of(ctx)
    review = inputs.at(review_at, settings.timezone, "review_at")
    with unit_of_work(engine_of(ctx)) as conn:
        event = workflow.transition(conn, settings, incident_id, to, actor=ACTOR, note=note,
                                    department=department, person_id=person_id, review_at=review)  # fmt: skip
    click.echo(f"incident {incident_id}: {event['from']} -> {event['to']} {event['details'] or ''}")


@incidents.command("delay")
@click.argument("incident_id", type=int)
@click.option("--extend", "hours", type=float, help="延期: this many hours more.")
@click.option("--postpone", "until", help="缓办: postponed until this ISO date.")
@click.option("--reason", required=True)
@click.pass_context
def incidents_delay(ctx, incident_id, hours, until, reason):
    """Ask for more time for a case (the center decides with `incidents decide`)."""
    from geogrid.errors import InvalidInput
    from geogrid.incidents import workflow
    from geogrid.store.db import unit_of_work

    if (hours is None) == (until is None):
        raise InvalidInput("give --extend HOURS or --postpone DATE")
    settings = settings_of(ctx)
    with unit_of_work(engine_of(ctx)) as conn:
        event = workflow.request_delay(conn, incident_id, actor=ACTOR, kind="extend" if hours else "postpone",
                                       reason=reason, hours=hours,
                                       until=inputs.at(until, settings.timezone, "--postpone"))  # fmt: skip
    click.echo(f"incident {incident_id}: asked for more time (request {event['id']})")


@incidents.command("decide")
@click.argument("incident_id", type=int)
@click.option("--approve/--refuse", required=True)
@click.option("--note", default="")
@click.pass_context
def incidents_decide(ctx, incident_id, approve, note):
    """Approve or refuse a case's request for more time."""
    from geogrid.incidents import workflow
    from geogrid.store.db import unit_of_work

    with unit_of_work(engine_of(ctx)) as conn:
        event = workflow.decide_delay(conn, incident_id, actor=ACTOR, approve=approve, note=note)
    click.echo(f"incident {incident_id}: {event['details']['step']} {event['details']}")


@incidents.command("supervise")
@click.argument("incident_id", type=int)
@click.option("--note", default="")
@click.pass_context
def incidents_supervise(ctx, incident_id, note):
    """督办: a supervision notice on an overdue case to its handler and their superiors."""
    from geogrid.incidents import workflow
    from geogrid.store.db import unit_of_work

    with unit_of_work(engine_of(ctx)) as conn:
        event = workflow.supervise(conn, incident_id, actor=ACTOR, note=note)
    names = ", ".join(p["name"] for p in event["details"]["to"]) or "nobody on duty"
    click.echo(f"incident {incident_id}: supervision notice to {names}")


@incidents.command("visit")
@click.argument("incident_id", type=int)
@click.option("--method", type=click.Choice(["phone", "visit"]), required=True)
@click.option("--satisfied/--unsatisfied", required=True)
@click.option("--note", default="")
@click.pass_context
def incidents_visit(ctx, incident_id, method, satisfied, note):
    """Record the return visit (回访) after 结案: satisfied leaves it closed, unsatisfied reopens it."""
    from geogrid.incidents import workflow
    from geogrid.store.db import unit_of_work

    with unit_of_work(engine_of(ctx)) as conn:
        event = workflow.return_visit(conn, incident_id, actor=ACTOR, method=method, satisfied=satisfied, note=note)
    click.echo(f"incident {incident_id}: {event['from']} -> {event['to']}")


@incidents.command("metrics")
@click.option("--level", help="Grids of this level (default: the top level).")
@click.option("--grid", help="Only grids inside this one.")
@click.option("--from", "start", help="ISO date: first day.")
@click.option("--to", "end", help="ISO date: the last day (included), or a date-time (excluded).")
@click.pass_context
def incidents_metrics(ctx, level, grid, start, end):
    """Indicators per grid: registered, on the spot, escalated, closed, and the four rates."""
    from geogrid import inputs
    from geogrid.grids import hierarchy
    from geogrid.incidents.metrics import metrics
    from geogrid.store.db import unit_of_work

    settings = settings_of(ctx)
    level = inputs.level(level, settings.levels) or settings.levels[0]
    start, end = inputs.since(start, settings.timezone), inputs.until(end, settings.timezone)
    with unit_of_work(engine_of(ctx)) as conn:
        if grid:
            hierarchy.require(conn, grid)
        rows = metrics(conn, level=level, within=grid, start=start, end=end)
    click.echo(f"{'grid':<16}{'reg':>6}{'spot':>6}{'esc':>6}{'closed':>8}{'closure':>9}{'on time':>9}"
               f"{'visited':>9}{'satisf.':>9}")  # fmt: skip
    pct = lambda r: "-" if r is None else f"{r:.0%}"  # noqa: E731
    for r in rows:
        click.echo(f"{r['code']:<16}{r['registered']:>6}{r['handled_on_spot']:>6}{r['escalated']:>6}{r['closed']:>8}"
                   f"{pct(r['closure_rate']):>9}{pct(r['on_time_rate']):>9}{pct(r['return_visit_rate']):>9}"
                   f"{pct(r['satisfaction_rate']):>9}")  # fmt: skip


@incidents.command("indicators")
@click.option("--by", type=click.Choice(["grid", "department", "person"]), default="grid", show_default=True)
@click.option("--level", help="by grid: grids of this level (default: the top level).")
@click.option("--from", "start", required=True, help="ISO date: first day.")
@click.option("--to", "end", required=True, help="ISO date: the last day (included), or a date-time (excluded).")
@click.option("--xlsx", type=click.Path(dir_okay=False), help="Also write every level's table to this Excel file.")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
@click.pass_context
def incidents_indicators(ctx, by, level, start, end, xlsx, as_json):
    """The case indicators of docs/kpis.md (立案率, 结案率, 按期结案率, 返工率, 延期率 ...), ranked."""
    import json
    from pathlib import Path

    from geogrid.api.labels import in_chinese
    from geogrid.incidents import export, kpis
    from geogrid.store.db import unit_of_work

    settings = settings_of(ctx)
    level = inputs.level(level, settings.levels) or settings.levels[0]
    start, end = inputs.since(start, settings.timezone), inputs.until(end, settings.timezone)
    with unit_of_work(engine_of(ctx)) as conn:
        units = kpis.indicators(conn, start=start, end=end, by=by, level=level, levels=settings.levels)
        if xlsx:
            Path(xlsx).write_bytes(
                export.indicator_workbook(conn, settings, start, end, lambda level: in_chinese("level", level))
            )
    ranked = kpis.ranking(units, dict(settings.kpi_weights), settings.kpi_min_cases)
    if as_json:
        click.echo(json.dumps(ranked, ensure_ascii=False, indent=1, default=str))
    else:
        pct = lambda r: "-" if r is None else f"{r:.0%}"  # noqa: E731
        click.echo(f"{'rank':>4}  {'unit':<16}{'recv':>6}{'acc':>6}{'due':>6}{'closed':>7}{'closure':>9}"
                   f"{'on time':>9}{'rework':>8}{'extend':>8}{'pending':>8}{'score':>7}")  # fmt: skip
        for u in ranked:
            click.echo(f"{u['rank'] or '-':>4}  {str(u['name'] or u['key'] or '-'):<16}{u['received']:>6}"
                       f"{u['accepted']:>6}{u['due']:>6}{u['closed']:>7}{pct(u['closure_rate']):>9}"
                       f"{pct(u['on_time_rate']):>9}{pct(u['rework_rate']):>8}{pct(u['extension_rate']):>8}"
                       f"{u['pending']:>8}{u['score'] if u['score'] is not None else '-':>7}")  # fmt: skip
    if xlsx:
        click.echo(f"wrote {xlsx}", err=True)


@incidents.command("judgement")
@click.option("--date", "day", help="The day (default: yesterday in GEOGRID_TIMEZONE).")
@click.option("--level", help="The level whose grids are the areas (default: the second).")
@click.option("--xlsx", type=click.Path(dir_okay=False), help="Also write it as an Excel workbook.")
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")
@click.pass_context
def incidents_judgement(ctx, day, level, xlsx, as_json):
    """每天汇总研判: a day's cases by category and area, new early warnings, categories common to many areas, the
    overdue list."""
    import datetime as dt
    import json
    from pathlib import Path

    from geogrid.api.labels import in_chinese
    from geogrid.incidents import judgement
    from geogrid.incidents.taxonomy import categories
    from geogrid.store.db import unit_of_work

    settings = settings_of(ctx)
    day = inputs.day(day) if day else inputs.today(settings.timezone) - dt.timedelta(days=1)
    default = settings.levels[1] if len(settings.levels) > 1 else settings.levels[0]
    level = inputs.level(level, settings.levels) or default
    with unit_of_work(engine_of(ctx)) as conn:
        report = judgement.daily(conn, day=day, zone=settings.timezone, level=level,
                                 categories_file=settings.categories_file)  # fmt: skip
    if xlsx:
        names = categories(settings.categories_file)
        Path(xlsx).write_bytes(judgement.workbook(report, lambda c: names[c].zh if c in names else c,
                                                  lambda s: in_chinese("status", s)))  # fmt: skip
        click.echo(f"wrote {xlsx}", err=True)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=1, default=str))
        return
    totals = report["totals"]
    click.echo(f"{report['day']}: {totals['received']} received, {totals['closed']} closed; "
               f"{totals['overdue']} overdue now")  # fmt: skip
    click.echo("by category: " + ", ".join(f"{r['category']} {r['count']}" for r in report["by_category"]))
    click.echo(f"by {level}: " + ", ".join(f"{r['code'] or '-'} {r['count']}" for r in report["by_area"]))
    for w in report["new_warnings"]:
        click.echo(f"new warning: {w['grid_code']} {w['category']}: {w['last_7_days']} in 7 days")
    for r in report["common"]:
        click.echo(f"common to {r['areas']} areas: {r['category']} ({r['count']} cases)")
    for r in report["overdue"]:
        click.echo(f"overdue #{r['id']} {r['category']} {r['status']} by {r['seconds_over'] / 3600:.1f} h "
                   f"({r['grid_code'] or '-'}, {r['department'] or '-'}, {r['handler'] or '-'})")  # fmt: skip


@incidents.command("warnings")
@click.pass_context
def incidents_warnings(ctx):
    """Early warning: cells where a category is rising, and categories rising in many cells."""
    from geogrid.incidents.metrics import early_warnings
    from geogrid.store.db import unit_of_work

    with unit_of_work(engine_of(ctx)) as conn:
        found = early_warnings(conn)
    click.echo(f"rule: {found['rule']}")
    for w in found["cells"]:
        click.echo(f"{w['grid_code']}  {w['category']}: {w['last_7_days']} in 7 days "
                   f"(baseline {w['weekly_baseline']}/week, p={w['p_value']:.2g})")  # fmt: skip
    for w in found["widespread"]:
        click.echo(f"widespread: {w['category']} in {len(w['cells'])} cells")


@incidents.command("reassign")
@click.option("--all", "all_incidents", is_flag=True, help="Closed incidents too (default: open ones).")
@click.option("--full", is_flag=True,
              help="Look at every incident, not only where boundaries changed since it was assigned.")  # fmt: skip
@click.pass_context
def incidents_reassign(ctx, all_incidents, full):
    """Re-run cell assignment after boundaries changed (each move is recorded)."""
    from geogrid.incidents.intake import reassign
    from geogrid.store.db import unit_of_work

    with unit_of_work(engine_of(ctx)) as conn:
        moved = reassign(conn, settings_of(ctx), open_only=not all_incidents, actor=ACTOR, everything=full)
    click.echo(f"{moved} incidents moved to another cell")
