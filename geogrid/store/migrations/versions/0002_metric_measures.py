"""Metric measures in SQL: the UTM zone of a geometry, and area in m² that follows lon/lat edges.

Boundaries are stored in EPSG:4326, where an edge is a straight line in lon/lat. A
plain ST_Transform (or a geography cast) bends such an edge, so a vertex that lies
exactly on a neighbour's edge (as split and clip produce) opens a sliver of hundreds
of m² over a few km. Densifying first (1e-4 degree, about 11 m) keeps the projected
edge on the lon/lat line, so slivers measure the near-zero area they have.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION geogrid_utm_srid(g geometry) RETURNS integer
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
            SELECT (CASE WHEN ST_Y(c) >= 0 THEN 32600 ELSE 32700 END)
                   + LEAST(60, GREATEST(1, floor((ST_X(c) + 180) / 6)::integer + 1))
              FROM (SELECT ST_Centroid(ST_Envelope(g)) AS c) AS center
        $$;

        CREATE FUNCTION geogrid_area_m2(g geometry, srid integer) RETURNS double precision
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
            SELECT ST_Area(ST_Transform(ST_Segmentize(g, 0.0001), srid))
        $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION geogrid_area_m2(geometry, integer)")
    op.execute("DROP FUNCTION geogrid_utm_srid(geometry)")
