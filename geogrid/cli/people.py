"""`geogrid people ...`: the roster, people and their duties on grids."""

from __future__ import annotations

import json

import click

from geogrid.cli.context import Group, engine_of, write_rejects


@click.group(cls=Group)
def people() -> None:
    """The roster: grid workers, cadres and handlers, and their duties on grids."""


def _echo_person(p: dict) -> None:
    staff = f" [{p['staff_no']}]" if p["staff_no"] else ""
    duties = ", ".join(f"{d['duty']} {d['grid_code']}" + (f" ({d['department']})" if d["department"] else "")
                       for d in p["duties"]) or "no duty"  # fmt: skip
    click.echo(f"{p['id']:>6}  {p['name']}{staff}: {duties}")


@people.command("add")
@click.argument("name")
@click.option("--phone")
@click.option("--staff-no", help="Staff or terminal number (unique).")
@click.pass_context
def people_add(ctx, name, phone, staff_no):
    """Register a person."""
    from geogrid.people import add_person
    from geogrid.store.db import unit_of_work

    with unit_of_work(engine_of(ctx)) as conn:
        _echo_person(add_person(conn, name, phone=phone, staff_no=staff_no))


@people.command("list")
@click.option("--grid", help="Only people with a duty on this grid or below it.")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
@click.pass_context
def people_list(ctx, grid, as_json):
    """Everyone (or the people of a grid) with their current duties."""
    from geogrid.people import list_people
    from geogrid.store.db import unit_of_work

    with unit_of_work(engine_of(ctx)) as conn:
        found = list_people(conn, grid=grid)
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=1, default=str))
        return
    for p in found:
        _echo_person(p)


@people.command("assign")
@click.argument("person")
@click.argument("grid_code")
@click.option("--duty", default="grid_helper", show_default=True,
              help="grid_chief, grid_manager, grid_helper, adopting_cadre or department_handler.")  # fmt: skip
@click.option("--department", help="The department (for a department handler).")
@click.pass_context
def people_assign(ctx, person, grid_code, duty, department):
    """Give PERSON (id, staff number or name) a duty on GRID_CODE."""
    from geogrid.people import assign_duty
    from geogrid.store.db import unit_of_work

    with unit_of_work(engine_of(ctx)) as conn:
        given, new = assign_duty(conn, person, grid_code, duty, department=department)
    click.echo(f"{'assigned' if new else 'already assigned'}: person {given['person_id']} {duty} {grid_code}")


@people.command("unassign")
@click.argument("person")
@click.argument("grid_code")
@click.option("--duty", help="Only this duty (default: all of theirs on the grid).")
@click.pass_context
def people_unassign(ctx, person, grid_code, duty):
    """End PERSON's duties on GRID_CODE (kept in the history)."""
    from geogrid.people import end_duty
    from geogrid.store.db import unit_of_work

    with unit_of_work(engine_of(ctx)) as conn:
        ended = end_duty(conn, person, grid_code, duty)
    click.echo(f"{ended} duty(ies) ended on {grid_code}")


@people.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--reject", "reject_path", type=click.Path(dir_okay=False),
              help="Where bad rows go with their reason (default FILE.rejects.csv).")  # fmt: skip
@click.pass_context
def people_import(ctx, file, reject_path):
    """Import a roster CSV: name, grid_code, duty[, staff_no, phone, department] (also 姓名, 网格编码, 职责...)."""
    from geogrid.people import import_roster, read_roster
    from geogrid.store.db import unit_of_work

    rejected = []
    with unit_of_work(engine_of(ctx)) as conn:
        report = import_roster(conn, read_roster(file),
                               reject=lambda line, raw, reason: rejected.append((line, raw, reason)))  # fmt: skip
    write_rejects(rejected, reject_path or f"{file}.rejects.csv")
    click.echo(report.summary())
