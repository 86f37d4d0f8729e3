CREATE TEMPORARY VIEW cheap AS SELECT * FROM trades WHERE price < 80;
CREATE TEMPORARY VIEW dear AS SELECT * FROM trades WHERE price > 120;
SELECT c.symbol, c.price, c.ts, c.window_start
FROM (SELECT * FROM TABLE(TUMBLE(TABLE cheap, DESCRIPTOR(ts), INTERVAL '5' SECONDS))) c
WHERE c.symbol IN (SELECT d.symbol
  FROM (SELECT * FROM TABLE(TUMBLE(TABLE dear, DESCRIPTOR(ts), INTERVAL '5' SECONDS))) d
  WHERE c.window_start = d.window_start AND c.window_end = d.window_end)
