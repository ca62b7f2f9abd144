//! The `theory` binary, end to end: snapshots of what users see, and the behaviours behind them.

mod behaviour;
mod canary;
mod snapshots;
mod support;
