//! A fresh ledger per test on each backend: a SQLite file in a temp folder, or a database of its
//! own on the test PostgreSQL server.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use theory_ledger::Ledger;

/// The test server's admin URL; `THEORY_TEST_POSTGRES_URL` overrides it.
fn admin_url() -> String {
    std::env::var("THEORY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".into())
}

/// A ledger and what keeps it alive.
pub(crate) struct Fresh {
    pub(crate) ledger: Ledger,
    /// The database's URL.
    pub(crate) url: String,
    _folder: Option<tempfile::TempDir>,
}

impl Fresh {
    /// The same database through a second pool of its own, as another `theory` process has.
    pub(crate) async fn another_process(&self) -> Ledger {
        Ledger::open(Some(&self.url), std::path::Path::new("unused")).await.unwrap()
    }

    /// Runs SQL behind the ledger's back, as someone editing the database would.
    pub(crate) async fn tamper(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(&self.url).await.unwrap();
        sqlx::query(sql).execute(&mut connection).await.unwrap();
    }
}

pub(crate) async fn sqlite() -> Fresh {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join(".theory/theory.db");
    let ledger = Ledger::open(None, &file).await.unwrap();
    Fresh { ledger, url: format!("sqlite://{}", file.display()), _folder: Some(folder) }
}

pub(crate) async fn postgres() -> Fresh {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let admin = admin_url();
    let mut connection = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|error| {
        panic!("no PostgreSQL at {admin} ({error}): start it with scripts/services/postgres start (scripts/test does)")
    });
    let name = format!(
        "theory_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        theory_core::new_execution_id().to_string().to_lowercase()
    );
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut connection).await.unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let ledger = Ledger::open(Some(&url), std::path::Path::new("unused")).await.unwrap();
    Fresh { ledger, url, _folder: None }
}

/// Both backends, named.
pub(crate) async fn both() -> Vec<(&'static str, Fresh)> {
    vec![("sqlite", sqlite().await), ("postgres", postgres().await)]
}
