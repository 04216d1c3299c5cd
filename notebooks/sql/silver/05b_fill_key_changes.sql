-- Silver, step 5b: a primary-key change whose row has unchanged TOAST values. The engine lands it as
-- a d of the old key at (__lsn, __seq - 1) and a c of the new key at (__lsn, __seq) that lacks
-- the columns listed in __unchanged (PostgreSQL did not send them). Those columns held, by
-- definition, the old key's values just before the d: its tombstone keeps them (step 5), so the
-- new key's row takes them from there, unless a newer value for the column is already known
-- (__unresolved and __fill_pos as in step 5). Joins only this batch's such c records.
MERGE INTO {{state_table}} AS t
USING (
  SELECT
    {{#each keys join ""}}c.{{col}} AS {{col}},
    {{/each}}{{#each values join ""}}o.{{col}} AS {{col}},
    coalesce(array_contains(c.__unchanged, {{lit}}), false) AS __handed_{{i}},
    {{/each}}CAST(o.__lsn AS DECIMAL(38, 0)) * 10000000000 + o.__seq AS __from_pos
  FROM {{source}} AS c
  JOIN {{state_table}} AS o ON o.__deleted AND o.__lsn = c.__lsn AND o.__seq = c.__seq - 1
  WHERE c.__op = 'c' AND c.__unchanged IS NOT NULL
) AS s
ON {{#each keys join " AND "}}t.{{col}} = s.{{col}}{{/each}}
WHEN MATCHED AND NOT t.__deleted AND t.__unresolved IS NOT NULL AND (t.__fill_pos IS NULL OR s.__from_pos > t.__fill_pos) THEN UPDATE SET
  {{#each values join ""}}{{col}} = CASE WHEN s.__handed_{{i}} AND instr(t.__unresolved, {{mark}}) > 0 THEN s.{{col}} ELSE t.{{col}} END,
  {{/each}}__fill_pos = s.__from_pos,
  __merged_at = now()
