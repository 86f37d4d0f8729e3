SELECT MAX(total) AS top, MIN(total) AS low, COUNT(*) AS symbols, SUM(n) AS events, AVG(total) AS mean
FROM (SELECT symbol, COUNT(*) AS n, SUM(price) AS total FROM trades GROUP BY symbol)
