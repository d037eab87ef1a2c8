-- One leaderboard snapshot per UTC day (`arena leaderboard --snapshot`'s JSON: ratings,
-- method, options, seed, software version, the SHA-256 of the exact vote set), taken by the
-- first controller to compute the leaderboard that day; `arena leaderboard --verify` checks it.
CREATE TABLE leaderboard_snapshots (
    day             TEXT PRIMARY KEY,
    created_ms      BIGINT NOT NULL,
    votes           BIGINT NOT NULL,
    vote_set_sha256 TEXT NOT NULL,
    snapshot        TEXT NOT NULL
);
