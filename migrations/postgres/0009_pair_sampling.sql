-- The exact probability with which an anonymous battle's unordered pair was drawn, given the
-- models served and their weights at that moment (see controller/src/site/pick.rs), for
-- inverse-propensity weighting of the ratings. NULL for named battles and for battles drawn
-- before it was recorded.
ALTER TABLE battles ADD COLUMN pair_probability DOUBLE PRECISION;
