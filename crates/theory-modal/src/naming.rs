//! Modal environments and app names. `dev` apps are per developer and branch,
//! `{branch}-{user}-{ref_slug}` (from `GIT_BRANCH` and `GIT_USER`, both required there);
//! `staging` and `main` apps are `{ref_slug}`. Names are sanitized to what Modal accepts in an
//! app name and a URL label: lowercase letters, digits and single dashes, at most 48 characters
//! (a longer name keeps its start and ends with a hash of the whole).

use std::fmt;
use std::str::FromStr;

use theory_core::ProcessorRef;
use theory_protocol::ErrorCode;

use theory_core::Failure;
use theory_core::env::names;

/// The longest app name: Modal's URL label `{workspace}--{app}-serve` must fit in 63 characters.
const MAX_NAME: usize = 48;

/// A Modal environment Theory deploys to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModalEnv {
    /// Per developer and branch.
    Dev,
    /// Before production.
    Staging,
    /// Production.
    Main,
}

impl ModalEnv {
    /// `dev`, `staging` or `main`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModalEnv::Dev => "dev",
            ModalEnv::Staging => "staging",
            ModalEnv::Main => "main",
        }
    }
}

impl fmt::Display for ModalEnv {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for ModalEnv {
    type Err = String;

    fn from_str(text: &str) -> Result<ModalEnv, String> {
        match text {
            "dev" => Ok(ModalEnv::Dev),
            "staging" => Ok(ModalEnv::Staging),
            "main" => Ok(ModalEnv::Main),
            other => {
                Err(format!("unknown Modal environment {other:?}: expected dev, staging or main"))
            }
        }
    }
}

/// Lowercases, turns every run of other characters into one dash and trims dashes.
pub fn sanitize(text: &str) -> String {
    let mut name = String::with_capacity(text.len());
    for character in text.chars() {
        if character.is_ascii_alphanumeric() {
            name.push(character.to_ascii_lowercase());
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    name.trim_matches('-').to_owned()
}

/// Caps a sanitized name at [`MAX_NAME`], keeping it unique with a hash of the whole.
fn capped(name: String) -> String {
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = blake3::hash(name.as_bytes()).to_hex();
    let keep = name[..MAX_NAME - 9].trim_end_matches('-');
    format!("{keep}-{}", &hash[..8])
}

/// The app name of `reference` in `env`; `git_branch` and `git_user` are required for `dev`.
pub fn app_name(
    env: ModalEnv,
    reference: &ProcessorRef,
    git_branch: Option<&str>,
    git_user: Option<&str>,
) -> Result<String, Failure> {
    let slug = sanitize(&reference.slug());
    let name = match env {
        ModalEnv::Staging | ModalEnv::Main => slug,
        ModalEnv::Dev => {
            let required = |value: Option<&str>, variable: &str| {
                value.map(sanitize).filter(|value| !value.is_empty()).ok_or_else(|| {
                    Failure::with_hint(
                        ErrorCode::Modal,
                        format!("{variable} is required for --env dev (apps there are {{branch}}-{{user}}-{{ref_slug}})"),
                        format!("set it, e.g. {variable}=$(git rev-parse --abbrev-ref HEAD) for the branch, or deploy with --env staging"),
                    )
                })
            };
            let branch = required(git_branch, names::GIT_BRANCH)?;
            let user = required(git_user, names::GIT_USER)?;
            format!("{branch}-{user}-{slug}")
        }
    };
    Ok(capped(name))
}

#[cfg(test)]
mod tests {
    use super::{ModalEnv, app_name, sanitize};

    #[test]
    fn names_follow_the_seed_rules_and_are_sanitized() {
        let reference = "llm/litellm@1".parse().unwrap();
        assert_eq!(app_name(ModalEnv::Main, &reference, None, None).unwrap(), "llm-litellm");
        assert_eq!(
            app_name(ModalEnv::Staging, &reference, Some("x"), None).unwrap(),
            "llm-litellm"
        );
        assert_eq!(
            app_name(ModalEnv::Dev, &reference, Some("feat/Test_1"), Some("Veyorokon")).unwrap(),
            "feat-test-1-veyorokon-llm-litellm"
        );
        let missing = app_name(ModalEnv::Dev, &reference, Some("main"), None).unwrap_err();
        assert!(missing.message.contains("GIT_USER"), "{missing:?}");
        assert!(app_name(ModalEnv::Dev, &reference, Some("///"), Some("u")).is_err());
        assert_eq!(sanitize("--A  b__c--"), "a-b-c");
    }

    #[test]
    fn long_names_are_capped_and_stay_distinct() {
        let reference = "llm/litellm@1".parse().unwrap();
        let long = "feature/".to_owned() + &"very-long-branch-name-".repeat(4);
        let first = app_name(ModalEnv::Dev, &reference, Some(&long), Some("u")).unwrap();
        let second = app_name(ModalEnv::Dev, &reference, Some(&(long + "2")), Some("u")).unwrap();
        assert!(first.len() <= 48 && second.len() <= 48, "{first} {second}");
        assert_ne!(first, second);
        assert!(first.starts_with("feature-very-long-branch-name"), "{first}");
    }

    #[test]
    fn environments_parse_and_refuse_others() {
        assert_eq!("staging".parse::<ModalEnv>().unwrap(), ModalEnv::Staging);
        assert!("prod".parse::<ModalEnv>().unwrap_err().contains("dev, staging or main"));
    }
}
