SELECT symbol, window_start, n, total, rownum FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY total DESC) AS rownum
  FROM (SELECT symbol, window_start, window_end, COUNT(*) AS n, SUM(price) AS total
        FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '5' SECONDS))
        GROUP BY symbol, window_start, window_end))
WHERE rownum <= 3
