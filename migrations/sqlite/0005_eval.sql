-- LLM-as-a-judge (`arena eval`): the answers models gave to a question set, and every
-- judgment a judge made of them, prompt and raw output included. Arena battles judged by
-- `arena eval agree` are judgments too (question set `arena-battles`, question id = battle
-- id), so judge verdicts and human votes sit on one ledger.

-- One row per answered turn; a question counts as answered when every turn has its row.
CREATE TABLE eval_answers (
    question_set      TEXT NOT NULL,
    question_id       TEXT NOT NULL,
    model             TEXT NOT NULL,
    turn              BIGINT NOT NULL CHECK (turn >= 1),
    category          TEXT NOT NULL,
    content           TEXT NOT NULL,
    temperature       DOUBLE PRECISION NOT NULL,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    latency_ms        BIGINT,
    finish_reason     TEXT,
    created_ms        BIGINT NOT NULL,
    PRIMARY KEY (question_set, question_id, model, turn)
);

-- One row per judge call. model_a is the answer shown first (single mode: the graded model,
-- model_b empty); a position-swapped pair is the row with the two models exchanged. verdict
-- is NULL when the output held no readable verdict, and error then says why.
CREATE TABLE eval_judgments (
    question_set TEXT NOT NULL,
    question_id  TEXT NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('single', 'pairwise', 'arena-hard')),
    judge        TEXT NOT NULL,
    turn         BIGINT NOT NULL CHECK (turn >= 1),
    model_a      TEXT NOT NULL,
    model_b      TEXT NOT NULL,
    category     TEXT NOT NULL,
    prompt       TEXT NOT NULL,
    output       TEXT NOT NULL,
    verdict      TEXT,
    score        DOUBLE PRECISION,
    error        TEXT,
    created_ms   BIGINT NOT NULL,
    PRIMARY KEY (question_set, question_id, mode, judge, turn, model_a, model_b)
);

-- Mean single grades per question set, judge, model and category, for analyst queries.
CREATE VIEW eval_single_scores AS
SELECT question_set, judge, model_a AS model, category,
       CAST(AVG(score) AS DOUBLE PRECISION) AS mean_score,
       CAST(COUNT(score) AS BIGINT) AS graded,
       CAST(SUM(CASE WHEN verdict IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS unreadable
FROM eval_judgments WHERE mode = 'single'
GROUP BY question_set, judge, model_a, category;
