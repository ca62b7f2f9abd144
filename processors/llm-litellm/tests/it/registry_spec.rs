//! The registry spec's inputs schema accepts the long form, the short form and a top-level
//! model, and refuses what the processor would refuse.

use serde_json::{Value, json};

fn inputs_schema() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../registry/processors/llm-litellm.yaml");
    let text = std::fs::read_to_string(path).expect("spec readable");
    let spec: Value = serde_saphyr::from_str(&text).expect("spec is YAML");
    assert_eq!(spec["ref"], "llm/litellm@1");
    jsonschema::validator_for(&spec["inputs"]).expect("inputs is a valid JSON Schema")
}

#[test]
fn accepts_every_documented_form() {
    let schema = inputs_schema();
    let messages = json!([{"role": "user", "content": "Hello"}]);
    for inputs in [
        json!({"messages": messages}),
        json!({"messages": messages, "model": "openai/gpt-4o-mini", "temperature": 0.2}),
        json!({"schema": "v1", "params": {"messages": messages, "model": "anthropic/claude-3-5-haiku-latest"}}),
        json!({"schema": "v1", "model": "openai/gpt-4o-mini", "params": {"messages": messages}}),
        json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"$attach": "image"}]}]}),
    ] {
        let errors: Vec<String> =
            schema.iter_errors(&inputs).map(|error| error.to_string()).collect();
        assert!(errors.is_empty(), "{inputs}: {errors:?}");
    }
}

#[test]
fn refuses_with_a_pointer() {
    let schema = inputs_schema();
    for (inputs, pointer) in [
        (json!({"prompt": "Hello"}), ""),
        (json!({"messages": []}), "/messages"),
        (json!({"messages": [{"role": "robot", "content": "x"}]}), "/messages/0/role"),
        (json!({"messages": [{"role": "user", "content": "x"}], "temperature": 5}), "/temperature"),
        (
            json!({"schema": "v1", "params": {"messages": [{"role": "user", "content": "x"}]}, "stray": 1}),
            "",
        ),
        (json!({"schema": "v1", "params": {}}), "/params"),
    ] {
        let pointers: Vec<String> =
            schema.iter_errors(&inputs).map(|error| error.instance_path().to_string()).collect();
        assert!(pointers.contains(&pointer.to_owned()), "{inputs}: {pointers:?}");
    }
}

#[test]
fn the_spec_asks_for_the_key_of_the_provider_the_model_names() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../registry/processors/llm-litellm.yaml");
    let spec: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let by_input = &spec["secrets"]["by_input"];
    assert_eq!(by_input["pointer"], "/params/model");
    assert_eq!(by_input["default"], "OPENAI_API_KEY");
    let keys: std::collections::BTreeMap<String, String> =
        serde_json::from_value(by_input["keys"].clone()).unwrap();
    let providers: std::collections::BTreeMap<String, String> = llm_litellm::PROVIDERS
        .iter()
        .map(|provider| (provider.name.to_owned(), provider.key_env.to_owned()))
        .collect();
    assert_eq!(keys, providers, "the spec and the processor disagree on a provider's key");
    assert!(spec["secrets"]["required"].is_null(), "no key is required whatever the model");
}

#[test]
fn every_base_url_setting_is_in_the_memo_key() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../registry/processors/llm-litellm.yaml");
    let spec: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let declared: Vec<&str> =
        spec["config_env"].as_array().unwrap().iter().map(|name| name.as_str().unwrap()).collect();
    for provider in llm_litellm::PROVIDERS {
        for name in provider.base_envs {
            assert!(declared.contains(name), "{name} is read but not in config_env");
        }
    }
    assert!(declared.contains(&llm_litellm::LITELLM_API_BASE));
    assert_eq!(spec["cache"]["real"], "never", "sampling varies: real runs are not reused");
}
