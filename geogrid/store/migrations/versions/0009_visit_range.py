"""The time a stretch of track spends within sight of a cell: ``geogrid_visit_range``.

Coverage finds visits from a track's segments (from one fix to the next): a segment
within sight of the cell from end to end stands for its two times; one that comes into
sight (or leaves it) on the way stands for the part inside the cell's reach (the cell
buffered by the sight radius), its times interpolated along the segment; one that only
grazes the reach, for its closest point. Those few segments go through this function,
which cuts the segment once (a SQL expression would cut it once per use). The range
is widened by the visit gap, so the ranges of one visit overlap and merge.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION geogrid_visit_range(seg geometry, t0 timestamptz, t1 timestamptz, cell geometry,
                                            reach geometry, gap_s float8) RETURNS tstzrange
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
        DECLARE
            x geometry;
            lo float8 := 0;
            hi float8 := 1;
        BEGIN
            IF t1 > t0 THEN
                x := ST_Intersection(seg, reach);
                IF ST_IsEmpty(x) THEN
                    lo := ST_LineLocatePoint(seg, ST_ClosestPoint(seg, cell));
                    hi := lo;
                ELSE
                    IF NOT ST_Intersects(ST_StartPoint(seg), reach) THEN
                        lo := ST_LineLocatePoint(seg, ST_ClosestPoint(x, ST_StartPoint(seg)));
                    END IF;
                    IF NOT ST_Intersects(ST_EndPoint(seg), reach) THEN
                        hi := ST_LineLocatePoint(seg, ST_ClosestPoint(x, ST_EndPoint(seg)));
                    END IF;
                END IF;
            END IF;
            RETURN tstzrange(t0 + (t1 - t0) * lo, t0 + (t1 - t0) * hi + make_interval(secs => gap_s));
        END $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION geogrid_visit_range(geometry, timestamptz, timestamptz, geometry, geometry, float8)")
