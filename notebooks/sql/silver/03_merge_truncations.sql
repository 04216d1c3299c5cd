-- Silver, step 3: move the truncate watermark to the batch's latest TRUNCATE (__op = 't'), if newer.
MERGE INTO {{truncations_table}} AS t
USING (
  SELECT CAST(1 AS INT) AS id, __lsn, __seq
  FROM {{source}}
  WHERE __op = 't'
  QUALIFY row_number() OVER (ORDER BY __lsn DESC, __seq DESC) = 1
) AS s
ON t.id = s.id
WHEN MATCHED AND (s.__lsn > t.__lsn OR (s.__lsn = t.__lsn AND s.__seq > t.__seq)) THEN UPDATE SET
  __lsn = s.__lsn,
  __seq = s.__seq,
  __merged_at = now()
WHEN NOT MATCHED THEN INSERT (id, __lsn, __seq, __merged_at) VALUES (s.id, s.__lsn, s.__seq, now())
