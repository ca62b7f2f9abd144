//! The ledger's conformance story and its concurrency property, each run on SQLite and on a real
//! PostgreSQL (127.0.0.1:55432, started by `scripts/services/postgres start`; scripts/test does).

mod batches;
mod concurrency;
mod port;
mod query_plans;
mod story;
mod support;
