//! Helpers for the project's tests, and only for them: every crate takes this one under
//! `[dev-dependencies]`, so no production library carries test code.
//!
//! - [`db`]: throwaway SQLite files and Postgres databases, and [`on_both_backends!`] to run a
//!   test once on each.
//! - With the `processes` feature: real `arena` processes on free ports, killed with their
//!   whole process group on drop ([`process`], [`bin`]), tiny and SmolLM2 models and gRPC
//!   worker calls ([`worker`]), HTTP and SSE calls to an arena ([`arena`]), a recording gRPC
//!   controller ([`controller`]) and a headless Chromium ([`browser`]).
//!
//! Cargo tells only the root package's tests where the `arena` binary is
//! (`CARGO_BIN_EXE_arena`): they pass it in through [`bin::Bin`].
#![forbid(unsafe_code)]

pub mod db;

#[cfg(feature = "processes")]
pub mod arena;
#[cfg(feature = "processes")]
pub mod bin;
#[cfg(feature = "processes")]
pub mod browser;
#[cfg(feature = "processes")]
pub mod controller;
#[cfg(feature = "processes")]
pub mod process;
#[cfg(feature = "processes")]
pub mod worker;

/// Runs an async test body once per store backend: `on_both_backends!(name, body)` makes a
/// module `name` with the tests `sqlite` and `postgres`, each awaiting `body("sqlite")` or
/// `body("postgres")`; `on_both_backends!(name, setup, body)` awaits `setup("sqlite", body)`
/// instead (e.g. a `setup` that opens a fresh store and hands it to `body`). `body` and `setup`
/// are functions or closures, seen from the calling module. Postgres needs
/// `ARENA_TEST_POSTGRES_URL` (see [`db::database_url`]).
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        $crate::on_both_backends!($name, $crate::db::given_backend, $body);
    };
    ($name:ident, $setup:expr, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                ($setup)("sqlite", $body).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                ($setup)("postgres", $body).await;
            }
        }
    };
}
