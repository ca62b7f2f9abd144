//! Providers: how a `provider/model` string maps to an API, a key and a base URL.

use theory_processor::ProcessorError;

/// The wire dialect a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST {base}/chat/completions` with `stream: true` (OpenAI and compatible servers).
    OpenAiChat,
    /// `POST {base}/v1/messages` with `stream: true` (Anthropic).
    AnthropicMessages,
}

/// A known provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    /// The prefix in model strings, such as `openai`.
    pub name: &'static str,
    /// Its dialect.
    pub api: Api,
    /// The environment variable holding its API key.
    pub key_env: &'static str,
    /// Environment variables that override its base URL, most specific first.
    pub base_envs: &'static [&'static str],
    /// Its public base URL.
    pub default_base: &'static str,
}

/// Overrides the base URL of whichever provider a run uses (the LiteLLM convention).
pub const LITELLM_API_BASE: &str = "LITELLM_API_BASE";

/// Every provider this processor knows.
pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "openai",
        api: Api::OpenAiChat,
        key_env: "OPENAI_API_KEY",
        base_envs: &["OPENAI_API_BASE", "OPENAI_BASE_URL"],
        default_base: "https://api.openai.com/v1",
    },
    Provider {
        name: "anthropic",
        api: Api::AnthropicMessages,
        key_env: "ANTHROPIC_API_KEY",
        base_envs: &["ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"],
        default_base: "https://api.anthropic.com",
    },
    Provider {
        name: "groq",
        api: Api::OpenAiChat,
        key_env: "GROQ_API_KEY",
        base_envs: &["GROQ_API_BASE"],
        default_base: "https://api.groq.com/openai/v1",
    },
    Provider {
        name: "mistral",
        api: Api::OpenAiChat,
        key_env: "MISTRAL_API_KEY",
        base_envs: &["MISTRAL_API_BASE"],
        default_base: "https://api.mistral.ai/v1",
    },
    Provider {
        name: "deepseek",
        api: Api::OpenAiChat,
        key_env: "DEEPSEEK_API_KEY",
        base_envs: &["DEEPSEEK_API_BASE"],
        default_base: "https://api.deepseek.com/v1",
    },
    Provider {
        name: "openrouter",
        api: Api::OpenAiChat,
        key_env: "OPENROUTER_API_KEY",
        base_envs: &["OPENROUTER_API_BASE"],
        default_base: "https://openrouter.ai/api/v1",
    },
    Provider {
        name: "together_ai",
        api: Api::OpenAiChat,
        key_env: "TOGETHERAI_API_KEY",
        base_envs: &["TOGETHERAI_API_BASE"],
        default_base: "https://api.together.xyz/v1",
    },
];

/// Splits `provider/model` into the provider and the provider's own model name; a model
/// without a prefix is OpenAI's, as in LiteLLM.
pub(crate) fn resolve(model: &str) -> Result<(&'static Provider, &str), ProcessorError> {
    let (prefix, name) = model.split_once('/').unwrap_or(("openai", model));
    if name.is_empty() {
        return Err(ProcessorError::invalid_inputs(format!(
            "model {model:?} has no name after the provider"
        )));
    }
    PROVIDERS
        .iter()
        .find(|provider| provider.name == prefix)
        .map(|provider| (provider, name))
        .ok_or_else(|| {
            let known: Vec<&str> = PROVIDERS.iter().map(|provider| provider.name).collect();
            ProcessorError::invalid_inputs(format!(
                "unknown provider {prefix:?} in model {model:?}; known: {}",
                known.join(", ")
            ))
        })
}

impl Provider {
    /// Returns the base URL: the provider's own override, then `LITELLM_API_BASE`, then the default.
    pub fn base_url(&self, lookup: impl Fn(&str) -> Option<String>) -> String {
        let chosen = self
            .base_envs
            .iter()
            .chain(&[LITELLM_API_BASE])
            .find_map(|name| lookup(name).filter(|value| !value.trim().is_empty()))
            .unwrap_or_else(|| self.default_base.to_owned());
        chosen.trim().trim_end_matches('/').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::{Api, resolve};

    #[test]
    fn resolves_prefixes() {
        let (provider, name) = resolve("openai/gpt-4o-mini").unwrap();
        assert_eq!((provider.name, name), ("openai", "gpt-4o-mini"));
        let (provider, name) = resolve("anthropic/claude-3-5-haiku-latest").unwrap();
        assert_eq!((provider.api, name), (Api::AnthropicMessages, "claude-3-5-haiku-latest"));
        assert_eq!(resolve("gpt-4o").unwrap().0.name, "openai");
        assert_eq!(resolve("openrouter/meta-llama/llama-3-8b").unwrap().1, "meta-llama/llama-3-8b");
        assert!(resolve("nope/model").unwrap_err().message.contains("known: openai, anthropic"));
    }

    #[test]
    fn base_url_precedence() {
        let (openai, _) = resolve("openai/x").unwrap();
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| (*value).to_owned())
            }
        };
        assert_eq!(openai.base_url(env(&[])), "https://api.openai.com/v1");
        assert_eq!(
            openai.base_url(env(&[("LITELLM_API_BASE", "http://proxy/v1/")])),
            "http://proxy/v1"
        );
        assert_eq!(
            openai.base_url(env(&[
                ("LITELLM_API_BASE", "http://proxy/v1"),
                ("OPENAI_API_BASE", "http://own/v1")
            ])),
            "http://own/v1"
        );
    }
}
