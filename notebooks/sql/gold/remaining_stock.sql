-- Gold: remaining stock per stock item = initial quantity + stock in - stock out.
CREATE OR REPLACE TABLE {{target}} AS
SELECT
  i.item_id,
  i.sku,
  i.name,
  CAST(i.initial_qty AS BIGINT) AS initial_qty,
  CAST(coalesce(m.total_in, 0) AS BIGINT) AS total_in,
  CAST(coalesce(m.total_out, 0) AS BIGINT) AS total_out,
  CAST(i.initial_qty + coalesce(m.total_in, 0) - coalesce(m.total_out, 0) AS BIGINT) AS remaining
FROM {{stock_item}} AS i
LEFT JOIN (
  SELECT
    item_id,
    sum(CASE WHEN direction = 'in' THEN qty ELSE 0 END) AS total_in,
    sum(CASE WHEN direction = 'out' THEN qty ELSE 0 END) AS total_out
  FROM {{stock_movement}}
  GROUP BY item_id
) AS m ON m.item_id = i.item_id
