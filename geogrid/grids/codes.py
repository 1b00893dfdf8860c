"""Grid codes: a child's code is its parent's code plus a fixed-width sequence number.

``130102001`` -> ``130102001003``. New grids (split pieces, merges, generated cells)
take the next free numbers under their parent, counting every code ever used there,
retired ones included, so a code never names different ground.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid import inputs
from geogrid.errors import Conflict

#: A well-formed code (the one check, shared with the CLI and the API).
check_code = inputs.code


def next_codes(conn: Connection, parent_code: str, count: int, width: int) -> list[str]:
    """The next *count* free codes under *parent_code* (never reusing a retired one)."""
    pattern = f"^{re.escape(parent_code)}[0-9]{{{width}}}$"
    used = conn.execute(
        sa.text("SELECT max(right(code, :width)::integer) FROM grids WHERE code ~ :pattern"),
        {"width": width, "pattern": pattern},
    ).scalar()
    start = (used or 0) + 1
    if start + count - 1 >= 10**width:
        raise Conflict(
            "grid {parent_code} has no free {width}-digit child codes left (needs {count}, next is {start})",
            parent_code=parent_code,
            width=width,
            count=count,
            start=start,
        )
    return [check_code(f"{parent_code}{n:0{width}d}") for n in range(start, start + count)]
