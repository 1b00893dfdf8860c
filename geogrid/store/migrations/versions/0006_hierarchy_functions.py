"""Walking the grid hierarchy, once, in SQL: subtrees, top-level codes and the ancestry map.

``geogrid_root_code(code)`` (0003) answered one grid per call; called per row it cost
~0.3 ms each, so bulk work wrote its own set-based walks. These replace it:
``geogrid_subtree(codes)`` the current grids at and below some grids, ``geogrid_root_codes(codes)``
the top-level area of many grids in one walk, and the view ``grid_ancestry`` mapping every
code (latest version, retired ones too) to itself and each of its ancestors.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION geogrid_subtree(roots text[]) RETURNS SETOF text
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            WITH RECURSIVE down(code) AS (
                SELECT code FROM grids WHERE valid_to IS NULL AND code = ANY(roots)
                UNION
                SELECT g.code FROM grids g JOIN down d ON g.parent_code = d.code WHERE g.valid_to IS NULL
            )
            SELECT code FROM down
        $$;

        CREATE FUNCTION geogrid_root_codes(codes text[]) RETURNS TABLE (grid_code text, area_code text)
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            WITH RECURSIVE up(start, code, parent_code, depth) AS (
                SELECT * FROM (
                    SELECT DISTINCT ON (g.code) g.code AS start, g.code, g.parent_code, 0
                      FROM grids g WHERE g.code = ANY(codes) ORDER BY g.code, g.version DESC
                ) latest
                UNION ALL
                SELECT up.start, p.code, p.parent_code, up.depth + 1
                  FROM up JOIN grids p ON p.code = up.parent_code AND p.valid_to IS NULL
                 WHERE up.depth < 32
            )
            SELECT start, code FROM up WHERE parent_code IS NULL
        $$;

        CREATE VIEW grid_ancestry AS
        WITH RECURSIVE latest AS (
            SELECT DISTINCT ON (code) code, name, level, parent_code FROM grids ORDER BY code, version DESC
        ),
        tree(code, ancestor, depth) AS (
            SELECT code, code, 0 FROM latest
            UNION ALL
            SELECT t.code, l.parent_code, t.depth + 1 FROM tree t JOIN latest l ON l.code = t.ancestor
             WHERE l.parent_code IS NOT NULL AND t.depth < 32
        )
        SELECT t.code, t.ancestor, a.name AS ancestor_name, a.level AS ancestor_level, t.depth
          FROM tree t JOIN latest a ON a.code = t.ancestor;

        DROP FUNCTION geogrid_root_code(text);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP VIEW grid_ancestry;
        DROP FUNCTION geogrid_root_codes(text[]);
        DROP FUNCTION geogrid_subtree(text[]);
        CREATE FUNCTION geogrid_root_code(start text) RETURNS text
        LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
            WITH RECURSIVE up(code, parent_code, depth) AS (
                SELECT code, parent_code, 0 FROM grids WHERE code = start AND valid_to IS NULL
                UNION ALL
                SELECT g.code, g.parent_code, up.depth + 1 FROM grids g JOIN up ON g.code = up.parent_code
                 WHERE g.valid_to IS NULL AND up.depth < 32
            )
            SELECT code FROM up ORDER BY depth DESC LIMIT 1
        $$;
        """
    )
