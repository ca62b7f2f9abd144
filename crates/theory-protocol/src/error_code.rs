//! The error-code catalogue: every `ERR_*` code that can appear in an error envelope.

use std::fmt;

macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])+ $variant:ident => $wire:literal, )+) => {
        /// One wire error code, serialized as its `ERR_*` string.
        ///
        /// Codes this version does not know (sent by a newer peer) are kept verbatim in
        /// [`ErrorCode::Other`], so an envelope always round-trips.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $( $(#[doc = $doc])+ $variant, )+
            /// A code outside this catalogue, kept as received.
            Other(String),
        }

        impl ErrorCode {
            /// Every code of the catalogue, in documentation order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )+ ];

            /// Returns the wire form, such as `ERR_TIMEOUT`.
            pub fn as_str(&self) -> &str {
                match self {
                    $( ErrorCode::$variant => $wire, )+
                    ErrorCode::Other(code) => code,
                }
            }

            /// Returns the sentence that says when this code happens.
            pub fn description(&self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => concat!($($doc),+).trim_ascii(), )+
                    ErrorCode::Other(_) => "a code outside this catalogue, sent by another peer",
                }
            }

            /// Parses a wire code; unknown codes become [`ErrorCode::Other`].
            pub fn parse(code: &str) -> ErrorCode {
                match code {
                    $( $wire => ErrorCode::$variant, )+
                    other => ErrorCode::Other(other.to_owned()),
                }
            }
        }
    };
}

error_codes! {
    /// The inputs do not match the processor's JSON Schema; the message names the failing JSON pointer.
    InputSchema => "ERR_INPUT_SCHEMA",
    /// An input file did not arrive whole, or its bytes do not match the CID or size it was declared with.
    InputIntegrity => "ERR_INPUT_INTEGRITY",
    /// An attachment (`--attach name=path`) names an unknown input, or its file is missing or unreadable.
    Attachment => "ERR_ATTACHMENT",
    /// An output's relative path is not clean (`..`, a leading `/`, an empty segment) or is reserved.
    OutputPath => "ERR_OUTPUT_PATH",
    /// An output's bytes do not match the CID or size the processor announced.
    OutputIntegrity => "ERR_OUTPUT_INTEGRITY",
    /// An output could not be uploaded to its presigned URL, after retries.
    Upload => "ERR_UPLOAD",
    /// The processor's handler failed or panicked.
    Runtime => "ERR_RUNTIME",
    /// The run was cancelled by a controller (`preempt` or `cancel`) or by shutdown.
    Cancelled => "ERR_CANCELLED",
    /// The run took longer than its timeout, and its instance was stopped.
    Timeout => "ERR_TIMEOUT",
    /// A `real` run needs a secret whose environment variable is not set; the message names it.
    MissingSecret => "ERR_MISSING_SECRET",
    /// The upstream provider (an LLM API, say) refused or failed the request.
    Provider => "ERR_PROVIDER",
    /// A peer broke `theory.run.v1`: malformed frame, unexpected frame, or no `RunResult`.
    Protocol => "ERR_PROTOCOL",
    /// The connection to the processor could not be made or was lost mid-run.
    Connection => "ERR_CONNECTION",
    /// The adapter could not start an instance of the processor, or it never became healthy.
    Adapter => "ERR_ADAPTER",
    /// A `real` run was asked for in CI without `THEORY_ALLOW_REAL_IN_CI=1`.
    CiSafety => "ERR_CI_SAFETY",
    /// The registry holds no such processor, or its spec is invalid.
    Registry => "ERR_REGISTRY",
    /// The image that runs is not the image the registry pins.
    RegistryMismatch => "ERR_REGISTRY_MISMATCH",
    /// The processor's image is neither pinned and present nor built locally.
    ImageNotFound => "ERR_IMAGE_NOT_FOUND",
    /// The Docker Engine is unreachable or refused an operation.
    Docker => "ERR_DOCKER",
    /// The Modal client or a Modal deployment failed.
    Modal => "ERR_MODAL",
    /// The artifact store failed to read or write an object.
    Store => "ERR_STORE",
    /// The ledger failed to read or write state.
    Ledger => "ERR_LEDGER",
    /// The plan's budget cannot cover the run's estimate.
    Budget => "ERR_BUDGET",
    /// An admission or success predicate did not hold; the message names it.
    Predicate => "ERR_PREDICATE",
    /// Another live execution holds a lease on an overlapping write prefix; the message names it.
    Lease => "ERR_LEASE",
    /// A setting (an environment variable or option) is missing or invalid; the message names it.
    Config => "ERR_CONFIG",
    /// An output, index or receipt path already holds an object: records are written once and
    /// never replaced; the message names the execution that owns the path.
    Collision => "ERR_COLLISION",
    /// A command-line flag or argument is invalid; the message names it (exit status 2).
    Usage => "ERR_USAGE",
    /// No run, artifact or plan has that id, or the caller may not see it.
    NotFound => "ERR_NOT_FOUND",
    /// A request to `theory serve` carried no API token, or one that is unknown or revoked.
    Unauthorized => "ERR_UNAUTHORIZED",
    /// The request's API token lacks the scope the request needs, or may not charge that plan.
    Forbidden => "ERR_FORBIDDEN",
    /// A request to `theory serve` was refused for now: too many runs at once, or a body over
    /// the limit; the message says which.
    Limit => "ERR_LIMIT",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = std::convert::Infallible;

    fn from_str(code: &str) -> Result<ErrorCode, std::convert::Infallible> {
        Ok(ErrorCode::parse(code))
    }
}

crate::serde_via_str!(ErrorCode);

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_code_round_trips_and_is_documented() {
        for code in ErrorCode::ALL {
            assert!(code.as_str().starts_with("ERR_"), "{code}");
            assert_eq!(&ErrorCode::parse(code.as_str()), code);
            assert!(!code.description().is_empty(), "{code}");
            assert!(!code.description().ends_with(' '), "{code}");
        }
    }

    #[test]
    fn unknown_codes_are_kept() {
        let code: ErrorCode = serde_json::from_str("\"ERR_FROM_THE_FUTURE\"").unwrap();
        assert_eq!(code, ErrorCode::Other("ERR_FROM_THE_FUTURE".into()));
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"ERR_FROM_THE_FUTURE\"");
    }
}
