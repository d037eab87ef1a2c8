-- The leaderboard categories each vote's battle falls in (coding, math, multi_turn,
-- long_query, its language, non_english, hard_prompt), tagged from its first prompt when the
-- vote is cast; the hard-prompt labeller may add its tag later.
CREATE TABLE vote_categories (
    vote_id  TEXT NOT NULL REFERENCES votes (id),
    category TEXT NOT NULL,
    PRIMARY KEY (vote_id, category)
);

CREATE INDEX vote_categories_category ON vote_categories (category);
