"""The hierarchy walked once, at any moment; where a carried duty came from.

``geogrid_descendants(roots, at)`` walks down from some grids in one recursive
statement and says which root each grid lies under (coverage needs a person's cells
from their duties: one walk for everyone); ``geogrid_subtree(roots, at)`` is its set
of codes; ``geogrid_ancestors(grid_id, at)`` walks up from a grid version. ``at``
NULL means the current grids, else those valid at that moment (a past day's report
uses the boundaries of that day). Every walk stops at the same depth, 32
(``geogrid.grids.hierarchy.MAX_DEPTH``), so a cycle written by hand ends.

``assignments.note`` says where a duty came from when a boundary change carried it
(split, merge). ``recorded_at`` on grids and assignments is when a row was written,
which a backdated row's ``valid_from`` is not: a day's stored coverage is stale when a
change in effect by its end was recorded after it was computed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

VALID_AT = "(CASE WHEN at IS NULL THEN g.valid_to IS NULL ELSE g.valid_from <= at AND (g.valid_to IS NULL OR g.valid_to > at) END)"


def upgrade() -> None:
    op.add_column("assignments", sa.Column("note", sa.Text(), nullable=True))
    for table in ("grids", "assignments"):
        op.add_column(table, sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))
        op.execute(f"UPDATE {table} SET recorded_at = valid_from")
        op.alter_column(table, "recorded_at", nullable=False, server_default=sa.func.now())
    op.execute(
        f"""
        DROP FUNCTION geogrid_subtree(text[]);

        CREATE FUNCTION geogrid_descendants(roots text[], at timestamptz DEFAULT NULL)
        RETURNS TABLE (root text, code text, depth integer)
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            WITH RECURSIVE down(root, code, depth) AS (
                SELECT g.code, g.code, 0 FROM grids g WHERE g.code = ANY(roots) AND {VALID_AT}
                UNION ALL
                SELECT d.root, g.code, d.depth + 1 FROM grids g JOIN down d ON g.parent_code = d.code
                 WHERE {VALID_AT} AND d.depth < 32
            )
            SELECT root, code, depth FROM down
        $$;

        CREATE FUNCTION geogrid_subtree(roots text[], at timestamptz DEFAULT NULL) RETURNS SETOF text
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            SELECT DISTINCT code FROM geogrid_descendants(roots, at)
        $$;

        -- From a grid version up: the version itself (depth 0), then each parent as it was
        -- at "at" (NULL: the current one), else its latest version (a retired parent).
        CREATE FUNCTION geogrid_ancestors(grid_id bigint, at timestamptz DEFAULT NULL)
        RETURNS TABLE (id bigint, code text, name text, level text, depth integer)
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            WITH RECURSIVE up(id, code, name, level, parent_code, depth) AS (
                SELECT g.id, g.code, g.name, g.level, g.parent_code, 0 FROM grids g WHERE g.id = grid_id
                UNION ALL
                SELECT p.id, p.code, p.name, p.level, p.parent_code, up.depth + 1
                  FROM up CROSS JOIN LATERAL (
                      SELECT g.* FROM grids g WHERE g.code = up.parent_code
                       ORDER BY {VALID_AT} DESC, g.version DESC LIMIT 1) p
                 WHERE up.depth < 32
            )
            SELECT id, code, name, level, depth FROM up
        $$;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION geogrid_ancestors(bigint, timestamptz);
        DROP FUNCTION geogrid_subtree(text[], timestamptz);
        DROP FUNCTION geogrid_descendants(text[], timestamptz);
        CREATE FUNCTION geogrid_subtree(roots text[]) RETURNS SETOF text
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            WITH RECURSIVE down(code) AS (
                SELECT code FROM grids WHERE valid_to IS NULL AND code = ANY(roots)
                UNION
                SELECT g.code FROM grids g JOIN down d ON g.parent_code = d.code WHERE g.valid_to IS NULL
            )
            SELECT code FROM down
        $$;
        """
    )
    op.drop_column("assignments", "note")
    for table in ("grids", "assignments"):
        op.drop_column(table, "recorded_at")
