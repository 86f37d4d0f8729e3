SELECT symbol, window_start, window_end,
       COUNT(*) AS n, SUM(price) AS sum_price, MIN(price) AS min_price, MAX(price) AS max_price, AVG(price) AS avg_price
FROM TABLE(HOP(TABLE trades, DESCRIPTOR(ts), INTERVAL '10' SECOND, INTERVAL '1' MINUTE))
GROUP BY symbol, window_start, window_end
