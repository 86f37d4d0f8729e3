SELECT o.symbol, o.price AS op, o.ts, r.price AS rp
FROM trades AS o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r
  ON o.symbol = r.symbol AND r.price > o.price
