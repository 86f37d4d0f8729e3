CREATE TEMPORARY VIEW cheap AS SELECT CASE WHEN price < 15 THEN CAST(NULL AS STRING) ELSE symbol END AS symbol, price, ts FROM trades WHERE price < 80;
CREATE TEMPORARY VIEW dear AS SELECT CASE WHEN price > 198 THEN CAST(NULL AS STRING) ELSE symbol END AS symbol, price, ts FROM trades WHERE price > 150;
SELECT c.symbol, c.price, c.ts, c.window_start
FROM (SELECT * FROM TABLE(TUMBLE(TABLE cheap, DESCRIPTOR(ts), INTERVAL '1' SECONDS))) c
WHERE c.symbol NOT IN (SELECT d.symbol
  FROM (SELECT * FROM TABLE(TUMBLE(TABLE dear, DESCRIPTOR(ts), INTERVAL '1' SECONDS))) d
  WHERE c.window_start = d.window_start AND c.window_end = d.window_end)
