CREATE TEMPORARY VIEW pairs AS
  SELECT a.symbol, a.ts, b.price - a.price AS spread FROM trades a JOIN trades b
  ON a.symbol = b.symbol AND b.ts BETWEEN a.ts AND a.ts + INTERVAL '1' SECOND;
SELECT symbol, window_start, window_end, COUNT(*) AS n, SUM(spread) AS total
FROM TABLE(TUMBLE(TABLE pairs, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY symbol, window_start, window_end
