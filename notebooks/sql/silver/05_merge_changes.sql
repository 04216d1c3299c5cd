-- Silver, step 5: apply the batch to the state table, ordered by (__lsn, __seq), never by arrival.
--   * changes at or before the truncate watermark are ignored;
--   * per key, the latest change of the batch wins, and only if it is newer than the stored row
--     (replayed or out-of-order batches never regress a row; tombstones stop resurrection);
--   * a column listed in __unchanged (unchanged TOAST value) takes the value of the latest earlier
--     change of the batch that carried it, else the stored value; if neither is known yet it is
--     recorded in __unresolved and filled when the older change arrives late (a value that came
--     from an earlier change of the batch never replaces a stored value set by a newer change);
--   * deletes become tombstones; an insert after a delete revives the key.
MERGE INTO {{state_table}} AS t
USING (
  SELECT
    {{#each keys join ""}}{{col}},
    {{/each}}{{#each values join ""}}CASE WHEN __provided_{{col}} THEN {{col}} ELSE __earlier_{{col}} END AS {{col}},
    (__provided_{{col}} OR __earlier_{{col}} IS NOT NULL) AS __known_{{col}},
    CASE WHEN __provided_{{col}} THEN __lsn ELSE __earlier_lsn_{{col}} END AS __src_lsn_{{col}},
    CASE WHEN __provided_{{col}} THEN __seq ELSE __earlier_seq_{{col}} END AS __src_seq_{{col}},
    {{/each}}__op,
    __lsn,
    __seq,
    __ts_ms
  FROM (
    SELECT
      {{#each columns join ""}}{{col}},
      {{/each}}{{#each values join ""}}__provided_{{col}},
      max_by(CASE WHEN __provided_{{col}} THEN {{col}} END, CASE WHEN __provided_{{col}} AND {{col}} IS NOT NULL THEN __ord END)
        OVER (PARTITION BY {{key_list}} ORDER BY __ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS __earlier_{{col}},
      max_by(__lsn, CASE WHEN __provided_{{col}} AND {{col}} IS NOT NULL THEN __ord END)
        OVER (PARTITION BY {{key_list}} ORDER BY __ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS __earlier_lsn_{{col}},
      max_by(__seq, CASE WHEN __provided_{{col}} AND {{col}} IS NOT NULL THEN __ord END)
        OVER (PARTITION BY {{key_list}} ORDER BY __ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS __earlier_seq_{{col}},
      {{/each}}__op,
      __lsn,
      __seq,
      __ts_ms
    FROM (
      SELECT
        {{#each columns join ""}}b.{{col}},
        {{/each}}{{#each values join ""}}(b.__op <> 'd' AND NOT coalesce(array_contains(b.__unchanged, '{{col}}'), false)) AS __provided_{{col}},
        {{/each}}b.__op,
        b.__lsn,
        b.__seq,
        b.__ts_ms,
        row_number() OVER (PARTITION BY {{#each keys join ", "}}b.{{col}}{{/each}} ORDER BY b.__lsn, b.__seq) AS __ord
      FROM {{source}} AS b
      LEFT JOIN {{truncations_table}} AS w ON w.id = 1
      WHERE b.__op IN ('r', 'c', 'u', 'd')
        AND (w.id IS NULL OR b.__lsn > w.__lsn OR (b.__lsn = w.__lsn AND b.__seq > w.__seq))
    ) AS ordered
    QUALIFY row_number() OVER (PARTITION BY {{#each keys join ", "}}{{col}}{{/each}} ORDER BY __ord DESC) = 1
  ) AS latest
) AS s
ON {{#each keys join " AND "}}t.{{col}} = s.{{col}}{{/each}}
WHEN MATCHED AND (s.__lsn > t.__lsn OR (s.__lsn = t.__lsn AND s.__seq > t.__seq)) THEN UPDATE SET
  {{#each values join ""}}{{col}} = CASE
    WHEN s.__op = 'd' THEN NULL
    WHEN s.__known_{{col}} AND (t.__deleted
      OR s.__src_lsn_{{col}} > t.__lsn OR (s.__src_lsn_{{col}} = t.__lsn AND s.__src_seq_{{col}} > t.__seq)
      OR (t.__unresolved LIKE '%,{{col}},%' AND (t.__fill_lsn IS NULL OR s.__src_lsn_{{col}} > t.__fill_lsn OR (s.__src_lsn_{{col}} = t.__fill_lsn AND s.__src_seq_{{col}} > t.__fill_seq)))) THEN s.{{col}}
    WHEN t.__deleted THEN NULL
    ELSE t.{{col}}
  END,
  {{/each}}__unresolved = CASE WHEN s.__op = 'd' THEN NULL ELSE nullif(concat(','{{#each values join ""}}, CASE WHEN NOT s.__known_{{col}} AND (t.__deleted OR t.__unresolved LIKE '%,{{col}},%') THEN '{{col}},' ELSE '' END{{/each}}), ',') END,
  __fill_lsn = CASE WHEN s.__op = 'd' OR t.__deleted THEN NULL ELSE t.__fill_lsn END,
  __fill_seq = CASE WHEN s.__op = 'd' OR t.__deleted THEN NULL ELSE t.__fill_seq END,
  __op = s.__op,
  __lsn = s.__lsn,
  __seq = s.__seq,
  __ts_ms = s.__ts_ms,
  __deleted = (s.__op = 'd'),
  __merged_at = now()
WHEN MATCHED AND NOT t.__deleted AND t.__unresolved IS NOT NULL AND s.__op <> 'd'
  AND (s.__lsn < t.__lsn OR (s.__lsn = t.__lsn AND s.__seq < t.__seq))
  AND (t.__fill_lsn IS NULL OR s.__lsn > t.__fill_lsn OR (s.__lsn = t.__fill_lsn AND s.__seq > t.__fill_seq))
  AND (1 = 0{{#each values join ""}} OR (t.__unresolved LIKE '%,{{col}},%' AND s.__known_{{col}}){{/each}}) THEN UPDATE SET
  {{#each values join ""}}{{col}} = CASE WHEN t.__unresolved LIKE '%,{{col}},%' AND s.__known_{{col}} THEN s.{{col}} ELSE t.{{col}} END,
  {{/each}}__fill_lsn = s.__lsn,
  __fill_seq = s.__seq,
  __merged_at = now()
WHEN NOT MATCHED THEN INSERT (
  {{#each columns join ""}}{{col}},
  {{/each}}__op,
  __lsn,
  __seq,
  __ts_ms,
  __deleted,
  __unresolved,
  __fill_lsn,
  __fill_seq,
  __merged_at
) VALUES (
  {{#each keys join ""}}s.{{col}},
  {{/each}}{{#each values join ""}}CASE WHEN s.__op = 'd' THEN NULL ELSE s.{{col}} END,
  {{/each}}s.__op,
  s.__lsn,
  s.__seq,
  s.__ts_ms,
  (s.__op = 'd'),
  CASE WHEN s.__op = 'd' THEN NULL ELSE nullif(concat(','{{#each values join ""}}, CASE WHEN NOT s.__known_{{col}} THEN '{{col}},' ELSE '' END{{/each}}), ',') END,
  CAST(NULL AS BIGINT),
  CAST(NULL AS BIGINT),
  now()
)
