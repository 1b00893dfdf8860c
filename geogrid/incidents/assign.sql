-- Assign points to the deepest current grid that covers them, else snap them to the
-- nearest leaf cell within :snap_m metres, else leave them unassigned.
-- {points} is a query giving (n, geom geometry(Point, 4326)).
-- Tie-break on a shared boundary: the deepest level first (:levels, top down), then
-- the smallest code, so a point on an edge always goes to exactly one cell.
--
-- Measured on 500,000 points in 50,000 cells (see bench/assign_bench.py): points are
-- inlined (NOT MATERIALIZED) so a GiST index on them lets PostGIS drive the join from
-- the cells' side; the pick per point is an aggregate (faster than DISTINCT ON); and
-- the snapping search is a lateral join that stops at once for points already inside,
-- so the points are read twice, not three times.
WITH points AS NOT MATERIALIZED ({points}),
inside AS MATERIALIZED (
    SELECT p.n,
           (array_agg(g.id ORDER BY array_position(CAST(:levels AS text[]), g.level) DESC NULLS LAST, g.code))[1]
               AS grid_id
      FROM points p
      JOIN grids g ON g.geom && p.geom AND ST_Covers(g.geom, p.geom)
     WHERE g.valid_to IS NULL
     GROUP BY p.n
)
SELECT p.n,
       coalesce(i.grid_id, near.grid_id) AS grid_id,
       CASE WHEN i.grid_id IS NOT NULL THEN 'inside'
            WHEN near.grid_id IS NOT NULL THEN 'snapped' ELSE 'unassigned' END AS assignment,
       near.distance_m AS snap_distance_m
  FROM points p
  LEFT JOIN inside i ON i.n = p.n
  LEFT JOIN LATERAL (
      SELECT g.id AS grid_id, ST_Distance(g.geom::geography, p.geom::geography) AS distance_m
        FROM grids g
       WHERE i.n IS NULL
         AND g.valid_to IS NULL
         -- A box a little larger than :snap_m in every direction (1 degree >= 110 km of latitude);
         -- cosd, not cos(radians()): radians() of a latitude like 1e-310 is a float underflow error.
         AND g.geom && ST_Expand(p.geom, :snap_m / 110000.0 / greatest(cosd(ST_Y(p.geom)), 0.01))
         AND {is_leaf}
       ORDER BY distance_m, g.code
       LIMIT 1
  ) near ON near.distance_m <= :snap_m
