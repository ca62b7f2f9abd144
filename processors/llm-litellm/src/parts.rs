//! A message's content as provider-neutral parts, with attachments read: an attached image
//! (`{"$artifact":…}` whose file arrived with the run) becomes image content, an attached text
//! file its text; each dialect then writes the parts in its own form.

use base64::Engine;
use serde_json::Value;
use theory_processor::{Context, ProcessorError};

use crate::params::Message;

/// The image types both dialects accept.
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];
/// The largest image sent inline (Anthropic's limit per image; OpenAI allows 20 MB).
pub(crate) const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;
/// The largest attached text file sent inline.
const MAX_TEXT_BYTES: u64 = 1024 * 1024;

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    /// Text.
    Text(String),
    /// An image, inline: its media type and its bytes in base64.
    Image { mime: String, base64: String },
    /// A part written in the provider's own form (an object with `type`), passed on as it is.
    Native(Value),
}

/// A message's content: a plain string stays one (the simplest form every provider takes).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Content {
    /// A string.
    Plain(String),
    /// A list of parts.
    Parts(Vec<Part>),
}

impl Content {
    /// The content as a dialect writes it: a string stays one; parts become a list of
    /// `{"type":"text"}` parts, native parts as they are, and images in the form `image` makes
    /// from their media type and base64 bytes.
    pub(crate) fn to_json(&self, image: impl Fn(&str, &str) -> Value) -> Value {
        match self {
            Content::Plain(text) => Value::from(text.as_str()),
            Content::Parts(parts) => Value::Array(
                parts
                    .iter()
                    .map(|part| match part {
                        Part::Text(text) => serde_json::json!({"type": "text", "text": text}),
                        Part::Image { mime, base64 } => image(mime, base64),
                        Part::Native(native) => native.clone(),
                    })
                    .collect(),
            ),
        }
    }
}

/// A message with its content resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    /// Its role.
    pub(crate) role: String,
    /// Its content.
    pub(crate) content: Content,
}

impl Resolved {
    /// The message's text alone (images left out), for system prompts.
    pub(crate) fn text(&self) -> String {
        match &self.content {
            Content::Plain(text) => text.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    Part::Text(text) => Some(text.clone()),
                    Part::Native(native) => {
                        native.get("text").and_then(Value::as_str).map(str::to_owned)
                    }
                    Part::Image { .. } => None,
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Resolves every message of a run.
pub(crate) async fn resolve_all(
    messages: &[Message],
    context: &Context,
) -> Result<Vec<Resolved>, ProcessorError> {
    let mut resolved = Vec::with_capacity(messages.len());
    for message in messages {
        let body = match &message.content {
            Value::String(text) => Content::Plain(text.clone()),
            Value::Array(parts) => {
                let mut list = Vec::with_capacity(parts.len());
                for part in parts {
                    list.push(resolve_part(part, context).await?);
                }
                Content::Parts(list)
            }
            Value::Object(_) => {
                Content::Parts(vec![resolve_part(&message.content, context).await?])
            }
            Value::Null => Content::Plain(String::new()),
            other => Content::Plain(other.to_string()),
        };
        resolved.push(Resolved { role: message.role.clone(), content: body });
    }
    Ok(resolved)
}

async fn resolve_part(part: &Value, context: &Context) -> Result<Part, ProcessorError> {
    let Value::Object(object) = part else {
        return Ok(Part::Text(match part {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }));
    };
    if let Some(path) = object.get("$artifact").and_then(Value::as_str) {
        return attachment(path, context).await;
    }
    if object.contains_key("type") {
        return Ok(Part::Native(part.clone()));
    }
    match object.get("text").and_then(Value::as_str) {
        Some(text) => Ok(Part::Text(text.to_owned())),
        None => Err(ProcessorError::invalid_inputs(format!(
            "a content part must be text, {{\"type\":…}} or an attachment, found {part}"
        ))),
    }
}

/// Reads an attached file into a part: an image inline, a text file as its text.
async fn attachment(path: &str, context: &Context) -> Result<Part, ProcessorError> {
    let file = context.input_file(path).ok_or_else(|| {
        ProcessorError::invalid_inputs(format!(
            "the attachment {path} did not arrive with the run (attach it with --attach)"
        ))
    })?;
    let mime = file.mime.as_str();
    let read_capped = |limit: u64, what: &str| {
        if file.size_bytes > limit {
            return Err(ProcessorError::invalid_inputs(format!(
                "the {what} {path} has {} bytes; at most {limit} are sent to a provider",
                file.size_bytes
            )));
        }
        Ok(file.path.clone())
    };
    if mime.starts_with("image/") {
        if !IMAGE_TYPES.contains(&mime) {
            return Err(ProcessorError::invalid_inputs(format!(
                "the image {path} is {mime}; providers take {}",
                IMAGE_TYPES.join(", ")
            )));
        }
        let local = read_capped(MAX_IMAGE_BYTES, "image")?;
        let bytes = tokio::fs::read(&local).await?;
        let base64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        return Ok(Part::Image { mime: mime.to_owned(), base64 });
    }
    if mime.starts_with("text/") || mime == "application/json" {
        let local = read_capped(MAX_TEXT_BYTES, "text file")?;
        let bytes = tokio::fs::read(&local).await?;
        let text = String::from_utf8(bytes).map_err(|_| {
            ProcessorError::invalid_inputs(format!("the text file {path} is not UTF-8"))
        })?;
        return Ok(Part::Text(text));
    }
    Err(ProcessorError::invalid_inputs(format!(
        "the attachment {path} is {mime}: only images ({}) and text files are sent to a provider",
        IMAGE_TYPES.join(", ")
    )))
}
