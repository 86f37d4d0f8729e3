SELECT n, COUNT(*) AS symbols, MIN(symbol) AS first_symbol, MAX(symbol) AS last_symbol, SUM(total) AS total, MAX(hi) AS hi
FROM (SELECT symbol, COUNT(*) AS n, SUM(price) AS total, MAX(price) AS hi FROM trades GROUP BY symbol)
GROUP BY n
