//! Prompts in the inputs (seed 004): every `{"$prompt":"name@N","vars":{…}}` — at any depth,
//! lists included — is replaced by the registry prompt's template rendered with those variables,
//! before the inputs schema is checked (as `$attach` is). The receipt records each prompt used,
//! by id and by the hash of its template; the rendered text is part of the inputs, so
//! `inputs_hash` and the memo key cover it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use theory_protocol::ErrorCode;

use crate::Failure;
use crate::registry::Registry;

/// The key of a reference to a registry prompt in the inputs.
pub const PROMPT_KEY: &str = "$prompt";
/// The key of a prompt reference's variables.
const VARS_KEY: &str = "vars";

/// A prompt a run used, as its receipt records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PromptUse {
    /// `name@N`.
    pub id: String,
    /// `b3:` of the prompt's template and defaults ([`crate::registry::PromptEntry::hash`]).
    pub hash: String,
}

fn malformed(value: &Value) -> Failure {
    Failure::new(
        ErrorCode::InputSchema,
        format!(
            "a {PROMPT_KEY} reference must be {{\"{PROMPT_KEY}\":\"name@N\",\"vars\":{{…}}}}, found {value}"
        ),
    )
    .hint("write {\"$prompt\":\"summarize@1\",\"vars\":{\"text\":\"…\"}}; vars are strings, numbers or booleans")
}

/// Reads a variable's value: strings as they are, numbers and booleans as JSON writes them.
fn var_text(name: &str, value: &Value, id: &str) -> Result<String, Failure> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        other => Err(Failure::new(
            ErrorCode::InputSchema,
            format!(
                "{id}: the variable {name:?} must be a string, a number or a boolean, found {other}"
            ),
        )
        .hint("pass text for each prompt variable")),
    }
}

/// Renders one `$prompt` object; `Ok(None)` when `object` is not one.
fn render_one(
    object: &Map<String, Value>,
    registry: &Registry,
    used: &mut BTreeMap<String, String>,
) -> Result<Option<String>, Failure> {
    let Some(id) = object.get(PROMPT_KEY) else { return Ok(None) };
    let whole = || Value::Object(object.clone());
    let Value::String(id) = id else { return Err(malformed(&whole())) };
    if object.keys().any(|key| key != PROMPT_KEY && key != VARS_KEY) {
        return Err(malformed(&whole()));
    }
    let values = match object.get(VARS_KEY) {
        None => BTreeMap::new(),
        Some(Value::Object(vars)) => vars
            .iter()
            .map(|(name, value)| Ok((name.clone(), var_text(name, value, id)?)))
            .collect::<Result<_, Failure>>()?,
        Some(_) => return Err(malformed(&whole())),
    };
    if let Some(problem) = registry.broken(id) {
        return Err(Failure::new(
            ErrorCode::Registry,
            format!("the prompt {id} is defined in a file with a problem: {problem}"),
        )
        .hint("fix that file; `theory registry validate` lists every problem"));
    }
    let prompt = registry.prompt(id).ok_or_else(|| {
        let known: Vec<&str> = registry.prompts().map(|entry| entry.document.id.as_str()).collect();
        Failure::new(ErrorCode::Registry, format!("unknown prompt {id:?}")).hint(
            if known.is_empty() {
                "add it under registry/prompts/ (id: name@N, template: …, vars: …)".to_owned()
            } else {
                format!("known prompts: {}", known.join(", "))
            },
        )
    })?;
    let rendered = prompt.render(&values).map_err(|message| {
        let required: Vec<&str> = prompt.required().collect();
        Failure::new(ErrorCode::InputSchema, message).hint(format!(
            "see its variables with `theory registry show {id}`{}",
            if required.is_empty() {
                String::new()
            } else {
                format!(" (required: {})", required.join(", "))
            }
        ))
    })?;
    used.insert(id.clone(), prompt.hash.clone());
    Ok(Some(rendered))
}

/// Renders the `$prompt` references in `value` in place (nothing is copied where there are none).
fn expand_value(
    value: &mut Value,
    registry: &Registry,
    used: &mut BTreeMap<String, String>,
) -> Result<(), Failure> {
    match value {
        Value::Object(object) => match render_one(object, registry, used)? {
            Some(rendered) => *value = Value::String(rendered),
            None => {
                for item in object.values_mut() {
                    expand_value(item, registry, used)?;
                }
            }
        },
        Value::Array(items) => {
            for item in items {
                expand_value(item, registry, used)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Replaces every `$prompt` reference in `inputs` with its rendered text; returns the inputs and
/// the prompts used, sorted by id.
pub fn expand(mut inputs: Value, registry: &Registry) -> Result<(Value, Vec<PromptUse>), Failure> {
    let mut used = BTreeMap::new();
    expand_value(&mut inputs, registry, &mut used)?;
    let used = used.into_iter().map(|(id, hash)| PromptUse { id, hash }).collect();
    Ok((inputs, used))
}
