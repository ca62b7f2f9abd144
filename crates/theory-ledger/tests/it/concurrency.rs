//! Budgets under concurrent runs: whatever admission and settlement interleave, a plan never goes
//! below zero and `reserved + spent` never exceeds its budget, on both backends.

use std::sync::Arc;

use proptest::prelude::*;
use theory_ledger::{Ledger, LedgerError};

use crate::support::{Fresh, postgres, sqlite};

/// Runs every `(reserve, actual)` pair as its own concurrent run against a plan of `budget`,
/// while an observer reads the plan over and over; checks the invariants throughout and after.
async fn concurrent_runs(fresh: Fresh, budget: i64, runs: Vec<(i64, i64)>) {
    let ledger: Arc<Ledger> = Arc::new(fresh.ledger.clone());
    ledger.create_plan("shared", budget).await.unwrap();
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let observer = {
        let (ledger, watching) = (Arc::clone(&ledger), Arc::clone(&watching));
        tokio::spawn(async move {
            let mut looks = 0;
            while watching.load(std::sync::atomic::Ordering::SeqCst) || looks == 0 {
                let plan = ledger.plan("shared").await.unwrap();
                assert!(plan.reserved_usd_micro >= 0 && plan.spent_usd_micro >= 0, "{plan:?}");
                assert!(
                    plan.reserved_usd_micro + plan.spent_usd_micro <= plan.budget_usd_micro,
                    "{plan:?}"
                );
                looks += 1;
            }
        })
    };
    let tasks: Vec<_> = runs
        .into_iter()
        .enumerate()
        .map(|(index, (reserve, actual))| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                let id = format!("E{index}");
                match ledger.reserve("shared", &id, reserve).await {
                    Ok(_) => {
                        ledger
                            .settle("shared", &id, reserve, actual)
                            .await
                            .unwrap()
                            .charged_usd_micro
                    }
                    Err(LedgerError::Budget { .. }) => 0,
                    Err(other) => panic!("reserve failed: {other}"),
                }
            })
        })
        .collect();
    let mut charged = 0;
    for task in tasks {
        charged += task.await.unwrap();
    }
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    observer.await.unwrap();
    let plan = ledger.plan("shared").await.unwrap();
    assert_eq!(plan.reserved_usd_micro, 0, "every reservation was settled: {plan:?}");
    assert_eq!(plan.spent_usd_micro, charged, "spent is the sum of what was charged");
    assert!(plan.spent_usd_micro <= budget);
    assert!(ledger.verify().await.unwrap().first_bad_seq.is_none());
}

fn runs() -> impl Strategy<Value = (i64, Vec<(i64, i64)>)> {
    (1..5_000_i64, prop::collection::vec((1..2_000_i64, 0..3_000_i64), 8..32))
}

fn check(backend: &'static str, budget: i64, plan: Vec<(i64, i64)>) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    runtime.block_on(async move {
        let fresh = if backend == "sqlite" { sqlite().await } else { postgres().await };
        concurrent_runs(fresh, budget, plan).await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn a_plan_never_overspends_under_concurrent_runs_on_sqlite((budget, plan) in runs()) {
        check("sqlite", budget, plan);
    }

    #[test]
    fn a_plan_never_overspends_under_concurrent_runs_on_postgres((budget, plan) in runs()) {
        check("postgres", budget, plan);
    }
}
