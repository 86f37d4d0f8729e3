SELECT symbol, window_start, window_end, COUNT(*) AS n, SUM(price) AS total, MIN(price) AS lo, MAX(price) AS hi
FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY symbol, window_start, window_end
