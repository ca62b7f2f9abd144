//! The ledger's conformance story, the same on both backends.

use serde_json::json;
use theory_ledger::{ExecutionStart, ExecutionStatus, Finish, LedgerError};

use crate::support::both;

fn start(id: &str, plan: Option<&str>, reserved: i64) -> ExecutionStart {
    ExecutionStart {
        id: id.into(),
        processor_ref: "theory/probe@1".into(),
        adapter: "local".into(),
        runtime: "process".into(),
        mode: "mock".into(),
        memo_key: format!("memo-{id}"),
        plan_key: plan.map(str::to_owned),
        write_prefix: format!("/artifacts/outputs/{id}/"),
        reserved_usd_micro: reserved,
        owner: "host:1".into(),
    }
}

fn success(id: &str, cost: i64) -> Finish {
    Finish {
        status: ExecutionStatus::Success,
        error_code: None,
        cost_usd_micro: Some(cost),
        attempts: 1,
        duration_ms: 12,
        envelope: json!({"status": "success", "execution_id": id}),
        signed_by: None,
    }
}

#[tokio::test]
async fn plans_reserve_settle_and_refuse_beyond_their_budget() {
    for (backend, fresh) in both().await {
        let ledger = &fresh.ledger;
        let plan = ledger.create_plan("team", 1_000).await.unwrap();
        assert_eq!((plan.budget_usd_micro, plan.available_usd_micro), (1_000, 1_000), "{backend}");
        assert!(
            matches!(ledger.create_plan("team", 5).await, Err(LedgerError::PlanExists(_))),
            "{backend}"
        );
        assert!(
            matches!(ledger.plan("nobody").await, Err(LedgerError::UnknownPlan(_))),
            "{backend}"
        );

        let held = ledger.reserve("team", "E1", 700).await.unwrap();
        assert_eq!((held.reserved_usd_micro, held.available_usd_micro), (700, 300), "{backend}");
        match ledger.reserve("team", "E2", 301).await {
            Err(LedgerError::Budget {
                available_usd_micro: 300, required_usd_micro: 301, ..
            }) => {}
            other => panic!("{backend}: expected a budget refusal, got {other:?}"),
        }
        let settled = ledger.settle("team", "E1", 700, 250).await.unwrap();
        assert_eq!(
            (settled.charged_usd_micro, settled.released_usd_micro),
            (250, 450),
            "{backend}"
        );
        let plan = ledger.plan("team").await.unwrap();
        assert_eq!(
            (plan.reserved_usd_micro, plan.spent_usd_micro, plan.available_usd_micro),
            (0, 250, 750),
            "{backend}"
        );
        // A run that cost more than it reserved is charged only what the plan can still cover.
        ledger.reserve("team", "E3", 100).await.unwrap();
        let over = ledger.settle("team", "E3", 100, 5_000).await.unwrap();
        assert_eq!(over.charged_usd_micro, 750, "{backend}");
        let plan = ledger.plan("team").await.unwrap();
        assert_eq!((plan.spent_usd_micro, plan.available_usd_micro), (1_000, 0), "{backend}");
        assert_eq!(ledger.plans().await.unwrap().len(), 1, "{backend}");
    }
}

#[tokio::test]
async fn executions_are_recorded_listed_and_found_by_memo_key() {
    for (backend, fresh) in both().await {
        let ledger = &fresh.ledger;
        ledger.start_execution(&start("E1", None, 0)).await.unwrap();
        assert_eq!(
            ledger.execution("E1").await.unwrap().status,
            ExecutionStatus::Running,
            "{backend}"
        );
        assert!(ledger.memo_hit("memo-E1").await.unwrap().is_none(), "{backend}");
        ledger.finish_execution("E1", &success("E1", 0)).await.unwrap();
        let record = ledger.execution("E1").await.unwrap();
        assert_eq!(record.status, ExecutionStatus::Success, "{backend}");
        assert_eq!(record.envelope.unwrap()["execution_id"], "E1", "{backend}");
        assert_eq!(ledger.memo_hit("memo-E1").await.unwrap().unwrap().id, "E1", "{backend}");
        // Finishing twice is refused: a record is closed once.
        assert!(ledger.finish_execution("E1", &success("E1", 0)).await.is_err(), "{backend}");
        ledger.start_execution(&start("E2", None, 0)).await.unwrap();
        let listed: Vec<String> =
            ledger.executions(10).await.unwrap().into_iter().map(|record| record.id).collect();
        assert_eq!(listed, ["E2", "E1"], "{backend}");
        assert!(
            matches!(ledger.execution("E9").await, Err(LedgerError::UnknownExecution(_))),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_dead_orchestrators_runs_are_failed_and_their_money_and_leases_released() {
    for (backend, fresh) in both().await {
        let ledger = &fresh.ledger;
        ledger.create_plan("p", 500).await.unwrap();
        ledger.reserve("p", "E1", 400).await.unwrap();
        ledger.start_execution(&start("E1", Some("p"), 400)).await.unwrap();
        ledger.acquire_lease("/artifacts/outputs/E1/", "E1", 60_000).await.unwrap();
        let mut alive = start("E2", None, 0);
        alive.owner = "host:2".into();
        ledger.start_execution(&alive).await.unwrap();
        let recovered = ledger.recover(|owner| owner == "host:1").await.unwrap();
        assert_eq!(recovered, ["E1"], "{backend}");
        let record = ledger.execution("E1").await.unwrap();
        assert_eq!(
            (record.status, record.error_code.as_deref()),
            (ExecutionStatus::Error, Some("ERR_RUNTIME")),
            "{backend}"
        );
        assert_eq!(
            ledger.execution("E2").await.unwrap().status,
            ExecutionStatus::Running,
            "{backend}"
        );
        assert_eq!(ledger.plan("p").await.unwrap().available_usd_micro, 500, "{backend}");
        ledger.acquire_lease("/artifacts/outputs/E1/", "E3", 60_000).await.unwrap();
    }
}

#[tokio::test]
async fn overlapping_leases_are_refused_naming_the_holder_until_they_expire() {
    for (backend, fresh) in both().await {
        let ledger = &fresh.ledger;
        ledger.acquire_lease("/artifacts/outputs/a/", "E1", 60_000).await.unwrap();
        for overlapping in
            ["/artifacts/outputs/a/", "/artifacts/outputs/a/b/", "/artifacts/outputs/"]
        {
            match ledger.acquire_lease(overlapping, "E2", 60_000).await {
                Err(LedgerError::Leased { holder, .. }) => assert_eq!(holder, "E1", "{backend}"),
                other => panic!("{backend}: {overlapping} should be refused, got {other:?}"),
            }
        }
        ledger.acquire_lease("/artifacts/outputs/ab/", "E2", 60_000).await.unwrap();
        ledger.release_leases("E1").await.unwrap();
        ledger.acquire_lease("/artifacts/outputs/a/b/", "E3", 1).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        // E3's lease expired: a crashed holder does not block the prefix forever.
        ledger.acquire_lease("/artifacts/outputs/a/", "E4", 60_000).await.unwrap();
    }
}

#[tokio::test]
async fn the_event_chain_verifies_and_names_the_first_tampered_entry() {
    for (backend, fresh) in both().await {
        let ledger = &fresh.ledger;
        for index in 0..5 {
            ledger
                .append_event(
                    Some("E1"),
                    theory_ledger::EventKind::AttemptFailed,
                    &json!({"index": index, "text": "é ✓"}),
                )
                .await
                .unwrap();
        }
        let report = ledger.verify().await.unwrap();
        assert_eq!((report.entries, report.first_bad_seq), (5, None), "{backend}");
        fresh.tamper("UPDATE events SET body = '{\"index\":99}' WHERE seq = 3").await;
        let report = ledger.verify().await.unwrap();
        assert_eq!(report.first_bad_seq, Some(3), "{backend}: {report:?}");
        fresh.tamper("DELETE FROM events WHERE seq = 2").await;
        assert_eq!(ledger.verify().await.unwrap().first_bad_seq, Some(3), "{backend}");
    }
}

#[tokio::test]
async fn opening_again_keeps_the_data_and_applies_nothing_twice() {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join(".theory/theory.db");
    let first = theory_ledger::Ledger::open(None, &file).await.unwrap();
    first.create_plan("kept", 1).await.unwrap();
    first.disconnect().await;
    let second = theory_ledger::Ledger::open(None, &file).await.unwrap();
    assert_eq!(second.plan("kept").await.unwrap().budget_usd_micro, 1);
    assert!(second.verify().await.unwrap().first_bad_seq.is_none());
}
