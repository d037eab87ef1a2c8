-- The arena's store: conversations, messages, battles, votes, ratings, moderation flags.
-- Times are Unix milliseconds (BIGINT) so both backends share one schema and one set of queries.

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    mode        TEXT NOT NULL CHECK (mode IN ('battle', 'direct')),
    model       TEXT NOT NULL,
    client_hash TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE messages (
    conversation_id   TEXT NOT NULL REFERENCES conversations (id),
    seq               BIGINT NOT NULL,
    turn              BIGINT NOT NULL,
    role              TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content           TEXT NOT NULL,
    model             TEXT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    latency_ms        BIGINT,
    ttft_ms           BIGINT,
    finish_reason     TEXT,
    error             TEXT,
    superseded        BOOLEAN NOT NULL DEFAULT 0,
    created_ms        BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE battles (
    id             TEXT PRIMARY KEY,
    model_a        TEXT NOT NULL,
    model_b        TEXT NOT NULL,
    anonymous      BOOLEAN NOT NULL,
    conversation_a TEXT NOT NULL REFERENCES conversations (id),
    conversation_b TEXT NOT NULL REFERENCES conversations (id),
    client_hash    TEXT NOT NULL,
    created_ms     BIGINT NOT NULL
);

CREATE TABLE votes (
    id              TEXT PRIMARY KEY,
    battle_id       TEXT NOT NULL REFERENCES battles (id),
    turn            BIGINT NOT NULL,
    winner          TEXT NOT NULL CHECK (winner IN ('model_a', 'model_b', 'tie', 'tie (bothbad)')),
    voter_hash      TEXT NOT NULL,
    counted         BOOLEAN NOT NULL,
    excluded_reason TEXT,
    created_ms      BIGINT NOT NULL,
    UNIQUE (battle_id, turn)
);

CREATE TABLE ratings (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    turn            BIGINT NOT NULL,
    rating          TEXT NOT NULL CHECK (rating IN ('upvote', 'downvote', 'flag')),
    voter_hash      TEXT NOT NULL,
    created_ms      BIGINT NOT NULL
);

CREATE TABLE moderation_flags (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT REFERENCES conversations (id),
    battle_id       TEXT REFERENCES battles (id),
    content         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    source          TEXT NOT NULL,
    client_hash     TEXT NOT NULL,
    created_ms      BIGINT NOT NULL
);

CREATE INDEX votes_created ON votes (created_ms);
CREATE INDEX battles_models ON battles (model_a, model_b);

-- One row per vote with the models' names: the input of every rating.
CREATE VIEW battle_outcomes AS
SELECT v.battle_id, v.turn, b.model_a, b.model_b, v.winner, b.anonymous, v.counted,
       v.excluded_reason, v.voter_hash, v.created_ms AS tstamp_ms
FROM votes v JOIN battles b ON b.id = v.battle_id;

-- Each counted anonymous vote from both models' sides.
CREATE VIEW model_results AS
SELECT model_a AS model, model_b AS opponent,
       CASE winner WHEN 'model_a' THEN 'win' WHEN 'model_b' THEN 'loss' ELSE 'tie' END AS result
FROM battle_outcomes WHERE anonymous AND counted
UNION ALL
SELECT model_b AS model, model_a AS opponent,
       CASE winner WHEN 'model_b' THEN 'win' WHEN 'model_a' THEN 'loss' ELSE 'tie' END AS result
FROM battle_outcomes WHERE anonymous AND counted;

-- Per-model totals and win rate (ties count half) over counted anonymous votes.
CREATE VIEW model_win_rates AS
SELECT model,
       CAST(COUNT(*) AS BIGINT) AS battles,
       CAST(SUM(CASE result WHEN 'win' THEN 1 ELSE 0 END) AS BIGINT) AS wins,
       CAST(SUM(CASE result WHEN 'loss' THEN 1 ELSE 0 END) AS BIGINT) AS losses,
       CAST(SUM(CASE result WHEN 'tie' THEN 1 ELSE 0 END) AS BIGINT) AS ties,
       CAST(SUM(CASE result WHEN 'win' THEN 1.0 WHEN 'tie' THEN 0.5 ELSE 0.0 END) AS DOUBLE PRECISION)
           / COUNT(*) AS win_rate
FROM model_results GROUP BY model;

-- Battles and outcomes per ordered pair of models (model against opponent).
CREATE VIEW pairwise_counts AS
SELECT model, opponent,
       CAST(COUNT(*) AS BIGINT) AS battles,
       CAST(SUM(CASE result WHEN 'win' THEN 1 ELSE 0 END) AS BIGINT) AS wins,
       CAST(SUM(CASE result WHEN 'loss' THEN 1 ELSE 0 END) AS BIGINT) AS losses,
       CAST(SUM(CASE result WHEN 'tie' THEN 1 ELSE 0 END) AS BIGINT) AS ties
FROM model_results GROUP BY model, opponent;
