-- Tiling problems under each parent in scope: gaps (parent minus the union of its
-- children), overlaps between siblings, and parts of children outside the parent.
-- Parameters: :code (NULL = every parent), :deep (also the parents below :code),
-- :srid (NULL = the parent's UTM zone), :tolerance_m (slivers narrower than it are ignored).
WITH scope(code) AS (
    SELECT code FROM grids
     WHERE valid_to IS NULL AND (CAST(:code AS text) IS NULL OR code = :code)
    UNION
    SELECT geogrid_subtree(ARRAY[CAST(:code AS text)]) WHERE CAST(:code AS text) IS NOT NULL AND :deep
),
parents AS (
    SELECT p.code, p.geom, coalesce(CAST(:srid AS integer), geogrid_utm_srid(p.geom)) AS srid
      FROM grids p JOIN scope USING (code)
     WHERE p.valid_to IS NULL
       AND EXISTS (SELECT 1 FROM grids c WHERE c.parent_code = p.code AND c.valid_to IS NULL)
),
parent_gaps AS (
    SELECT 'gap' AS kind, p.code AS parent_code, ARRAY[]::text[] AS codes,
           (ST_Dump(ST_Difference(p.geom, u.geom))).geom AS geom, p.srid
      FROM parents p
      CROSS JOIN LATERAL (
          SELECT ST_Union(c.geom) AS geom FROM grids c
           WHERE c.parent_code = p.code AND c.valid_to IS NULL
      ) u
),
sibling_overlaps AS (
    SELECT 'overlap', p.code, ARRAY[a.code, b.code],
           (ST_Dump(ST_Intersection(a.geom, b.geom))).geom, p.srid
      FROM parents p
      JOIN grids a ON a.parent_code = p.code AND a.valid_to IS NULL
      JOIN grids b ON b.parent_code = p.code AND b.valid_to IS NULL
                  AND a.code < b.code AND a.geom && b.geom
     WHERE ST_Relate(a.geom, b.geom, '2********')
),
outside_parent AS (
    SELECT 'outside', p.code, ARRAY[c.code], (ST_Dump(ST_Difference(c.geom, p.geom))).geom, p.srid
      FROM parents p
      JOIN grids c ON c.parent_code = p.code AND c.valid_to IS NULL
     WHERE NOT ST_CoveredBy(c.geom, p.geom)
),
problems AS (
    SELECT * FROM parent_gaps UNION ALL SELECT * FROM sibling_overlaps
    UNION ALL SELECT * FROM outside_parent
),
measured AS (
    SELECT kind, parent_code, codes, geom, m.g AS metric, ST_Area(m.g) AS area_m2
      FROM problems CROSS JOIN LATERAL (SELECT ST_Transform(ST_Segmentize(geom, 0.0001), srid) AS g) m
     WHERE ST_Dimension(geom) = 2
)
-- A problem narrower than :tolerance_m everywhere is a sliver, however long: reprojecting
-- a kilometre-long straight edge bends it by centimetres. What no circle of that diameter
-- fits in (by area, then by shrinking it by half the tolerance) is left out.
SELECT kind, parent_code, codes, area_m2, ST_AsGeoJSON(geom, 7) AS geometry, ST_AsBinary(metric) AS metric
  FROM measured
 WHERE area_m2 >= pi() * (CAST(:tolerance_m AS float8) / 2) ^ 2
   AND NOT ST_IsEmpty(ST_Buffer(metric, -CAST(:tolerance_m AS float8) / 2, 'quad_segs=2'))
 ORDER BY parent_code, kind, area_m2 DESC
