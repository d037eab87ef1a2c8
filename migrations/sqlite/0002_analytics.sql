-- Views for the analyst queries in the README (the date function is SQLite's own).

-- Votes per UTC day, and how many of them count.
CREATE VIEW daily_votes AS
SELECT date(created_ms / 1000, 'unixepoch') AS day,
       CAST(COUNT(*) AS BIGINT) AS votes,
       CAST(SUM(CASE WHEN counted THEN 1 ELSE 0 END) AS BIGINT) AS counted
FROM votes GROUP BY 1;

-- Answers per model: how many, their average length in characters and tokens, latency.
CREATE VIEW answer_stats AS
SELECT model,
       CAST(COUNT(*) AS BIGINT) AS answers,
       CAST(AVG(LENGTH(content)) AS DOUBLE PRECISION) AS avg_chars,
       CAST(AVG(completion_tokens) AS DOUBLE PRECISION) AS avg_tokens,
       CAST(AVG(latency_ms) AS DOUBLE PRECISION) AS avg_latency_ms,
       CAST(SUM(CASE WHEN finish_reason = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors
FROM messages WHERE role = 'assistant' AND NOT superseded GROUP BY model;
