CREATE TEMPORARY VIEW per_10s AS
SELECT symbol, window_start AS start_10s, window_end AS end_10s, window_time AS rowtime,
       COUNT(*) AS n, SUM(price) AS total, MIN(price) AS lo, MAX(price) AS hi
FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY symbol, window_start, window_end, window_time;
SELECT symbol, window_start, window_end, SUM(n) AS n, SUM(total) AS total, MIN(lo) AS lo, MAX(hi) AS hi
FROM TABLE(TUMBLE(TABLE per_10s, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE))
GROUP BY symbol, window_start, window_end
