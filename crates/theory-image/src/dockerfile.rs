//! The Dockerfile subset a `FROM scratch` processor image needs, parsed into a [`Recipe`].
//!
//! Supported: `FROM scratch`, `COPY src dst`, `ENV`, `EXPOSE`, `ENTRYPOINT`/`CMD` (exec form),
//! `WORKDIR`, `USER`, `LABEL`, comments and `\` continuations. Everything else (`RUN`, `ADD`,
//! another base image…) is refused with the line it is on: those need a base image, and Theory
//! builds without pulling anything.

use std::collections::BTreeMap;

/// What the image is made of, in Dockerfile order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipe {
    /// `COPY` sources (relative to the context) and destinations (absolute in the image).
    pub copies: Vec<Copy>,
    /// `ENV`, in order.
    pub env: Vec<(String, String)>,
    /// `EXPOSE`, as `8000/tcp`.
    pub exposed: Vec<String>,
    /// `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `WORKDIR`.
    pub workdir: Option<String>,
    /// `USER`.
    pub user: Option<String>,
    /// `LABEL`.
    pub labels: BTreeMap<String, String>,
}

/// One `COPY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// The source, relative to the build context.
    pub source: String,
    /// The destination in the image; a trailing `/` means "into this folder".
    pub destination: String,
}

/// A line of the Dockerfile that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile line {line}: {message}")]
pub struct DockerfileError {
    /// The 1-based line number where the instruction starts.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Recipe {
    /// Parses a Dockerfile.
    pub fn parse(text: &str) -> Result<Recipe, DockerfileError> {
        let mut recipe = Recipe::default();
        let mut saw_from = false;
        for (line, instruction) in logical_lines(text) {
            let fail = |message: String| DockerfileError { line, message };
            let (keyword, rest) =
                instruction.split_once(char::is_whitespace).unwrap_or((&instruction, ""));
            let rest = rest.trim();
            let keyword = keyword.to_ascii_uppercase();
            if !saw_from && keyword != "FROM" {
                return Err(fail(format!("{keyword} before FROM")));
            }
            match keyword.as_str() {
                "FROM" => {
                    if saw_from {
                        return Err(fail("multi-stage builds are not supported".into()));
                    }
                    if !rest.eq_ignore_ascii_case("scratch") {
                        return Err(fail(format!(
                            "FROM {rest}: only FROM scratch is supported, since Theory builds images without pulling anything"
                        )));
                    }
                    saw_from = true;
                }
                "COPY" => recipe.copies.push(parse_copy(rest).map_err(fail)?),
                "ENV" => recipe.env.extend(parse_pairs(rest, true).map_err(fail)?),
                "LABEL" => recipe.labels.extend(parse_pairs(rest, false).map_err(fail)?),
                "EXPOSE" => {
                    for port in rest.split_whitespace() {
                        let (number, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
                        if number.parse::<u16>().is_err() || !matches!(protocol, "tcp" | "udp") {
                            return Err(fail(format!(
                                "EXPOSE {port}: expected a port such as 8000 or 8000/tcp"
                            )));
                        }
                        recipe.exposed.push(format!("{number}/{protocol}"));
                    }
                }
                "ENTRYPOINT" => recipe.entrypoint = Some(parse_exec(&keyword, rest).map_err(fail)?),
                "CMD" => recipe.cmd = Some(parse_exec(&keyword, rest).map_err(fail)?),
                "WORKDIR" if rest.starts_with('/') => recipe.workdir = Some(rest.to_owned()),
                "WORKDIR" => return Err(fail("WORKDIR must be an absolute path".into())),
                "USER" if !rest.is_empty() => recipe.user = Some(rest.to_owned()),
                other => {
                    return Err(fail(format!(
                        "{other} is not supported in a FROM scratch image built by Theory (supported: FROM scratch, COPY, ENV, EXPOSE, ENTRYPOINT, CMD, WORKDIR, USER, LABEL)"
                    )));
                }
            }
        }
        if !saw_from {
            return Err(DockerfileError { line: 1, message: "no FROM instruction".into() });
        }
        if recipe.entrypoint.is_none() && recipe.cmd.is_none() {
            return Err(DockerfileError {
                line: 1,
                message: "no ENTRYPOINT or CMD: the image would not start anything".into(),
            });
        }
        Ok(recipe)
    }
}

/// Joins `\` continuations and drops comments and blank lines; yields (first line, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if pending.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if pending.is_some() && trimmed.starts_with('#') {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        if let Some(body) = trimmed.strip_suffix('\\') {
            joined.push_str(body);
            joined.push(' ');
            pending = Some((start, joined));
        } else {
            joined.push_str(trimmed);
            lines.push((start, joined));
        }
    }
    lines.extend(pending);
    lines
}

fn parse_copy(rest: &str) -> Result<Copy, String> {
    if rest.starts_with("--") {
        return Err(format!("COPY {rest}: COPY flags are not supported"));
    }
    let parts: Vec<String> = if rest.starts_with('[') {
        serde_json::from_str(rest).map_err(|error| format!("COPY {rest}: {error}"))?
    } else {
        rest.split_whitespace().map(str::to_owned).collect()
    };
    let [source, destination] = parts.as_slice() else {
        return Err(format!("COPY {rest}: expected exactly one source and one destination"));
    };
    if !destination.starts_with('/') {
        return Err(format!("COPY {rest}: the destination must be an absolute path"));
    }
    if source.starts_with('/') || source.split('/').any(|segment| segment == "..") {
        return Err(format!("COPY {rest}: the source must stay inside the build context"));
    }
    Ok(Copy { source: source.clone(), destination: destination.clone() })
}

fn parse_exec(keyword: &str, rest: &str) -> Result<Vec<String>, String> {
    if !rest.starts_with('[') {
        return Err(format!(
            "{keyword} {rest}: use the exec form ({keyword} [\"/binary\"]): a scratch image has no shell"
        ));
    }
    let parts: Vec<String> =
        serde_json::from_str(rest).map_err(|error| format!("{keyword} {rest}: {error}"))?;
    if parts.is_empty() {
        return Err(format!("{keyword} is empty"));
    }
    Ok(parts)
}

/// `K=V K2="V 2"`, or for ENV the older `K V` form.
fn parse_pairs(rest: &str, allow_space_form: bool) -> Result<Vec<(String, String)>, String> {
    let words = split_words(rest)?;
    if allow_space_form
        && let Some(first) = words.first()
        && !first.contains('=')
    {
        let value = rest[first.len()..].trim();
        return Ok(vec![(first.clone(), unquote(value))]);
    }
    words
        .iter()
        .map(|word| {
            let (key, value) =
                word.split_once('=').ok_or_else(|| format!("{word}: expected KEY=VALUE"))?;
            if key.is_empty() {
                return Err(format!("{word}: the key is empty"));
            }
            Ok((key.to_owned(), unquote(value)))
        })
        .collect()
}

/// Splits on whitespace outside double quotes, keeping the quotes for [`unquote`].
fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for character in text.chars() {
        match character {
            '"' => {
                quoted = !quoted;
                current.push(character);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(format!("{text}: unbalanced quote"));
    }
    if !current.is_empty() {
        words.push(current);
    }
    Ok(words)
}

fn unquote(value: &str) -> String {
    value.replace('"', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LITELLM: &str = "# comment\nFROM scratch\nCOPY llm-litellm /llm-litellm\nENV PORT=8000\nEXPOSE 8000\nENTRYPOINT [\"/llm-litellm\"]\n";

    #[test]
    fn parses_the_builtin_shape() {
        let recipe = Recipe::parse(LITELLM).unwrap();
        assert_eq!(
            recipe.copies,
            vec![Copy { source: "llm-litellm".into(), destination: "/llm-litellm".into() }]
        );
        assert_eq!(recipe.env, vec![("PORT".into(), "8000".into())]);
        assert_eq!(recipe.exposed, vec!["8000/tcp".to_owned()]);
        assert_eq!(recipe.entrypoint, Some(vec!["/llm-litellm".to_owned()]));
    }

    #[test]
    fn continuations_labels_and_env_forms() {
        let text = "FROM scratch\nLABEL a=1 \\\n  b=\"two words\"\nENV GREETING hello world\nCMD [\"/x\"]\n";
        let recipe = Recipe::parse(text).unwrap();
        assert_eq!(recipe.labels.get("b").map(String::as_str), Some("two words"));
        assert_eq!(recipe.labels.get("a").map(String::as_str), Some("1"));
        assert_eq!(recipe.env, vec![("GREETING".into(), "hello world".into())]);
    }

    #[test]
    fn refusals_name_the_line() {
        let cases = [
            ("FROM debian:12\nCMD [\"/x\"]", 1, "only FROM scratch"),
            ("FROM scratch\nRUN echo hi\nCMD [\"/x\"]", 2, "RUN is not supported"),
            ("FROM scratch\nCMD /x", 2, "exec form"),
            ("FROM scratch\nCOPY ../secret /x\nCMD [\"/x\"]", 2, "inside the build context"),
            ("FROM scratch\nCOPY a b\nCMD [\"/x\"]", 2, "absolute path"),
            ("FROM scratch\nEXPOSE http\nCMD [\"/x\"]", 2, "expected a port"),
            ("FROM scratch\nENV PORT=1", 1, "no ENTRYPOINT or CMD"),
            ("COPY a /a", 1, "before FROM"),
        ];
        for (text, line, needle) in cases {
            let error = Recipe::parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text}");
            assert!(error.message.contains(needle), "{text}: {}", error.message);
        }
    }
}
