SELECT symbol, price, ts, window_start, rownum FROM (
  SELECT symbol, price, ts, window_start, window_end,
    ROW_NUMBER() OVER (PARTITION BY window_start, window_end, symbol ORDER BY price DESC) AS rownum
  FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '5' SECONDS)))
WHERE rownum <= 2
