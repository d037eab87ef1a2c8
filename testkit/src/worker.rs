//! Models for tests (the tiny random one, SmolLM2) and calls to a worker over gRPC.

use std::path::{Path, PathBuf};

use arena_proto::v1::worker_client::WorkerClient;
use tonic::transport::Channel;

/// Writes the tiny byte-level GGUF model into `dir`.
pub fn tiny_gguf(dir: &Path) -> PathBuf {
    let path = dir.join("tiny-chat.gguf");
    arena_worker::tiny::write_tiny_gguf(&path, arena_worker::tiny::VocabKind::Gpt2, 5).unwrap();
    path
}

/// The SmolLM2 GGUF that `scripts/fetch-models.sh` fetches; tests that need it fail with a
/// clear message when it is missing.
pub fn smollm2() -> PathBuf {
    let dir = std::env::var_os("ARENA_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/arena/models")
        });
    let path = dir.join(arena_launch::demo::MODEL_FILE);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models.sh (scripts/test.sh does it)",
        path.display()
    );
    path
}

pub use arena_launch::bench::chat_request;

/// Streams a generation to its end: the whole text and the last message.
pub async fn collect(
    client: &mut WorkerClient<Channel>,
    req: arena_proto::v1::GenerateRequest,
) -> (String, arena_proto::v1::GenerateResponse) {
    use tokio_stream::StreamExt;
    let mut s = client.generate(req).await.unwrap().into_inner();
    let mut text = String::new();
    let mut last = None;
    while let Some(m) = s.next().await {
        let m = m.unwrap();
        text.push_str(&m.text);
        last = Some(m);
    }
    (text, last.expect("an empty stream"))
}
