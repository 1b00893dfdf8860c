"""`geogrid audit`: who changed which records when."""

from __future__ import annotations

import json

import click

from geogrid.cli.context import engine_of, settings_of


@click.command("audit")
@click.option("--from", "since", help="From this ISO date or date-time.")
@click.option("--to", "until", help="Until this ISO date (included) or date-time (excluded).")
@click.option("--actor", help="Only changes by this user (cli:<os user> for the CLI, db:<role> for plain SQL).")
@click.option("--table", help="Only changes to this table.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@click.pass_context
def audit(ctx, since, until, actor, table, limit, as_json):
    """Who changed which records when, newest first (one line per statement and table)."""
    from geogrid import inputs
    from geogrid.audit import audit_entries
    from geogrid.store.db import unit_of_work

    zone = settings_of(ctx).timezone
    since, until = inputs.since(since, zone), inputs.until(until, zone)
    with unit_of_work(engine_of(ctx)) as conn:
        entries = audit_entries(conn, since=since, until=until, actor=actor, table=table, limit=limit)
    if as_json:
        click.echo(json.dumps(entries, ensure_ascii=False, indent=1))
        return
    for e in entries:
        count = "?" if e["row_count"] is None else f"{e['row_count']:,}"
        keys = ", ".join(e["keys"][:5]) + (" ..." if len(e["keys"]) > 5 or (e["row_count"] or 0) > 5 else "")
        click.echo(f"{e['at'][:19]}  {e['actor']:<20} {e['operation']:<8} {e['table']:<16} {count:>9}  {keys}")
