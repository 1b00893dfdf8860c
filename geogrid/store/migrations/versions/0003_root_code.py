"""geogrid_root_code(code): the top-level area a grid lies in, the key big tables carry.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION geogrid_root_code(start text) RETURNS text
        LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
            WITH RECURSIVE up(code, parent_code, depth) AS (
                SELECT code, parent_code, 0 FROM grids WHERE code = start AND valid_to IS NULL
                UNION ALL
                SELECT g.code, g.parent_code, up.depth + 1
                  FROM grids g JOIN up ON g.code = up.parent_code
                 WHERE g.valid_to IS NULL AND up.depth < 32
            )
            SELECT code FROM up ORDER BY depth DESC LIMIT 1
        $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION geogrid_root_code(text)")
