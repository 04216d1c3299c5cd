-- Silver, step 2: the per-table truncate watermark (at most one row, id = 1): the position of the
-- latest TRUNCATE. Every change at or before it is ignored, so a late change cannot resurrect rows.
CREATE TABLE IF NOT EXISTS {{truncations_table}}{{table_options}} AS
SELECT
  CAST(1 AS INT) AS id,
  CAST(NULL AS BIGINT) AS __lsn,
  CAST(NULL AS BIGINT) AS __seq,
  now() AS __merged_at
FROM (SELECT 1 AS one) AS seed
WHERE 1 = 0
