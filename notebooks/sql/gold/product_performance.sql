-- Gold: per product, revenue and popularity (units sold; rank 1 = most units), cancelled orders excluded.
CREATE OR REPLACE TABLE {{target}} AS
SELECT
  p.product_id,
  p.name,
  p.category,
  CAST(p.price AS DECIMAL(18, 2)) AS price,
  p.active,
  CAST(coalesce(s.orders_count, 0) AS BIGINT) AS orders_count,
  CAST(coalesce(s.units_sold, 0) AS BIGINT) AS units_sold,
  CAST(coalesce(s.revenue, 0) AS DECIMAL(18, 2)) AS revenue,
  CAST(coalesce(s.buyers, 0) AS BIGINT) AS distinct_buyers,
  CAST(dense_rank() OVER (ORDER BY coalesce(s.units_sold, 0) DESC) AS BIGINT) AS popularity_rank
FROM {{products}} AS p
LEFT JOIN (
  SELECT
    product_id,
    count(*) AS orders_count,
    sum(CAST(quantity AS BIGINT)) AS units_sold,
    sum(CAST(quantity AS BIGINT) * CAST(unit_price AS DECIMAL(18, 2))) AS revenue,
    count(DISTINCT user_id) AS buyers
  FROM {{orders}}
  WHERE status <> 'cancelled'
  GROUP BY product_id
) AS s ON s.product_id = p.product_id
