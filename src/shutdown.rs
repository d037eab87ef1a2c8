//! The one shutdown signal: the binary hands it to whatever serves (controller, worker,
//! demo), and the libraries stop when it resolves.

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when it is first
/// polled: until then the default actions apply.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
