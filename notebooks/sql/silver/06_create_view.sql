-- Silver, step 6: what readers query: the current rows, one per key, never a tombstone.
CREATE OR REPLACE VIEW {{silver_table}} AS
SELECT
  {{#each columns join ""}}{{col}},
  {{/each}}__op,
  __lsn,
  __seq,
  __ts_ms,
  __merged_at
FROM {{state_table}}
WHERE NOT __deleted
