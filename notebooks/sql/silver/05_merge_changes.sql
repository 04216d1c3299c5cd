-- Silver, step 5: apply the batch to the state table, ordered by (__lsn, __seq), never by arrival.
--   * changes at or before the truncate watermark are ignored;
--   * per key, the latest change of the batch wins, and only if it is newer than the stored row
--     (replayed or out-of-order batches never regress a row; tombstones stop resurrection);
--   * a column listed in __unchanged (unchanged TOAST value) takes the value of the latest earlier
--     change that carried it: earlier in the batch or the stored row, whichever is newer. The column
--     is then listed in __unresolved with the position its value came from (__fill_pos), so a change
--     from between that position and the row's that arrives late still fills it;
--   * deletes become tombstones that keep the row's last values (readers never see tombstones; a
--     key change's new row takes its unchanged TOAST values from there, step 5b); an insert after a
--     delete revives the key.
-- Positions are compared as __lsn * 10^10 + __seq (DECIMAL(38, 0)), which orders like (__lsn, __seq).
MERGE INTO {{state_table}} AS t
USING (
  SELECT
    {{#each keys join ""}}{{col}},
    {{/each}}{{#each values join ""}}CASE WHEN __provided_{{i}} THEN {{col}} ELSE __earlier_{{i}} END AS {{col}},
    __provided_{{i}},
    (__provided_{{i}} OR __earlier_{{i}} IS NOT NULL) AS __known_{{i}},
    CASE WHEN __provided_{{i}} THEN __pos ELSE __earlier_pos_{{i}} END AS __src_pos_{{i}},
    {{/each}}__op,
    __lsn,
    __seq,
    __pos,
    __ts_ms
  FROM (
    SELECT
      {{#each columns join ""}}{{col}},
      {{/each}}{{#each values join ""}}__provided_{{i}},
      max_by(CASE WHEN __provided_{{i}} THEN {{col}} END, CASE WHEN __provided_{{i}} AND {{col}} IS NOT NULL THEN __ord END)
        OVER (PARTITION BY {{key_list}} ORDER BY __ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS __earlier_{{i}},
      max(CASE WHEN __provided_{{i}} AND {{col}} IS NOT NULL THEN __pos END)
        OVER (PARTITION BY {{key_list}} ORDER BY __ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS __earlier_pos_{{i}},
      {{/each}}__op,
      __lsn,
      __seq,
      __pos,
      __ts_ms,
      row_number() OVER (PARTITION BY {{key_list}} ORDER BY __ord DESC) AS __latest
    FROM (
      SELECT
        {{#each columns join ""}}b.{{col}},
        {{/each}}{{#each values join ""}}(b.__op <> 'd' AND NOT coalesce(array_contains(b.__unchanged, {{lit}}), false)) AS __provided_{{i}},
        {{/each}}b.__op,
        b.__lsn,
        b.__seq,
        CAST(b.__lsn AS DECIMAL(38, 0)) * 10000000000 + b.__seq AS __pos,
        b.__ts_ms,
        row_number() OVER (PARTITION BY {{#each keys join ", "}}b.{{col}}{{/each}} ORDER BY b.__lsn, b.__seq) AS __ord
      FROM {{source}} AS b
      LEFT JOIN {{truncations_table}} AS w ON w.id = 1
      WHERE b.__op IN ('r', 'c', 'u', 'd')
        AND (w.id IS NULL OR b.__lsn > w.__lsn OR (b.__lsn = w.__lsn AND b.__seq > w.__seq))
    ) AS ordered
  ) AS ranked
  WHERE __latest = 1
) AS s
ON {{#each keys join " AND "}}t.{{col}} = s.{{col}}{{/each}}
WHEN MATCHED AND (s.__lsn > t.__lsn OR (s.__lsn = t.__lsn AND s.__seq > t.__seq)) THEN UPDATE SET
  {{#each values join ""}}{{col}} = CASE
    WHEN s.__provided_{{i}} THEN s.{{col}}
    WHEN t.__deleted THEN s.{{col}}
    WHEN s.__known_{{i}} AND (
      CASE WHEN instr(t.__unresolved, {{mark}}) > 0 THEN t.__fill_pos ELSE CAST(t.__lsn AS DECIMAL(38, 0)) * 10000000000 + t.__seq END IS NULL
      OR s.__src_pos_{{i}} > CASE WHEN instr(t.__unresolved, {{mark}}) > 0 THEN t.__fill_pos ELSE CAST(t.__lsn AS DECIMAL(38, 0)) * 10000000000 + t.__seq END) THEN s.{{col}}
    ELSE t.{{col}}
  END,
  {{/each}}__unresolved = CASE WHEN s.__op = 'd' THEN NULL ELSE nullif(concat(','{{#each values join ""}}, CASE WHEN s.__provided_{{i}} THEN '' ELSE {{item}} END{{/each}}), ',') END,
  __fill_pos = CASE WHEN s.__op = 'd' THEN NULL ELSE greatest(CAST(NULL AS DECIMAL(38, 0)), CAST(NULL AS DECIMAL(38, 0)){{#each values join ""}},
    CASE
      WHEN s.__provided_{{i}} THEN NULL
      WHEN t.__deleted THEN s.__src_pos_{{i}}
      WHEN s.__known_{{i}} AND (
        CASE WHEN instr(t.__unresolved, {{mark}}) > 0 THEN t.__fill_pos ELSE CAST(t.__lsn AS DECIMAL(38, 0)) * 10000000000 + t.__seq END IS NULL
        OR s.__src_pos_{{i}} > CASE WHEN instr(t.__unresolved, {{mark}}) > 0 THEN t.__fill_pos ELSE CAST(t.__lsn AS DECIMAL(38, 0)) * 10000000000 + t.__seq END) THEN s.__src_pos_{{i}}
      ELSE CASE WHEN instr(t.__unresolved, {{mark}}) > 0 THEN t.__fill_pos ELSE CAST(t.__lsn AS DECIMAL(38, 0)) * 10000000000 + t.__seq END
    END{{/each}}) END,
  __op = s.__op,
  __lsn = s.__lsn,
  __seq = s.__seq,
  __ts_ms = s.__ts_ms,
  __deleted = (s.__op = 'd'),
  __merged_at = now()
WHEN MATCHED AND NOT t.__deleted AND t.__unresolved IS NOT NULL AND s.__op <> 'd'
  AND (s.__lsn < t.__lsn OR (s.__lsn = t.__lsn AND s.__seq < t.__seq))
  AND (1 = 0{{#each values join ""}}
    OR (instr(t.__unresolved, {{mark}}) > 0 AND s.__known_{{i}} AND (t.__fill_pos IS NULL OR s.__src_pos_{{i}} > t.__fill_pos)){{/each}}) THEN UPDATE SET
  {{#each values join ""}}{{col}} = CASE WHEN instr(t.__unresolved, {{mark}}) > 0 AND s.__known_{{i}} AND (t.__fill_pos IS NULL OR s.__src_pos_{{i}} > t.__fill_pos) THEN s.{{col}} ELSE t.{{col}} END,
  {{/each}}__fill_pos = greatest(t.__fill_pos, CAST(NULL AS DECIMAL(38, 0)){{#each values join ""}},
    CASE WHEN instr(t.__unresolved, {{mark}}) > 0 AND s.__known_{{i}} AND (t.__fill_pos IS NULL OR s.__src_pos_{{i}} > t.__fill_pos) THEN s.__src_pos_{{i}} END{{/each}}),
  __merged_at = now()
WHEN NOT MATCHED THEN INSERT (
  {{#each columns join ""}}{{col}},
  {{/each}}__op,
  __lsn,
  __seq,
  __ts_ms,
  __deleted,
  __unresolved,
  __fill_pos,
  __merged_at
) VALUES (
  {{#each keys join ""}}s.{{col}},
  {{/each}}{{#each values join ""}}s.{{col}},
  {{/each}}s.__op,
  s.__lsn,
  s.__seq,
  s.__ts_ms,
  (s.__op = 'd'),
  CASE WHEN s.__op = 'd' THEN NULL ELSE nullif(concat(','{{#each values join ""}}, CASE WHEN s.__provided_{{i}} THEN '' ELSE {{item}} END{{/each}}), ',') END,
  CASE WHEN s.__op = 'd' THEN NULL ELSE greatest(CAST(NULL AS DECIMAL(38, 0)), CAST(NULL AS DECIMAL(38, 0)){{#each values join ""}}, CASE WHEN s.__provided_{{i}} THEN NULL ELSE s.__src_pos_{{i}} END{{/each}}) END,
  now()
)
