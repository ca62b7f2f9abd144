//! Prompt templates (`registry/prompts/`): parsed once at load, every placeholder declared and
//! every declared variable used, rendered with the values a run gives.

use std::collections::{BTreeMap, BTreeSet};

use super::documents::PromptDocument;

/// One part of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Text as written (`{{` and `}}` already turned into single braces).
    Text(String),
    /// A `{name}` placeholder.
    Var(String),
}

/// A prompt, checked and parsed, with where it came from.
#[derive(Debug)]
pub struct PromptEntry {
    /// The document.
    pub document: PromptDocument,
    /// `b3:` of the canonical JSON (RFC 8785) of `{"template", "defaults"}` — everything that
    /// decides the text a run gets besides its variables: what a receipt records beside the id.
    pub hash: String,
    /// Its file.
    pub origin: String,
    /// Whether it is built into the binary.
    pub builtin: bool,
    pieces: Vec<Piece>,
}

/// Whether a variable name is an identifier: a letter or `_`, then letters, digits or `_`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits a template into text and `{name}` placeholders; the error says what is wrong where.
fn parse_template(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' if chars.peek().is_some_and(|(_, next)| *next == '{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek().is_some_and(|(_, next)| *next == '}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let rest = &template[at + 1..];
                let end = rest.find('}').ok_or_else(|| {
                    format!("the {{ at byte {at} is not closed (write {{{{ for a literal brace)")
                })?;
                let name = &rest[..end];
                if !is_identifier(name) {
                    return Err(format!(
                        "{{{name}}} at byte {at} is not a placeholder: a name is a letter or _, then letters, digits or _ (write {{{{ for a literal brace)"
                    ));
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Var(name.to_owned()));
                for _ in 0..=name.chars().count() {
                    chars.next();
                }
            }
            '}' => {
                return Err(format!(
                    "the }} at byte {at} closes nothing (write }}}} for a literal brace)"
                ));
            }
            other => text.push(other),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

impl PromptEntry {
    /// Checks a prompt document: its id is `name@N`, its template parses, every placeholder is
    /// declared in `vars` and every declared variable is used. The error is `(key, message)`.
    pub(crate) fn new(
        document: PromptDocument,
        origin: &str,
        builtin: bool,
    ) -> Result<PromptEntry, (String, String)> {
        let well_formed = document.id.split_once('@').is_some_and(|(name, version)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                && !version.is_empty()
                && version.chars().all(|c| c.is_ascii_digit())
        });
        if !well_formed {
            return Err((
                "id".into(),
                format!("{:?} is not name@N (such as summarize@1)", document.id),
            ));
        }
        let pieces =
            parse_template(&document.template).map_err(|message| ("template".into(), message))?;
        let used: BTreeSet<&str> = pieces
            .iter()
            .filter_map(|piece| match piece {
                Piece::Var(name) => Some(name.as_str()),
                Piece::Text(_) => None,
            })
            .collect();
        if let Some(undeclared) = used.iter().find(|name| !document.vars.contains_key(**name)) {
            return Err((
                "template".into(),
                format!("{{{undeclared}}} is not declared under vars"),
            ));
        }
        if let Some(unused) = document.vars.keys().find(|name| !used.contains(name.as_str())) {
            return Err((format!("vars.{unused}"), "the template never uses it".into()));
        }
        // The template and every default: what decides the text a run gets.
        let defaults: serde_json::Map<String, serde_json::Value> = document
            .vars
            .iter()
            .map(|(name, var)| {
                let default = var.as_ref().and_then(|var| var.default.clone());
                (name.clone(), default.map_or(serde_json::Value::Null, serde_json::Value::from))
            })
            .collect();
        let identity = serde_json::json!({"template": document.template, "defaults": defaults});
        let hash = crate::hashing::inputs_hash(&identity);
        Ok(PromptEntry { document, hash, origin: origin.to_owned(), builtin, pieces })
    }

    /// The variables without a default: a run must give each.
    pub fn required(&self) -> impl Iterator<Item = &str> {
        self.document
            .vars
            .iter()
            .filter(|(_, var)| var.as_ref().and_then(|var| var.default.as_ref()).is_none())
            .map(|(name, _)| name.as_str())
    }

    /// Renders the template with `values` (defaults fill the rest). The error names the first
    /// variable given that the prompt does not declare, or the first required one missing.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String, String> {
        if let Some(unknown) = values.keys().find(|name| !self.document.vars.contains_key(*name)) {
            let declared: Vec<&str> = self.document.vars.keys().map(String::as_str).collect();
            return Err(format!(
                "{} has no variable {unknown:?} (it has: {})",
                self.document.id,
                declared.join(", ")
            ));
        }
        let mut rendered = String::with_capacity(self.document.template.len());
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => rendered.push_str(text),
                Piece::Var(name) => {
                    let value = values
                        .get(name)
                        .or_else(|| self.document.vars.get(name)?.as_ref()?.default.as_ref());
                    let value = value.ok_or_else(|| {
                        format!(
                            "{} needs the variable {name:?}, which has no default",
                            self.document.id
                        )
                    })?;
                    rendered.push_str(value);
                }
            }
        }
        Ok(rendered)
    }
}

#[cfg(test)]
mod tests {
    use super::{Piece, parse_template};

    #[test]
    fn templates_parse_with_escaped_braces() {
        assert_eq!(
            parse_template("a {x} {{y}} }}").unwrap(),
            vec![Piece::Text("a ".into()), Piece::Var("x".into()), Piece::Text(" {y} }".into())]
        );
        assert!(parse_template("{").unwrap_err().contains("not closed"));
        assert!(parse_template("}").unwrap_err().contains("closes nothing"));
        assert!(parse_template("{a b}").unwrap_err().contains("not a placeholder"));
        assert!(parse_template("{}").unwrap_err().contains("not a placeholder"));
        assert!(parse_template("é{ü_1}").unwrap_err().contains("not a placeholder"));
    }
}
