//! Throwaway databases for tests: a fresh SQLite file or a fresh Postgres database per call,
//! and the rows of a query on either, as text.

use std::future::Future;
use std::path::Path;

use sqlx::Connection;

/// A new empty database on `backend`: an SQLite file under `dir`, or a database created
/// on the Postgres server at `ARENA_TEST_POSTGRES_URL` (which `scripts/test.sh` starts).
pub async fn database_url(backend: &str, dir: &Path) -> String {
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

/// A fresh SQLite URL under `dir`/arena-db (the folder is created), for a controller that
/// needs a store of its own.
pub fn scratch_sqlite_url(dir: &Path) -> String {
    let dir = dir.join("arena-db");
    std::fs::create_dir_all(&dir).unwrap();
    format!(
        "sqlite://{}",
        dir.join(format!("{:016x}.db", rand::random::<u64>()))
            .display()
    )
}

/// Rows of a query on the arena's database, each value as a string (NULL as "").
pub async fn rows(db_url: &str, sql: &str) -> Vec<Vec<String>> {
    use sqlx::Row;
    macro_rules! collect {
        ($pool:ty) => {{
            let pool = <$pool>::connect(db_url).await.unwrap();
            let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
            rows.iter()
                .map(|r| {
                    (0..r.columns().len())
                        .map(|i| {
                            r.try_get::<String, _>(i)
                                .or_else(|_| r.try_get::<i64, _>(i).map(|v| v.to_string()))
                                .or_else(|_| r.try_get::<f64, _>(i).map(|v| v.to_string()))
                                .or_else(|_| r.try_get::<bool, _>(i).map(|v| v.to_string()))
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .collect()
        }};
    }
    if db_url.starts_with("postgres") {
        collect!(sqlx::PgPool)
    } else {
        collect!(sqlx::SqlitePool)
    }
}

/// The plain setup of [`on_both_backends!`](crate::on_both_backends): `body(backend)`.
pub async fn given_backend<F, Fut>(backend: &'static str, body: F)
where
    F: FnOnce(&'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    body(backend).await;
}
