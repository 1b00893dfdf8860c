"""The roster: people who work on the grid and their duties on grids.

A duty ties a person to a grid by code, so it survives boundary versions: grid chief,
grid manager, grid helper, adopting cadre, or department handler (naming the
department). Duties are never deleted; ending one sets ``valid_to``, so who was
responsible when stays known (and audited). Patrol coverage reads the current patrol
duties (the cells a worker must patrol, the ones they missed); an incident's
responsible people are the current duties on its cell and the cell's parents.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.errors import Conflict, InvalidInput, NotFound
from geogrid.grids import hierarchy
from geogrid.store.models import DUTIES

MAX_TEXT = 200


def find_person(conn: Connection, ref: str | int) -> int:
    """A person's id from their id, staff number (external_id) or unique name."""
    text = str(ref).strip()
    if text.isdigit():
        found = conn.execute(sa.text("SELECT id FROM people WHERE id = :id"), {"id": int(text)}).scalar()
        if found is not None:
            return found
    rows = (
        conn.execute(
            sa.text("SELECT id FROM people WHERE external_id = :text OR name = :text ORDER BY id"), {"text": text}
        )
        .scalars()
        .all()
    )
    if not rows:
        raise NotFound("no person {text!r} (give an id, a staff number or a name)", text=text)
    if len(rows) > 1:
        raise InvalidInput("{text!r} names {n_rows} people; give the id or staff number", text=text, n_rows=len(rows))
    return rows[0]


def add_person(conn: Connection, name: str, *, phone: str | None = None, staff_no: str | None = None) -> dict:
    """Register a person; a staff number, when given, must be new."""
    name, phone, staff_no = (
        _text("name", name),
        _text("phone", phone, blank=True),
        _text("staff_no", staff_no, blank=True),
    )
    if (
        staff_no is not None
        and conn.execute(sa.text("SELECT 1 FROM people WHERE external_id = :s"), {"s": staff_no}).first()
    ):
        raise Conflict("staff number {staff_no!r} is someone else's already", staff_no=staff_no)
    person_id = conn.execute(
        sa.text("INSERT INTO people (name, phone, external_id) VALUES (:n, :p, :s) RETURNING id"),
        {"n": name, "p": phone, "s": staff_no},
    ).scalar_one()
    return person(conn, person_id)


def person(conn: Connection, ref: str | int) -> dict:
    """A person (by id, staff number or unique name) with their current duties."""
    person_id = find_person(conn, ref)
    (found,) = _people(conn, "p.id = :id", {"id": person_id})
    return found


def list_people(conn: Connection, *, grid: str | None = None) -> list[dict]:
    """Everyone with their current duties, or those with a current duty on *grid* or a grid below it."""
    if grid is None:
        return _people(conn, "true", {})
    _current_grid(conn, grid)
    return _people(
        conn,
        "p.id IN (SELECT person_id FROM assignments WHERE valid_to IS NULL "
        "AND grid_code IN (SELECT geogrid_subtree(ARRAY[CAST(:grid AS text)])))",
        {"grid": grid},
    )


def assign_duty(conn: Connection, ref: str | int, grid_code: str, duty: str, *, department: str | None = None,
                since: dt.datetime | None = None) -> tuple[dict, bool]:  # fmt: skip
    """Give a person a duty on a current grid; (the duty, whether it is new). Idempotent.

    *since* backdates the duty (a roster that held before it was entered); it may not lie
    in the future nor before the grid existed. Default: now.
    """
    person_id = find_person(conn, ref)
    if duty not in DUTIES:
        raise InvalidInput("unknown duty {duty!r}; one of {DUTIES}", duty=duty, DUTIES=", ".join(DUTIES))
    department = _text("department", department, blank=True)
    if duty == "department_handler" and department is None:
        raise InvalidInput("a department handler needs the department's name")
    _current_grid(conn, grid_code)
    if since is not None:
        if since.tzinfo is None:
            raise InvalidInput("since needs a time zone")
        born, now = conn.execute(
            sa.text("SELECT min(valid_from), now() FROM grids WHERE code = :c"), {"c": grid_code}
        ).one()
        if since > now:
            raise InvalidInput("a duty cannot start in the future")
        if since < born:
            raise InvalidInput(
                "grid {grid_code} exists only since {isoformat}", grid_code=grid_code, isoformat=born.date().isoformat()
            )
    existing = conn.execute(
        sa.text(
            "SELECT id FROM assignments WHERE person_id = :p AND grid_code = :g AND duty = :d AND valid_to IS NULL"
        ),
        {"p": person_id, "g": grid_code, "d": duty},
    ).scalar()
    if existing is not None:
        return _duty(conn, existing), False
    duty_id = conn.execute(
        sa.text("INSERT INTO assignments (person_id, grid_code, duty, department, valid_from) "
                "VALUES (:p, :g, :d, :dep, coalesce(CAST(:since AS timestamptz), now())) RETURNING id"),
        {"p": person_id, "g": grid_code, "d": duty, "dep": department, "since": since},
    ).scalar_one()  # fmt: skip
    return _duty(conn, duty_id), True


def end_duty(conn: Connection, ref: str | int, grid_code: str, duty: str | None = None) -> int:
    """End a person's current duties on *grid_code* (only *duty*, if given); how many ended."""
    person_id = find_person(conn, ref)
    ended = conn.execute(
        sa.text("UPDATE assignments SET valid_to = now() WHERE person_id = :p AND grid_code = :g "
                "AND (CAST(:d AS text) IS NULL OR duty = :d) AND valid_to IS NULL"),
        {"p": person_id, "g": grid_code, "d": duty},
    ).rowcount  # fmt: skip
    if not ended:
        raise NotFound(
            "person {person_id} has no current duty on {grid_code}",
            person_id=person_id,
            duty=duty,
            grid_code=grid_code,
        )
    return ended


def end_duty_by_id(conn: Connection, person_id: int, duty_id: int) -> dict:
    """End one duty of a person by its id; the duty as it now is."""
    found = conn.execute(
        sa.text("SELECT valid_to IS NULL FROM assignments WHERE id = :a AND person_id = :p"),
        {"a": duty_id, "p": person_id},
    ).scalar()
    if found is None:
        raise NotFound("person {person_id} has no duty {duty_id}", person_id=person_id, duty_id=duty_id)
    if not found:
        raise Conflict("duty {duty_id} has ended already", duty_id=duty_id)
    conn.execute(sa.text("UPDATE assignments SET valid_to = now() WHERE id = :a"), {"a": duty_id})
    return _duty(conn, duty_id)


def carry_duties(conn: Connection, moves: dict[str, list[str]], *, reason: str,
                 plan: dict[str, set[int]] | None = None) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """Carry the current duties on retired grids to the grids that replace them; (carried, dropped).

    *moves* maps each retired code to the new codes its ground went to (a split: every
    piece; a merge: the merged grid). Each new grid gets one duty per person and duty
    held on the retired grids that go to it, noted with *reason*; the old duties end
    now (kept in the history). *plan* (new code -> person ids) says who goes where
    instead: someone it names must hold a duty on a grid going there, and a holder it
    names for no grid is dropped (their duty ends with no successor).
    """
    olds = list(moves)
    ended = conn.execute(
        sa.text(
            "UPDATE assignments a SET valid_to = now() FROM people p WHERE p.id = a.person_id "
            "AND a.grid_code = ANY(:olds) AND a.valid_to IS NULL "
            "RETURNING a.person_id, p.name, a.grid_code, a.duty, a.department"
        ),
        {"olds": olds},
    ).mappings().all()  # fmt: skip
    given: dict[tuple[str, int, str], dict] = {}
    for new in dict.fromkeys(n for targets in moves.values() for n in targets):
        holders = [d for d in ended if new in moves[d["grid_code"]]]
        if plan is not None:
            wanted = plan.get(new, set())
            strangers = wanted - {d["person_id"] for d in holders}
            if strangers:
                from_codes = sorted({old for old, targets in moves.items() if new in targets})
                raise InvalidInput(
                    "person {ids} has no duty on {from_codes} to carry to {new}; give a new duty with "
                    "`geogrid people assign` after the edit",
                    ids=", ".join(str(s) for s in sorted(strangers)),
                    from_codes=", ".join(from_codes),
                    new=new,
                )
            holders = [d for d in holders if d["person_id"] in wanted]
        for d in holders:
            key = (new, d["person_id"], d["duty"])
            if key not in given:
                given[key] = {**d, "from": [d["grid_code"]], "to": new}
            elif d["grid_code"] not in given[key]["from"]:
                given[key]["from"].append(d["grid_code"])
    if given:
        conn.execute(
            sa.text("INSERT INTO assignments (person_id, grid_code, duty, department, note) "
                    "VALUES (:person_id, :to, :duty, :department, :note)"),
            [{**d, "note": f"{reason} (was on {', '.join(d['from'])})"} for d in given.values()],
        )  # fmt: skip
    carried: dict[tuple[int, str], dict] = {}
    for d in given.values():
        row = carried.setdefault((d["person_id"], d["duty"]), {
            "person_id": d["person_id"], "person": d["name"], "duty": d["duty"], "department": d["department"],
            "from": [], "to": []})  # fmt: skip
        row["from"] = sorted(set(row["from"]) | set(d["from"]))
        row["to"].append(d["to"])
    dropped = [
        {"person_id": d["person_id"], "person": d["name"], "duty": d["duty"], "from": d["grid_code"]}
        for d in ended
        if (d["person_id"], d["duty"]) not in carried
    ]
    return list(carried.values()), dropped


@dataclasses.dataclass
class RosterReport:
    """What a roster import did."""

    read: int = 0
    people_added: int = 0
    duties_added: int = 0
    already_there: int = 0
    rejected: int = 0

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"{self.read} rows: {self.people_added} people and {self.duties_added} duties added, "
            f"{self.already_there} already there, {self.rejected} rejected"
        )


#: Accepted roster headers (lower case) for each field.
ROSTER_COLUMNS = {
    "name": ("name", "姓名"),
    "staff_no": ("staff_no", "staff number", "工号"),
    "phone": ("phone", "电话"),
    "grid_code": ("grid_code", "grid", "网格编码"),
    "duty": ("duty", "职责"),
    "department": ("department", "部门"),
}


def read_roster(path: str | Path) -> Iterator[tuple[int, dict, dict]]:
    """Rows of a roster CSV (UTF-8, a header line): (line, raw row, fields)."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise InvalidInput("{name}: empty file", name=path.name)
        lowered = {h.strip().lower(): h for h in reader.fieldnames if h}
        columns = {field: next((lowered[a] for a in names if a in lowered), None) for field, names in
                   ROSTER_COLUMNS.items()}  # fmt: skip
        for needed in ("name", "grid_code", "duty"):
            if columns[needed] is None:
                raise InvalidInput(
                    "{name}: no {needed} column (headers: {fieldnames})",
                    name=path.name,
                    needed=needed,
                    fieldnames=", ".join(reader.fieldnames),
                )
        for raw in reader:
            yield reader.line_num, raw, {field: (raw.get(h) or "").strip() or None if h else None
                                         for field, h in columns.items()}  # fmt: skip


def import_roster(conn: Connection, rows: Iterable[tuple[int, dict, dict]], *, reject) -> RosterReport:
    """Add the people and duties of roster rows; a bad row goes to ``reject(line, raw, reason)``.

    A person is found by staff number (or, without one, by their unique name) and added
    when missing; the same file imported twice adds nothing.
    """
    report = RosterReport()
    for line, raw, row in rows:
        report.read += 1
        try:
            with conn.begin_nested():
                added_person, added_duty = _roster_row(conn, row)
        except (InvalidInput, NotFound, Conflict) as err:
            report.rejected += 1
            reject(line, raw, str(err))
            continue
        report.people_added += added_person
        report.duties_added += added_duty
        report.already_there += not added_duty
    return report


def _roster_row(conn: Connection, row: dict) -> tuple[bool, bool]:
    name, staff_no = _text("name", row.get("name")), row.get("staff_no")
    if staff_no is not None:
        known = conn.execute(sa.text("SELECT id, name FROM people WHERE external_id = :s"), {"s": staff_no}).first()
        if known is not None and known.name != name:
            raise Conflict(
                "staff number {staff_no} is {name}'s, not {wanted}'s", staff_no=staff_no, name=known.name, wanted=name
            )
        ref = known.id if known is not None else None
    else:
        ids = conn.execute(sa.text("SELECT id FROM people WHERE name = :n"), {"n": name}).scalars().all()
        if len(ids) > 1:
            raise InvalidInput("{n_ids} people are called {name}; give their staff numbers", n_ids=len(ids), name=name)
        ref = ids[0] if ids else None
    added_person = ref is None
    if added_person:
        ref = add_person(conn, name, phone=row.get("phone"), staff_no=staff_no)["id"]
    _, added_duty = assign_duty(conn, ref, _text("grid_code", row.get("grid_code")), _text("duty", row.get("duty")),
                                department=row.get("department"))  # fmt: skip
    return added_person, added_duty


def _people(conn: Connection, where: str, params: dict) -> list[dict]:
    rows = conn.execute(
        sa.text(
            f"""
            SELECT p.id, p.name, p.phone, p.external_id AS staff_no,
                   coalesce(json_agg(json_build_object(
                       'id', a.id, 'grid_code', a.grid_code, 'grid_name', g.name, 'level', g.level,
                       'duty', a.duty, 'department', a.department, 'since', a.valid_from)
                       ORDER BY a.grid_code, a.duty) FILTER (WHERE a.id IS NOT NULL), '[]') AS duties
              FROM people p
              LEFT JOIN assignments a ON a.person_id = p.id AND a.valid_to IS NULL
              LEFT JOIN grids g ON g.code = a.grid_code AND g.valid_to IS NULL
             WHERE {where}
             GROUP BY p.id ORDER BY p.name, p.id
            """
        ),
        params,
    ).mappings()
    return [dict(r) for r in rows]


def _duty(conn: Connection, duty_id: int) -> dict:
    row = conn.execute(
        sa.text("SELECT id, person_id, grid_code, duty, department, valid_from AS since, valid_to AS until "
                "FROM assignments WHERE id = :a"),
        {"a": duty_id},
    ).mappings().one()  # fmt: skip
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


def _current_grid(conn: Connection, code: str) -> None:
    hierarchy.require(conn, code)


def _text(name: str, value, *, blank: bool = False) -> str | None:
    """A trimmed text field: None for an allowed blank, InvalidInput for a required one or one too long."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput("{name} must be text", name=name)
    value = (value or "").strip()
    if not value:
        if blank:
            return None
        raise InvalidInput("{name} is required", name=name)
    if len(value) > MAX_TEXT or "\x00" in value:
        raise InvalidInput("{name} must be at most {MAX_TEXT} characters of text", name=name, MAX_TEXT=MAX_TEXT)
    return value
