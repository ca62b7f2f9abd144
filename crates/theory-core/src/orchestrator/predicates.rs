//! Predicates from the spec: `admission` ones are checked before anything starts, `success` ones
//! after the outputs are stored and before the index is written. A failure is `ERR_PREDICATE`
//! naming the predicate, and the run leaves no index.
//!
//! - `artifact.exists@1 {path}`: an object is in the store at `path`.
//! - `json.schema_ok@1 {schema, path}`: the object at `path` is JSON valid against the registry
//!   schema `schema`.
//! - `budget.available@1 {required_usd_micro}`: the plan can cover the estimate; the ledger's
//!   reservation at admission is the check (see `run.rs`), so it always holds here.
//!
//! In `path`, `${outputs.<rel>}` is the world path of the output `rel` and `${write_prefix}` the
//! run's prefix.

use futures_util::StreamExt;
use serde_json::Value;
use theory_protocol::ErrorCode;

use crate::registry::{PredicateUse, Registry};
use crate::{ArtifactStore, Failure, WorldPath, WritePrefix};

/// The largest object `json.schema_ok@1` reads.
const MAX_JSON_BYTES: usize = 16 * 1024 * 1024;

/// Which list a predicate came from, for messages.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stage {
    /// Before the run.
    Admission,
    /// After the run.
    Success,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Admission => "admission",
            Stage::Success => "success",
        }
    }
}

fn failed(stage: Stage, predicate: &PredicateUse, why: impl std::fmt::Display) -> Failure {
    Failure::new(
        ErrorCode::Predicate,
        format!("{} predicate {} failed: {why}", stage.as_str(), predicate.id),
    )
    .hint("see the spec's predicates with `theory registry show <ref>`")
}

/// Expands `${outputs.<rel>}` and `${write_prefix}` in a predicate's path.
fn expand(text: &str, prefix: &WritePrefix) -> String {
    let mut expanded = text.replace("${write_prefix}", prefix.as_str());
    while let Some(start) = expanded.find("${outputs.") {
        let Some(length) = expanded[start..].find('}') else { break };
        let relative = expanded[start + "${outputs.".len()..start + length].to_owned();
        expanded.replace_range(start..=start + length, &format!("{}{relative}", prefix.as_str()));
    }
    expanded
}

fn path_arg(
    stage: Stage,
    predicate: &PredicateUse,
    prefix: &WritePrefix,
) -> Result<WorldPath, Failure> {
    let text = predicate
        .args
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| failed(stage, predicate, "args.path is missing"))?;
    expand(text, prefix).parse().map_err(|error| failed(stage, predicate, error))
}

/// Checks every predicate of `list`, in order; the first that fails ends the check.
pub(super) async fn check(
    stage: Stage,
    list: &[PredicateUse],
    registry: &Registry,
    store: &dyn ArtifactStore,
    prefix: &WritePrefix,
) -> Result<(), Failure> {
    for predicate in list {
        match predicate.id.as_str() {
            "artifact.exists@1" => {
                let path = path_arg(stage, predicate, prefix)?;
                if store.hash(&path).await?.is_none() {
                    return Err(failed(stage, predicate, format!("{path} is not in the store")));
                }
            }
            "json.schema_ok@1" => {
                let path = path_arg(stage, predicate, prefix)?;
                let id = predicate.args.get("schema").and_then(Value::as_str).unwrap_or_default();
                let schema = registry.schema(id).ok_or_else(|| {
                    failed(stage, predicate, format!("no schema {id:?} in the registry"))
                })?;
                let document = read_json(store, &path)
                    .await
                    .map_err(|why| failed(stage, predicate, format!("{path}: {why}")))?;
                if let Some(error) = schema.validator.iter_errors(&document).next() {
                    return Err(failed(
                        stage,
                        predicate,
                        format!(
                            "{path} does not match {id} at {:?}: {error}",
                            error.instance_path().to_string()
                        ),
                    ));
                }
            }
            // The reservation at admission is this check.
            "budget.available@1" => {}
            other => return Err(failed(stage, predicate, format!("unknown predicate {other}"))),
        }
    }
    Ok(())
}

async fn read_json(store: &dyn ArtifactStore, path: &WorldPath) -> Result<Value, String> {
    let mut stream = store
        .open(path)
        .await
        .map_err(|error| error.to_string())?
        .ok_or_else(|| "it is not in the store".to_owned())?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.map_err(|error| error.to_string())?);
        if bytes.len() > MAX_JSON_BYTES {
            return Err(format!("it is larger than {MAX_JSON_BYTES} bytes"));
        }
    }
    serde_json::from_slice(&bytes).map_err(|error| format!("it is not JSON: {error}"))
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn paths_expand_outputs_and_the_write_prefix() {
        let prefix = "/artifacts/outputs/x/E1/".parse().unwrap();
        assert_eq!(
            expand("${outputs.text/response.txt}", &prefix),
            "/artifacts/outputs/x/E1/text/response.txt"
        );
        assert_eq!(
            expand("${write_prefix}meta.json", &prefix),
            "/artifacts/outputs/x/E1/meta.json"
        );
        assert_eq!(expand("/artifacts/fixed.json", &prefix), "/artifacts/fixed.json");
    }
}
