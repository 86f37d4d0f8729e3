CREATE TEMPORARY VIEW cheap AS SELECT * FROM trades WHERE price < 80;
CREATE TEMPORARY VIEW dear AS SELECT * FROM trades WHERE price > 120;
SELECT c.symbol AS cs, d.symbol AS ds, c.price AS pc, d.price AS pd,
  COALESCE(c.window_start, d.window_start) AS ws, COALESCE(c.window_end, d.window_end) AS we
FROM (SELECT * FROM TABLE(HOP(TABLE cheap, DESCRIPTOR(ts), INTERVAL '2' SECONDS, INTERVAL '6' SECONDS))) c
LEFT JOIN (SELECT * FROM TABLE(HOP(TABLE dear, DESCRIPTOR(ts), INTERVAL '2' SECONDS, INTERVAL '6' SECONDS))) d
ON c.symbol = d.symbol AND c.window_start = d.window_start AND c.window_end = d.window_end
