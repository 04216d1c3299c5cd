-- Silver, step 4: a TRUNCATE (or a re-snapshot barrier) empties the table: drop every row and tombstone
-- older than the watermark.
MERGE INTO {{state_table}} AS t
USING {{truncations_table}} AS w
ON t.__lsn < w.__lsn OR (t.__lsn = w.__lsn AND t.__seq < w.__seq)
WHEN MATCHED THEN DELETE
