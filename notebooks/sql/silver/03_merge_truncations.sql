-- Silver, step 3: move the truncate watermark to the batch's latest TRUNCATE (__op = 't') or
-- re-snapshot barrier (__op = 'b': the snapshot that follows it replaces every older row), if newer.
MERGE INTO {{truncations_table}} AS t
USING (
  SELECT id, __lsn, __seq
  FROM (
    SELECT CAST(1 AS INT) AS id, __lsn, __seq, row_number() OVER (ORDER BY __lsn DESC, __seq DESC) AS __latest
    FROM {{source}}
    WHERE __op IN ('t', 'b')
  ) AS ranked
  WHERE __latest = 1
) AS s
ON t.id = s.id
WHEN MATCHED AND (s.__lsn > t.__lsn OR (s.__lsn = t.__lsn AND s.__seq > t.__seq)) THEN UPDATE SET
  __lsn = s.__lsn,
  __seq = s.__seq,
  __merged_at = now()
WHEN NOT MATCHED THEN INSERT (id, __lsn, __seq, __merged_at) VALUES (s.id, s.__lsn, s.__seq, now())
