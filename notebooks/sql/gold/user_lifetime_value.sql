-- Gold: per user, orders and lifetime value (cancelled orders excluded) and the user's segment.
CREATE OR REPLACE TABLE {{target}} AS
SELECT
  u.user_id,
  u.email,
  u.full_name,
  u.country,
  CAST(coalesce(o.orders_count, 0) AS BIGINT) AS orders_count,
  CAST(coalesce(o.lifetime_value, 0) AS DECIMAL(18, 2)) AS lifetime_value,
  o.first_order_at,
  o.last_order_at,
  CASE
    WHEN coalesce(o.lifetime_value, 0) >= 1000 THEN 'vip'
    WHEN coalesce(o.lifetime_value, 0) >= 250 THEN 'loyal'
    WHEN coalesce(o.orders_count, 0) > 0 THEN 'occasional'
    ELSE 'prospect'
  END AS segment
FROM {{users}} AS u
LEFT JOIN (
  SELECT
    user_id,
    count(*) AS orders_count,
    sum(CAST(quantity AS BIGINT) * CAST(unit_price AS DECIMAL(18, 2))) AS lifetime_value,
    min(CAST(ordered_at AS TIMESTAMP)) AS first_order_at,
    max(CAST(ordered_at AS TIMESTAMP)) AS last_order_at
  FROM {{orders}}
  WHERE status <> 'cancelled'
  GROUP BY user_id
) AS o ON o.user_id = u.user_id
