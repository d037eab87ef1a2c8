//! Throwaway databases for tests: a fresh SQLite file or a fresh Postgres database per call.

use sqlx::Connection;

/// The backends a store test runs against.
pub const BACKENDS: [&str; 2] = ["sqlite", "postgres"];

/// A new empty database on `backend`: an SQLite file under `dir`, or a database created
/// on the Postgres server at `ARENA_TEST_POSTGRES_URL` (which `scripts/test.sh` starts).
pub async fn database_url(backend: &str, dir: &std::path::Path) -> String {
    let name = format!("arena_test_{:016x}", rand::random::<u64>());
    match backend {
        "sqlite" => format!("sqlite://{}", dir.join(format!("{name}.db")).display()),
        "postgres" => {
            let admin = std::env::var("ARENA_TEST_POSTGRES_URL").expect(
                "ARENA_TEST_POSTGRES_URL is not set: run scripts/test.sh, which starts a throwaway Postgres",
            );
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("cannot reach the test Postgres at {admin}: {e}"));
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            format!("{base}/{name}")
        }
        other => panic!("unknown backend {other}"),
    }
}
