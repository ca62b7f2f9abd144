//! What can go wrong in the ledger.

/// A failure of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database could not be opened or migrated.
    #[error("cannot open the ledger: {0}")]
    Open(String),
    /// The ledger file is there but is not a readable ledger: damaged, empty, or another kind of
    /// file. Never replaced by a new one: its history would be lost without a word.
    #[error("the ledger {file} cannot be used: {reason}")]
    Unreadable {
        /// The file.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A statement failed.
    #[error("ledger: {0}")]
    Database(#[from] sqlx::Error),
    /// No plan has this key.
    #[error("no plan with key {0:?}")]
    UnknownPlan(String),
    /// A plan with this key exists already.
    #[error("a plan with key {0:?} exists already")]
    PlanExists(String),
    /// The plan cannot cover the reservation.
    #[error(
        "plan {key:?} has {available_usd_micro} µUSD available, the run needs {required_usd_micro}"
    )]
    Budget {
        /// The plan.
        key: String,
        /// What is left: budget − spent − reserved.
        available_usd_micro: i64,
        /// What was asked for.
        required_usd_micro: i64,
    },
    /// Another live execution holds a lease on an overlapping prefix.
    #[error("{prefix} is leased by execution {holder} until {expires_at_ms} (epoch ms)")]
    Leased {
        /// The prefix held.
        prefix: String,
        /// The execution holding it.
        holder: String,
        /// When the lease ends unless renewed.
        expires_at_ms: i64,
    },
    /// No token has this name.
    #[error("no token named {0:?}")]
    UnknownToken(String),
    /// A token with this name exists already.
    #[error("a token named {0:?} exists already")]
    TokenExists(String),
    /// No execution has this id.
    #[error("no execution with id {0}")]
    UnknownExecution(String),
    /// More than one execution's id starts with this prefix.
    #[error("more than one execution's id starts with {0}")]
    AmbiguousExecution(String),
    /// The queue holds as many runs as it may (`NewRun::max_queued`).
    #[error("the queue holds {0} runs, its limit")]
    QueueFull(i64),
    /// Stored data is not what the ledger wrote.
    #[error("ledger data is damaged: {0}")]
    Corrupt(String),
}

impl LedgerError {
    /// Whether the database itself is damaged (SQLite reports a malformed or foreign file), as
    /// opposed to a refusal or a lost connection: only a backup helps then.
    pub fn is_damage(&self) -> bool {
        match self {
            LedgerError::Database(error) => {
                let message = error.to_string();
                message.contains("malformed") || message.contains("not a database")
            }
            LedgerError::Corrupt(_) | LedgerError::Unreadable { .. } => true,
            _ => false,
        }
    }
}
