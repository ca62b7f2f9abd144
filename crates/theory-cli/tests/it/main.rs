//! The `theory` binary, end to end: snapshots of what users see, and the behaviours behind them.

mod attachments;
mod attestation_tampers;
mod attestations;
mod behaviour;
mod canary;
mod ci;
mod docker;
mod files_per_output;
mod hostile_inputs;
mod integrity;
mod interrupts;
mod keys;
mod ledger;
mod memory;
mod modal;
mod modal_run;
mod modal_support;
mod prompts;
mod python;
mod scaffold;
mod serve;
mod snapshots;
mod storage;
mod support;
mod trust;
mod verification;
