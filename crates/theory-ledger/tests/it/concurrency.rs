//! Budgets under concurrent runs: whatever admission and settlement interleave, a plan never goes
//! below zero and `reserved + spent` never exceeds its budget, on both backends. The runs go
//! through the orchestrator's port (`admit`, `close`) from two pools, as two `theory` processes.

use std::sync::Arc;

use proptest::prelude::*;
use theory_core::ledger::{Admission, Closing, RunLedger};
use theory_core::{PlanKey, ProcessorRef, WritePrefix};
use theory_ledger::Ledger;
use theory_protocol::{Envelope, ErrorBody, ErrorCode, ErrorEnvelope, ExecutionId, Meta, Mode};

use crate::support::{Fresh, postgres, sqlite};

/// One run through the port: admitted with an estimate of `reserve`, closed having cost `actual`
/// (an error envelope: a failure is charged what it reported). Returns what the plan was
/// charged, 0 when admission refused it.
async fn one_run(ledger: &Ledger, index: usize, reserve: i64, actual: i64) -> i64 {
    let id: ExecutionId = format!("E{index}").parse().unwrap();
    let prefix: WritePrefix = format!("/artifacts/outputs/run{index}/").parse().unwrap();
    let reference: ProcessorRef = "theory/probe@1".parse().unwrap();
    let plan: PlanKey = "shared".parse().unwrap();
    let admission = Admission {
        execution_id: &id,
        processor_ref: &reference,
        adapter: theory_core::AdapterKind::Local,
        runtime: theory_core::Runtime::Process,
        mode: Mode::Real,
        memo_key: "memo",
        write_prefix: &prefix,
        plan: Some(&plan),
        estimate_usd_micro: u64::try_from(reserve).unwrap(),
        lease_ttl_s: Some(60),
    };
    let admitted = match ledger.admit(&admission).await {
        Ok(admitted) => admitted,
        Err(failure) if failure.code == ErrorCode::Budget => return 0,
        Err(failure) => panic!("admission failed: {failure:?}"),
    };
    let envelope = Envelope::Error(ErrorEnvelope {
        execution_id: id.clone(),
        error: ErrorBody { code: ErrorCode::Provider, message: "spent, then failed".into() },
        meta: Meta::default(),
    });
    let closing = Closing {
        execution_id: &id,
        processor_ref: &reference,
        adapter: theory_core::AdapterKind::Local,
        mode: Mode::Real,
        envelope: &envelope,
        cost_usd_micro: Some(u64::try_from(actual).unwrap()),
        signed_by: None,
        attempts: 1,
        duration_ms: 1,
    };
    ledger.close(&closing, Some(&admitted)).await.expect("the run is recorded");
    let record = ledger.execution(id.as_str()).await.unwrap();
    assert_eq!(record.error_code.as_deref(), Some("ERR_PROVIDER"));
    let settled = ledger.events(Some(id.as_str())).await.unwrap();
    let settled = settled.iter().find(|event| event.kind == "plan.settled").expect("settled");
    settled.body["charged_usd_micro"].as_i64().unwrap()
}

/// Runs every `(reserve, actual)` pair as its own concurrent run against a plan of `budget`,
/// half of them from a second pool, while an observer reads the plan over and over; checks the
/// invariants throughout and after.
async fn concurrent_runs(fresh: Fresh, budget: i64, runs: Vec<(i64, i64)>) {
    let ledger: Arc<Ledger> = Arc::new(fresh.ledger.clone());
    let other: Arc<Ledger> = Arc::new(fresh.another_process().await);
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
            let ledger = Arc::clone(if index % 2 == 0 { &ledger } else { &other });
            tokio::spawn(async move { one_run(&ledger, index, reserve, actual).await })
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
