//! `llm/litellm@1`: chat completion through OpenAI-compatible and Anthropic APIs, streamed to
//! the client token by token, with the reply in `text/response.txt` and the model and token
//! counts in `meta.json`.
//!
//! # Layout
//!
//! - `params`: the inputs (`messages`, `model`, sampling settings).
//! - `mock`: mock mode — `MOCK: <last message>`, streamed word by word, model `mock-llm`.
//! - `provider`: `provider/model` strings → dialect, key variable, base URL.
//! - `parts`: a message's content as parts, attachments read (images inline, text files as text).
//! - `openai`, `anthropic`: the two streaming dialects, over `stream`'s shared request/SSE loop.
//! - `completion`: a finished reply → outputs and usage.
//!
//! # Real mode
//!
//! The model string picks the provider (`openai/gpt-4o-mini`, `anthropic/claude-3-5-haiku-latest`,
//! `groq/…`, …; no prefix means OpenAI). Its key comes from the provider's variable
//! (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, …) — missing → `ERR_MISSING_SECRET` naming it. The base
//! URL is the provider's own override (`OPENAI_API_BASE`, `ANTHROPIC_API_BASE`, …), else
//! `LITELLM_API_BASE`, else the public endpoint. Provider failures → `ERR_PROVIDER` with the
//! provider's message, any secret value redacted. Attachments (`{"$artifact":…}` parts) reach
//! the model: PNG, JPEG, GIF and WebP images of at most 5 MiB as image content (`image_url`
//! data URLs for OpenAI-compatible APIs, base64 `image` blocks for Anthropic), text files as
//! text; any other type → `ERR_INPUT_SCHEMA`.

mod anthropic;
mod completion;
mod mock;
mod openai;
mod params;
mod parts;
mod provider;
mod sse;
mod stream;

use std::sync::Arc;

use theory_processor::protocol::Mode;
use theory_processor::{Context, Identity, Inputs, Processor, ProcessorError, ProcessorResult};

pub use completion::Completion;
pub use mock::MOCK_MODEL;
pub use params::{ChatParams, DEFAULT_MODEL, Message};
pub use provider::{Api, LITELLM_API_BASE, PROVIDERS, Provider};
pub use sse::{SseEvent, SseParser};

/// The ref this processor answers to.
pub const REF: &str = "llm/litellm@1";

/// Returns this processor's identity.
pub fn identity() -> Identity {
    Identity::new(REF)
}

/// Settings fixed at start: the HTTP client. Base URLs and keys are read from the environment
/// at each run.
#[derive(Clone)]
pub struct Config {
    client: reqwest::Client,
}

impl Config {
    /// Builds the HTTP client.
    pub fn from_env() -> Result<Config, reqwest::Error> {
        let client = theory_processor::http::client_builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .read_timeout(std::time::Duration::from_mins(2))
            .build()?;
        Ok(Config { client })
    }
}

/// Builds the runner: the seeds' `make_runner(config)`.
pub fn make_runner(config: Config) -> impl Processor {
    let config = Arc::new(config);
    move |inputs: Inputs, context: Context| {
        let config = Arc::clone(&config);
        async move { run(&config, &inputs, &context).await }
    }
}

async fn run(
    config: &Config,
    inputs: &Inputs,
    context: &Context,
) -> Result<ProcessorResult, ProcessorError> {
    let params = ChatParams::from_inputs(inputs)?;
    let completion = match context.mode() {
        Mode::Mock => mock::reply(&params, context),
        Mode::Real => {
            let (provider, model) = provider::resolve(params.model())?;
            let api_key = context.secret(provider.key_env)?;
            let base_url = provider.base_url(|name| std::env::var(name).ok());
            let messages = parts::resolve_all(&params.messages, context).await?;
            context.info(format!("calling {} model {model}", provider.name));
            let request = openai::Request {
                client: &config.client,
                provider,
                base_url: &base_url,
                api_key: &api_key,
                model,
            };
            let mut completion = match provider.api {
                Api::OpenAiChat => openai::complete(request, &params, &messages, context).await?,
                Api::AnthropicMessages => {
                    anthropic::complete(request, &params, &messages, context).await?
                }
            };
            completion.priced_model = Some(format!("{}/{model}", provider.name));
            completion
        }
    };
    completion.into_result(params.model.as_deref())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use theory_processor::protocol::{Frame, Mode, normalize_inputs};
    use theory_processor::{Context, Inputs, OutputBody};

    use super::{ChatParams, mock};

    fn inputs(value: serde_json::Value) -> Inputs {
        Inputs::new(normalize_inputs(value).unwrap().value)
    }

    #[test]
    fn mock_reply_streams_the_last_message() {
        let context = Context::detached(Mode::Mock);
        let params = ChatParams::from_inputs(&inputs(json!({"messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Hello  there"}
        ]})))
        .unwrap();
        let completion = mock::reply(&params, &context);
        assert_eq!(completion.text, "MOCK: Hello  there");
        let tokens: Vec<String> = context
            .frames()
            .into_iter()
            .filter_map(|frame| match frame {
                Frame::Token(token) => Some(token.text),
                _ => None,
            })
            .collect();
        assert_eq!(tokens, ["MOCK:", " Hello", "  there"]);
        assert_eq!((completion.tokens_in, completion.tokens_out), (Some(4), Some(3)));
        let result = completion.into_result(None).unwrap();
        let OutputBody::Bytes(meta) = &result.outputs[1].body else { panic!() };
        let meta: serde_json::Value = serde_json::from_slice(meta).unwrap();
        assert_eq!(meta["model"], "mock-llm");
        assert_eq!(result.usage["tokens_out"], 3);
    }

    #[test]
    fn no_messages_is_an_input_error() {
        let error = ChatParams::from_inputs(&inputs(json!({"messages": []}))).unwrap_err();
        assert_eq!(error.code, theory_processor::protocol::ErrorCode::InputSchema);
    }
}
