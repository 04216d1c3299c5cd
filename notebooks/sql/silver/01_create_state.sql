-- Silver, step 1: the per-table state table (created once, typed like bronze).
-- One row per primary key: the current row, or a tombstone (__deleted = true) that remembers the
-- delete's position so a late or replayed older change can never resurrect the row, and keeps the
-- row's last values (a key change's new row takes its unchanged TOAST values from them, step 5b).
-- __unresolved lists the columns whose value was carried over for an unchanged TOAST value, and
-- __fill_pos (__lsn * 10^10 + __seq) the position that value came from: a late change between that
-- position and the row's own position may still replace it.
CREATE TABLE IF NOT EXISTS {{state_table}}{{table_options}} AS
SELECT
  {{#each columns join ""}}{{col}},
  {{/each}}__op,
  __lsn,
  __seq,
  __ts_ms,
  CAST(NULL AS BOOLEAN) AS __deleted,
  CAST(NULL AS STRING) AS __unresolved,
  CAST(NULL AS DECIMAL(38, 0)) AS __fill_pos,
  now() AS __merged_at
FROM {{bronze_table}}
WHERE 1 = 0
