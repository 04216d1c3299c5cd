-- Gold: the daily sales trend (UTC days), with the running revenue total; cancelled orders excluded.
CREATE OR REPLACE TABLE {{target}} AS
SELECT
  sales_date,
  orders_count,
  units,
  revenue,
  customers,
  CAST(sum(revenue) OVER (ORDER BY sales_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DECIMAL(18, 2)) AS cumulative_revenue
FROM (
  SELECT
    CAST(CAST(ordered_at AS TIMESTAMP) AS DATE) AS sales_date,
    CAST(count(*) AS BIGINT) AS orders_count,
    CAST(sum(CAST(quantity AS BIGINT)) AS BIGINT) AS units,
    CAST(sum(CAST(quantity AS BIGINT) * CAST(unit_price AS DECIMAL(18, 2))) AS DECIMAL(18, 2)) AS revenue,
    CAST(count(DISTINCT user_id) AS BIGINT) AS customers
  FROM {{orders}}
  WHERE status <> 'cancelled'
  GROUP BY CAST(CAST(ordered_at AS TIMESTAMP) AS DATE)
) AS d
