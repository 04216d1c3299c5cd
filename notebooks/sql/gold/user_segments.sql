-- Gold: the user segments (from gold user_lifetime_value): how many users, and what they are worth.
CREATE OR REPLACE TABLE {{target}} AS
SELECT
  segment,
  CAST(count(*) AS BIGINT) AS users,
  CAST(sum(orders_count) AS BIGINT) AS orders_count,
  CAST(sum(lifetime_value) AS DECIMAL(18, 2)) AS total_value,
  CAST(max(lifetime_value) AS DECIMAL(18, 2)) AS max_value
FROM {{user_lifetime_value}}
GROUP BY segment
