//! What only the root package's tests know: where cargo put the `arena` binary and their
//! scratch folder. The helpers themselves are in arena-testkit.
#![allow(dead_code, unused_imports)]

pub use arena_testkit::arena::{answer_turn, get, open_battle, post, vote, Answer, Arena};
pub use arena_testkit::bin::{post_chat, start_controller, wait_workers, workers, Bin, Controller};
pub use arena_testkit::db::rows;
pub use arena_testkit::process::{free_port, kill_group, output_ok, rand_u64, spawn_until, Proc};
pub use arena_testkit::worker::{chat_request, collect, smollm2, tiny_gguf};

/// The `arena` binary under test.
pub fn bin() -> Bin {
    Bin::new(env!("CARGO_BIN_EXE_arena"), env!("CARGO_TARGET_TMPDIR"))
}
