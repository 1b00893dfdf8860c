-- Assign points to the deepest current grid that covers them, else snap them to the
-- nearest leaf cell within :snap_m metres, else leave them unassigned.
-- {points} is a query giving (n integer, geom geometry(Point, 4326)).
-- Tie-break on a shared boundary: the deepest level first (:levels, top down), then
-- the smallest code, so a point on an edge always goes to exactly one cell.
-- Points are inlined (NOT MATERIALIZED) so the planner can use a GiST index on them and
-- drive the join from the cells' side, which is several times faster for big batches.
WITH points AS NOT MATERIALIZED ({points}),
inside AS (
    SELECT DISTINCT ON (p.n) p.n, g.id AS grid_id
      FROM points p
      JOIN grids g ON g.geom && p.geom AND ST_Covers(g.geom, p.geom)
     WHERE g.valid_to IS NULL
     ORDER BY p.n, array_position(CAST(:levels AS text[]), g.level) DESC NULLS LAST, g.code
),
unmatched AS MATERIALIZED (
    SELECT p.n, p.geom FROM points p WHERE NOT EXISTS (SELECT 1 FROM inside i WHERE i.n = p.n)
),
snapped AS (
    -- Only points outside every grid pay for the nearest-cell search.
    SELECT p.n, near.grid_id, near.distance_m
      FROM unmatched p
      CROSS JOIN LATERAL (
          SELECT g.id AS grid_id, ST_Distance(g.geom::geography, p.geom::geography) AS distance_m
            FROM grids g
           WHERE g.valid_to IS NULL
             -- A box a little larger than :snap_m in every direction (1 degree >= 110 km of latitude).
             AND g.geom && ST_Expand(p.geom, :snap_m / 110000.0 / greatest(cos(radians(ST_Y(p.geom))), 0.01))
             AND NOT EXISTS (SELECT 1 FROM grids c WHERE c.parent_code = g.code AND c.valid_to IS NULL)
           ORDER BY distance_m, g.code
           LIMIT 1
      ) near
     WHERE near.distance_m <= :snap_m
)
SELECT p.n,
       coalesce(i.grid_id, s.grid_id) AS grid_id,
       CASE WHEN i.grid_id IS NOT NULL THEN 'inside'
            WHEN s.grid_id IS NOT NULL THEN 'snapped' ELSE 'unassigned' END AS assignment,
       s.distance_m AS snap_distance_m
  FROM points p
  LEFT JOIN inside i ON i.n = p.n
  LEFT JOIN snapped s ON s.n = p.n
