CREATE TEMPORARY VIEW cheap AS SELECT * FROM trades WHERE price < 60;
CREATE TEMPORARY VIEW dear AS SELECT * FROM trades WHERE price > 150;
SELECT c.symbol AS cs, d.symbol AS ds, c.ts AS ts_c, d.ts AS ts_d, c.price AS pc, d.price AS pd
FROM cheap c FULL JOIN dear d
  ON c.symbol = d.symbol AND d.ts > c.ts AND d.ts < c.ts + INTERVAL '3' SECOND
