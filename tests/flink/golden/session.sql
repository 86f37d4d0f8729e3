SELECT symbol, window_start, window_end, COUNT(*) AS n, SUM(price) AS total, MIN(price) AS lo, MAX(price) AS hi
FROM TABLE(SESSION(TABLE trades PARTITION BY symbol, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY symbol, window_start, window_end
