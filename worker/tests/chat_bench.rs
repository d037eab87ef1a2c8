//! `arena bench chat` on a tiny model: every turn is timed on both workers, and every turn
//! after the first starts from the prefix cache.

use arena_worker::chat_bench::{run, ChatBenchOptions};
use arena_worker::tiny::{self, VocabKind};

#[tokio::test(flavor = "multi_thread")]
async fn each_turn_is_timed_and_later_turns_start_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    tiny::write_tiny_gguf(&path, VocabKind::Gpt2, 5).unwrap();
    let opts = ChatBenchOptions {
        turns: 3,
        answer_tokens: 8,
        prefix_cache_bytes: 16 << 20,
        repeats: 2,
    };
    let report = run(&path, &opts).await.unwrap();
    assert_eq!((report.turns.len(), report.repeats), (3, 2));
    for (i, t) in report.turns.iter().enumerate() {
        assert_eq!(t.turn, i + 1);
        assert!(t.ttft_ms_cached > 0.0 && t.ttft_ms_uncached > 0.0, "{t:?}");
        if i > 0 {
            // The whole previous prompt at least.
            let previous = report.turns[i - 1].prompt_tokens;
            assert!(
                t.cached_tokens >= previous && t.cached_tokens < t.prompt_tokens,
                "{t:?}"
            );
        }
    }
    // Nothing of the warm-up request serves the first turn.
    assert_eq!(report.turns[0].cached_tokens, 0);
    assert!(report.last_over_first_cached().is_some());
    assert!(report.table().contains("last turn's TTFT over the first's"));
}
