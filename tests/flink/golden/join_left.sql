SELECT a.symbol, a.ts AS ts_a, b.ts AS ts_b, a.price AS pa, b.price AS pb
FROM trades a LEFT JOIN trades b
  ON a.symbol = b.symbol AND a.price < b.price
  AND b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '2' SECOND
