//! Writes `image.platforms.<platform>: "<pin>"` into a spec file's text, keeping every other line
//! (comments included) as it was. The edit is checked by parsing both versions: the new spec must
//! equal the old one with just that pin set, or nothing is written.

use theory_core::ImagePin;
use theory_core::registry::{Platform, ProcessorSpec};

/// Returns the edited text.
pub(crate) fn set_pin(text: &str, platform: Platform, pin: &ImagePin) -> Result<String, String> {
    let edited = edit(text, platform, &pin.to_string())?;
    let before: ProcessorSpec = serde_saphyr::from_str(text)
        .map_err(|error| format!("the spec does not parse: {error}"))?;
    let after: ProcessorSpec = serde_saphyr::from_str(&edited)
        .map_err(|error| format!("the edit would break the file ({error}); nothing was written"))?;
    let mut expected = before;
    expected.image.platforms.insert(platform, pin.clone());
    if after != expected {
        return Err("the edit would change more than the pin; nothing was written".into());
    }
    Ok(edited)
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// Splits `key: value  # comment` into the value and the comment (with its leading spaces).
fn split_comment(rest: &str) -> (&str, &str) {
    match rest.find(" #") {
        Some(at) => {
            let end = rest[..at].trim_end().len();
            (rest[..end].trim(), &rest[end..])
        }
        None => (rest.trim(), ""),
    }
}

fn edit(text: &str, platform: Platform, pin: &str) -> Result<String, String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let quoted = format!("\"{pin}\"");
    let Some(image_at) = lines.iter().position(|line| line.starts_with("image:")) else {
        lines.push(format!("image:\n  platforms:\n    {platform}: {quoted}"));
        return Ok(finish(&lines));
    };
    let (value, _) = split_comment(&lines[image_at]["image:".len()..]);
    if !value.is_empty() {
        return Err(
            "image: is written on one line (flow style); write it as an indented block so `theory processor pin` can edit it".into(),
        );
    }
    let block_end = (image_at + 1..lines.len())
        .find(|&at| !is_blank_or_comment(&lines[at]) && indent_of(&lines[at]) == 0)
        .unwrap_or(lines.len());
    let child_indent = (image_at + 1..block_end)
        .find(|&at| !is_blank_or_comment(&lines[at]))
        .map_or(2, |at| indent_of(&lines[at]));
    let pad = " ".repeat(child_indent);
    let platforms_at = (image_at + 1..block_end).find(|&at| {
        indent_of(&lines[at]) == child_indent && lines[at].trim_start().starts_with("platforms:")
    });
    let Some(platforms_at) = platforms_at else {
        lines.insert(image_at + 1, format!("{pad}platforms:\n{pad}{pad}{platform}: {quoted}"));
        return Ok(finish(&lines));
    };
    let rest = &lines[platforms_at][child_indent + "platforms:".len()..];
    let (value, comment) = split_comment(rest);
    if value.starts_with('{') {
        let mut map: std::collections::BTreeMap<String, String> = serde_saphyr::from_str(value)
            .map_err(|error| format!("image.platforms does not parse: {error}"))?;
        map.insert(platform.to_string(), pin.to_owned());
        let entries: Vec<String> =
            map.iter().map(|(key, value)| format!("{key}: \"{value}\"")).collect();
        lines[platforms_at] = format!("{pad}platforms: {{{}}}{comment}", entries.join(", "));
        return Ok(finish(&lines));
    }
    if !value.is_empty() {
        return Err(format!("image.platforms has an unexpected value {value:?}"));
    }
    let entries_end = (platforms_at + 1..block_end)
        .find(|&at| !is_blank_or_comment(&lines[at]) && indent_of(&lines[at]) <= child_indent)
        .unwrap_or(block_end);
    let entry_indent = (platforms_at + 1..entries_end)
        .find(|&at| !is_blank_or_comment(&lines[at]))
        .map_or(child_indent * 2, |at| indent_of(&lines[at]));
    let entry_pad = " ".repeat(entry_indent);
    let key = format!("{platform}:");
    if let Some(at) = (platforms_at + 1..entries_end).find(|&at| {
        indent_of(&lines[at]) == entry_indent && lines[at].trim_start().starts_with(&key)
    }) {
        let (_, comment) = split_comment(&lines[at][entry_indent + key.len()..]);
        let comment = comment.to_owned();
        lines[at] = format!("{entry_pad}{key} {quoted}{comment}");
    } else {
        let last_entry = (platforms_at + 1..entries_end)
            .rev()
            .find(|&at| !is_blank_or_comment(&lines[at]))
            .unwrap_or(platforms_at);
        lines.insert(last_entry + 1, format!("{entry_pad}{key} {quoted}"));
    }
    Ok(finish(&lines))
}

fn finish(lines: &[String]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "127.0.0.1:5000/llm/litellm@sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER: &str =
        "ghcr.io/o/r@sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn spec(image: &str) -> String {
        format!(
            "# the processor\nref: a/b@1\nname: B\n{image}runtime: {{cpu: 1, memory_gb: 1, timeout_s: 10}}  # limits\ninputs: {{type: object}}\noutputs: []\n"
        )
    }

    fn pin(text: &str) -> ImagePin {
        text.parse().unwrap()
    }

    #[test]
    fn adds_platforms_to_a_block_without_them_and_keeps_comments() {
        let text = spec("image:\n  # no pin yet\n  build: {context: processors/b, binary: b}\n");
        let edited = set_pin(&text, Platform::Amd64, &pin(PIN)).unwrap();
        assert_eq!(
            edited,
            spec(&format!(
                "image:\n  platforms:\n    amd64: \"{PIN}\"\n  # no pin yet\n  build: {{context: processors/b, binary: b}}\n"
            ))
        );
    }

    #[test]
    fn replaces_an_existing_block_entry_and_keeps_its_comment() {
        let text = spec(&format!(
            "image:\n  platforms:\n    amd64: \"{OTHER}\"  # old\n    arm64: \"{OTHER}\"\n  build: {{context: x}}\n"
        ));
        let edited = set_pin(&text, Platform::Amd64, &pin(PIN)).unwrap();
        assert!(edited.contains(&format!("    amd64: \"{PIN}\"  # old\n")), "{edited}");
        assert!(edited.contains(&format!("    arm64: \"{OTHER}\"\n")), "{edited}");
    }

    #[test]
    fn appends_a_platform_to_a_block() {
        let text = spec(&format!("image:\n  platforms:\n    amd64: \"{OTHER}\"\n"));
        let edited = set_pin(&text, Platform::Arm64, &pin(PIN)).unwrap();
        assert!(
            edited.contains(&format!("    amd64: \"{OTHER}\"\n    arm64: \"{PIN}\"\n")),
            "{edited}"
        );
    }

    #[test]
    fn rewrites_a_flow_map() {
        let text = spec(&format!("image:\n  platforms: {{arm64: \"{OTHER}\"}}  # pins\n"));
        let edited = set_pin(&text, Platform::Amd64, &pin(PIN)).unwrap();
        assert!(
            edited.contains(&format!(
                "  platforms: {{amd64: \"{PIN}\", arm64: \"{OTHER}\"}}  # pins\n"
            )),
            "{edited}"
        );
    }

    #[test]
    fn adds_an_image_block_when_there_is_none() {
        let text = spec("");
        let edited = set_pin(&text, Platform::Amd64, &pin(PIN)).unwrap();
        assert!(edited.ends_with(&format!("image:\n  platforms:\n    amd64: \"{PIN}\"\n")));
    }

    #[test]
    fn refuses_a_one_line_image() {
        let text = spec("image: {build: {context: x}}\n");
        let error = set_pin(&text, Platform::Amd64, &pin(PIN)).unwrap_err();
        assert!(error.contains("flow style"), "{error}");
    }

    #[test]
    fn the_builtin_spec_keeps_every_other_line() {
        let text = include_str!("../../../../../registry/processors/llm-litellm.yaml");
        let edited = set_pin(text, Platform::Amd64, &pin(PIN)).unwrap();
        let removed: Vec<&str> =
            text.lines().filter(|line| !edited.lines().any(|kept| kept == *line)).collect();
        assert!(removed.is_empty(), "lines lost: {removed:?}");
        assert_eq!(edited.lines().count(), text.lines().count() + 2);
    }
}
