SELECT o.symbol, o.price AS op, o.ts, r.price AS rp, r.ts AS rts
FROM trades AS o LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r
  ON o.symbol = r.symbol
