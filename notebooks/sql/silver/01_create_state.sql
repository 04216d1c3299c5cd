-- Silver, step 1: the per-table state table (created once, typed like bronze).
-- One row per primary key: the current row, or a tombstone (__deleted = true) that remembers the
-- delete's position so a late or replayed older change can never resurrect the row.
-- __unresolved lists columns whose value is unknown (an unchanged TOAST value whose earlier value
-- had not arrived yet); __fill_lsn/__fill_seq is the position that last filled them.
CREATE TABLE IF NOT EXISTS {{state_table}} AS
SELECT
  {{#each columns join ""}}{{col}},
  {{/each}}__op,
  __lsn,
  __seq,
  __ts_ms,
  CAST(NULL AS BOOLEAN) AS __deleted,
  CAST(NULL AS STRING) AS __unresolved,
  CAST(NULL AS BIGINT) AS __fill_lsn,
  CAST(NULL AS BIGINT) AS __fill_seq,
  now() AS __merged_at
FROM {{bronze_table}}
WHERE 1 = 0
