-- When a category was added to a vote after the vote was cast (the hard-prompt labeller),
-- Unix milliseconds; 0 for the tags written with the vote. Leaderboard caches compare the
-- newest with the one they were computed at, so a late tag shows without waiting for a vote.
ALTER TABLE vote_categories ADD COLUMN tagged_ms BIGINT NOT NULL DEFAULT 0;

CREATE INDEX vote_categories_tagged_ms ON vote_categories (tagged_ms);
