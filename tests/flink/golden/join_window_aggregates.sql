CREATE TEMPORARY VIEW cheap AS SELECT * FROM trades WHERE price < 80;
CREATE TEMPORARY VIEW dear AS SELECT * FROM trades WHERE price > 120;
SELECT x.symbol, x.window_start, x.window_end, x.n, y.hi
FROM (SELECT symbol, window_start, window_end, COUNT(*) AS n
      FROM TABLE(TUMBLE(TABLE cheap, DESCRIPTOR(ts), INTERVAL '10' SECONDS))
      GROUP BY symbol, window_start, window_end) x
LEFT JOIN (SELECT symbol, window_start, window_end, MAX(price) AS hi
      FROM TABLE(TUMBLE(TABLE dear, DESCRIPTOR(ts), INTERVAL '10' SECONDS))
      GROUP BY symbol, window_start, window_end) y
ON x.symbol = y.symbol AND x.window_start = y.window_start AND x.window_end = y.window_end
