//! The ledger as the orchestrator sees it (`RunLedger`): admission and closing are one write
//! each, so a refused admission leaves nothing behind and a closed run holds nothing.

use std::sync::LazyLock;

use theory_core::ledger::{Admission, Closing, RunLedger};
use theory_core::{PlanKey, ProcessorRef, WritePrefix};
use theory_ledger::ExecutionStatus;
use theory_protocol::{Envelope, ErrorCode, ExecutionId, Meta, Mode, SuccessEnvelope};

use crate::support::both;

static PROBE: LazyLock<ProcessorRef> = LazyLock::new(|| "theory/probe@1".parse().unwrap());
static PLAN: LazyLock<PlanKey> = LazyLock::new(|| "p".parse().unwrap());

fn prefix(text: &str) -> WritePrefix {
    text.parse().unwrap()
}

fn admission<'a>(id: &'a ExecutionId, prefix: &'a WritePrefix, estimate: u64) -> Admission<'a> {
    Admission {
        execution_id: id,
        processor_ref: &PROBE,
        adapter: theory_core::AdapterKind::Local,
        runtime: theory_core::Runtime::Process,
        mode: Mode::Real,
        memo_key: "memo",
        write_prefix: prefix,
        plan: Some(&PLAN),
        estimate_usd_micro: estimate,
        lease_ttl_s: Some(60),
    }
}

#[tokio::test]
async fn a_refused_admission_leaves_nothing_and_a_closed_run_holds_nothing() {
    for (backend, fresh) in both().await {
        let ledger = &fresh.ledger;
        ledger.create_plan("p", 1_000).await.unwrap();
        let first: ExecutionId = "E1".parse().unwrap();
        let admitted =
            ledger.admit(&admission(&first, &prefix("/artifacts/outputs/a/"), 600)).await.unwrap();

        // Refused for its lease: its reservation is not kept, its record not opened.
        let second: ExecutionId = "E2".parse().unwrap();
        let refused =
            ledger.admit(&admission(&second, &prefix("/artifacts/outputs/a/b/"), 100)).await;
        assert_eq!(refused.unwrap_err().code, ErrorCode::Lease, "{backend}");
        // Refused for its budget: its lease is not kept.
        let third: ExecutionId = "E3".parse().unwrap();
        let refused = ledger.admit(&admission(&third, &prefix("/artifacts/outputs/c/"), 500)).await;
        assert_eq!(refused.unwrap_err().code, ErrorCode::Budget, "{backend}");
        assert_eq!(ledger.plan("p").await.unwrap().reserved_usd_micro, 600, "{backend}");
        assert!(ledger.execution("E2").await.is_err(), "{backend}");
        assert!(ledger.events(Some("E3")).await.unwrap().is_empty(), "{backend}");

        let envelope = Envelope::Success(SuccessEnvelope {
            execution_id: first.clone(),
            outputs: Vec::new(),
            index_path: "/artifacts/outputs/a/outputs.json".into(),
            meta: Meta::default(),
        });
        let closing = Closing {
            execution_id: &first,
            processor_ref: &PROBE,
            adapter: theory_core::AdapterKind::Local,
            mode: Mode::Real,
            envelope: &envelope,
            cost_usd_micro: Some(250),
            signed_by: None,
            attempts: 2,
            duration_ms: 7,
        };
        ledger.close(&closing, Some(&admitted)).await.expect("the run is recorded");
        let plan = ledger.plan("p").await.unwrap();
        assert_eq!((plan.reserved_usd_micro, plan.spent_usd_micro), (0, 250), "{backend}");
        let record = ledger.execution("E1").await.unwrap();
        assert_eq!((record.status, record.attempts), (ExecutionStatus::Success, 2), "{backend}");
        // The lease went with it: the prefix is free again.
        ledger.admit(&admission(&second, &prefix("/artifacts/outputs/a/b/"), 100)).await.unwrap();
        let kinds: Vec<String> =
            ledger.events(Some("E1")).await.unwrap().into_iter().map(|event| event.kind).collect();
        assert_eq!(
            kinds,
            [
                "lease.acquired",
                "plan.reserved",
                "execution.started",
                "execution.finished",
                "lease.released",
                "plan.settled"
            ],
            "{backend}"
        );
        assert_eq!(ledger.verify().await.unwrap().first_bad_seq, None, "{backend}");
    }
}
