//! The registry: every key validated, errors naming the file and the key, the older shapes.

use theory_core::registry::{DocumentKind, Registry, RegistryError, Source, sources_from_dir};

fn load(documents: &[(&str, DocumentKind, &str)]) -> Result<Registry, Vec<RegistryError>> {
    let sources = documents
        .iter()
        .map(|(origin, kind, text)| Source {
            origin: (*origin).into(),
            kind: *kind,
            text: (*text).into(),
            builtin: false,
        })
        .collect();
    Registry::load(sources)
}

fn first_error(text: &str) -> RegistryError {
    load(&[("registry/processors/x.yaml", DocumentKind::Processor, text)]).unwrap_err().remove(0)
}

#[test]
fn the_repository_registry_is_valid() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../registry");
    let registry = Registry::load(sources_from_dir(std::path::Path::new(root)).unwrap()).unwrap();
    let refs: Vec<String> =
        registry.processors().map(|entry| entry.spec.reference.to_string()).collect();
    assert!(
        refs.contains(&"llm/litellm@1".to_owned()) && refs.contains(&"theory/probe@1".to_owned())
    );
    assert!(registry.policy("default@1").is_some());
    assert!(registry.schema("llm.meta@1").is_some());
}

#[test]
fn errors_name_the_file_and_the_key() {
    let hex = "0".repeat(64);
    let cases = [
        (
            "ref: a/b@1\nimage: {platforms: {amd64: \"nope\"}}".to_owned(),
            Some("image.platforms.amd64"),
        ),
        ("ref: a/b@1\nimage: {platforms: {riscv: x}}".into(), Some("image.platforms.riscv")),
        ("ref: a/b@1\nruntime: {cpu: 1, memroy_gb: 2}".into(), Some("runtime.memroy_gb")),
        ("ref: a/b@1\nsecrets: {required: [lower_case]}".into(), Some("secrets")),
        ("ref: a/b@1\nsurprise: 1".into(), Some("surprise")),
        ("ref: A/b@1".into(), Some("ref")),
        ("ref: a/b@1\ninputs: {type: 12}".into(), Some("inputs")),
        ("ref: a/b@1\npredicates: {success: [{id: magic@1}]}".into(), Some("predicates.success")),
        ("ref: a/b@1\noutputs: [{path: ../x, mime: text/plain}]".into(), Some("outputs")),
        (
            format!(
                "ref: a/b@1\nimage: {{oci: \"ghcr.io/x@sha256:{hex}\"}}\nruntime: {{memory: 512, memory_gb: 1}}"
            ),
            Some("runtime"),
        ),
    ];
    for (text, key) in cases {
        let error = first_error(&text);
        assert_eq!(error.origin, "registry/processors/x.yaml", "{text}");
        assert_eq!(error.key.as_deref(), key, "{text}: {error}");
        assert!(error.to_string().starts_with("registry/processors/x.yaml: "), "{error}");
    }
    assert!(first_error("ref: a/b@1\nsurprise: 1").message.contains("surprise"));
}

#[test]
fn duplicates_are_refused_but_a_project_replaces_a_builtin() {
    let spec = "ref: a/b@1\ndescription: project";
    let errors = load(&[
        ("one.yaml", DocumentKind::Processor, spec),
        ("two.yaml", DocumentKind::Processor, spec),
    ])
    .unwrap_err();
    assert_eq!(errors[0].origin, "two.yaml");
    assert!(errors[0].message.contains("one.yaml"));

    let builtin = Source {
        origin: "builtin:b.yaml".into(),
        kind: DocumentKind::Processor,
        text: "ref: a/b@1\ndescription: builtin".into(),
        builtin: true,
    };
    let project = Source {
        origin: "p.yaml".into(),
        kind: DocumentKind::Processor,
        text: spec.into(),
        builtin: false,
    };
    let registry = Registry::load(vec![builtin, project]).unwrap();
    assert_eq!(
        registry.processor(&"a/b@1".parse().unwrap()).unwrap().spec.description.as_deref(),
        Some("project")
    );
}

#[test]
fn the_original_docs_shapes_still_load() {
    let text = "ref: llm/old@1\nimage: {dockerfile: apps/core/processors/llm_litellm/Dockerfile}\nruntime: {cpu: 1, memory: 512, timeout: 300}\n\
                adapter: {modal: {stub_name: llm_litellm_v1}}\nsecrets: [OPENAI_API_KEY]\noutputs: {writes: [{prefix: /artifacts/outputs/text/}]}\n\
                predicates: {admission: [{id: budget.available@1, args: {required_usd_micro: 1000}}]}";
    let registry = load(&[("old.yaml", DocumentKind::Processor, text)]).unwrap();
    let spec = &registry.processor(&"llm/old@1".parse().unwrap()).unwrap().spec;
    assert!((spec.runtime.memory_gb - 0.5).abs() < f64::EPSILON);
    assert_eq!(spec.runtime.timeout_s, 300);
    assert_eq!(spec.secrets.required[0].as_str(), "OPENAI_API_KEY");
    assert_eq!(spec.outputs.writes, ["/artifacts/outputs/text/"]);
    let build = spec.image.build_spec().unwrap();
    assert_eq!(
        (build.context.as_str(), build.dockerfile.as_str()),
        ("apps/core/processors/llm_litellm", "Dockerfile")
    );
}

#[test]
fn schema_predicates_must_name_a_known_schema() {
    let spec =
        "ref: a/b@1\npredicates: {success: [{id: json.schema_ok@1, args: {schema: missing@1}}]}";
    let errors = load(&[("p.yaml", DocumentKind::Processor, spec)]).unwrap_err();
    assert_eq!(errors[0].key.as_deref(), Some("predicates.success"));
    let schema = "id: missing@1\nschema: {type: object}";
    assert!(
        load(&[
            ("p.yaml", DocumentKind::Processor, spec),
            ("s.yaml", DocumentKind::Schema, schema)
        ])
        .is_ok()
    );
}

#[test]
fn inputs_are_checked_with_a_pointer() {
    let registry = load(&[(
        "p.yaml",
        DocumentKind::Processor,
        "ref: a/b@1\ninputs: {type: object, properties: {n: {type: integer}}}",
    )])
    .unwrap();
    let entry = registry.processor(&"a/b@1".parse().unwrap()).unwrap();
    assert!(entry.check_inputs(&serde_json::json!({"n": 1})).is_ok());
    let violation = entry.check_inputs(&serde_json::json!({"n": "one"})).unwrap_err();
    assert_eq!(violation.pointer, "/n");
    assert!(violation.to_string().contains("at /n"), "{violation}");
}

#[test]
fn a_project_holding_the_builtin_files_again_loads() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../registry");
    let project = sources_from_dir(std::path::Path::new(root)).unwrap();
    let mut builtin = project.clone();
    for source in &mut builtin {
        source.builtin = true;
        source.origin = format!("builtin:{}", source.origin);
    }
    let registry = Registry::load(builtin.into_iter().chain(project).collect()).unwrap();
    let entry = registry.processor(&"llm/litellm@1".parse().unwrap()).unwrap();
    assert!(!entry.builtin, "the project's file wins");
    assert!(registry.schema("llm.meta@1").is_some_and(|schema| !schema.builtin));
    assert!(registry.policy("default@1").is_some());
}

#[test]
fn a_key_chosen_by_an_input_is_checked_and_chosen_by_prefix() {
    let spec = |secrets: &str| format!("ref: a/b@1\nsecrets: {secrets}\n");
    let error = first_error(&spec(
        "{optional: [A_KEY], by_input: {pointer: /params/model, default: A_KEY, keys: {b: B_KEY}}}",
    ));
    assert_eq!(error.key.as_deref(), Some("secrets"));
    assert!(
        error.message.contains("by_input names B_KEY, which is neither required nor optional"),
        "{error}"
    );
    let error = first_error(&spec(
        "{optional: [A_KEY], by_input: {pointer: model, default: A_KEY, keys: {}}}",
    ));
    assert!(error.message.contains("is not a JSON pointer"), "{error}");

    let text = spec(
        "{required: [R], optional: [A_KEY, B_KEY], by_input: {pointer: /params/model, default: A_KEY, keys: {a: A_KEY, b: B_KEY}}}",
    );
    let registry = load(&[("p.yaml", DocumentKind::Processor, &text)]).unwrap();
    let secrets = &registry.processor(&"a/b@1".parse().unwrap()).unwrap().spec.secrets;
    let names = |inputs: serde_json::Value| -> Vec<String> {
        secrets.required_for(&inputs).iter().map(ToString::to_string).collect()
    };
    assert_eq!(names(serde_json::json!({"params": {"model": "b/m"}})), ["R", "B_KEY"]);
    assert_eq!(names(serde_json::json!({"params": {"model": "m"}})), ["R", "A_KEY"]);
    assert_eq!(names(serde_json::json!({"params": {}})), ["R", "A_KEY"]);
    assert_eq!(names(serde_json::json!({"params": {"model": "c/m"}})), ["R"]);
    let baseline: Vec<String> = secrets.baseline().iter().map(ToString::to_string).collect();
    assert_eq!(baseline, ["R", "A_KEY"]);
}

#[test]
fn config_env_names_settings_never_secrets_and_cache_conditions_are_pointers() {
    let cases = [
        (
            "secrets: {optional: [A_KEY]}\nconfig_env: [A_KEY]",
            "config_env",
            "is a secret of this spec",
        ),
        ("config_env: [SERVICE_TOKEN]", "config_env", "looks like a secret"),
        (
            "cache: {real: never, real_when: [{pointer: params/seed}]}",
            "cache.real_when",
            "not a JSON pointer",
        ),
        ("cache: {real: sometimes}", "cache.real", "unknown variant"),
    ];
    for (extra, key, message) in cases {
        let error = first_error(&format!("ref: a/b@1\n{extra}\n"));
        assert_eq!(error.key.as_deref(), Some(key), "{extra}: {error}");
        assert!(error.message.contains(message), "{extra}: {error}");
    }
    let text = "ref: a/b@1\nconfig_env: [API_BASE]\ncache: {real: never, real_when: [{pointer: /params/temperature, equals: 0}, {pointer: /params/seed}]}\n";
    let registry = load(&[("p.yaml", DocumentKind::Processor, text)]).unwrap();
    let cache = &registry.processor(&"a/b@1".parse().unwrap()).unwrap().spec.cache;
    let reuses =
        |params: serde_json::Value| cache.reuses_real(&serde_json::json!({"params": params}));
    assert!(reuses(serde_json::json!({"temperature": 0.0})));
    assert!(reuses(serde_json::json!({"seed": 7, "temperature": 1})));
    assert!(!reuses(serde_json::json!({"temperature": 0.7})));
    assert!(!reuses(serde_json::json!({"seed": null})));
    assert!(!reuses(serde_json::json!({})));
}

#[test]
fn a_lookup_parses_only_the_files_it_needs_and_validate_parses_all() {
    // 500 specs, one of them broken, and the default policy: finding one processor parses its
    // file and nothing else; the listings and `problems` parse every file, once.
    let mut sources: Vec<Source> = (0..500)
        .map(|n| Source {
            origin: format!("registry/processors/p{n}.yaml"),
            kind: DocumentKind::Processor,
            text: format!(
                "ref: acme/p{n}@1\nsecrets: {{required: [KEY_{n}]}}\ninputs: {{type: object}}\n{}",
                if n == 7 { "predicates: {admission: [{id: nope@1}]}\n" } else { "" }
            ),
            builtin: false,
        })
        .collect();
    sources.push(Source {
        origin: "registry/policies/default.yaml".into(),
        kind: DocumentKind::Policy,
        text: "id: default@1\n".into(),
        builtin: false,
    });
    let registry = Registry::load_partial(sources);
    assert_eq!((registry.files(), registry.files_parsed()), (501, 0));
    let wanted = "acme/p250@1".parse().unwrap();
    let entry = registry.processor(&wanted).expect("found");
    assert_eq!(entry.spec.reference, wanted);
    assert!(registry.policy("default@1").is_some());
    assert!(!registry.has_unidentified_problems());
    assert_eq!(registry.files_parsed(), 2, "the spec used and the default policy");
    assert!(registry.known_problems().is_empty(), "the broken file is not read yet");
    // Asking again parses nothing again.
    registry.processor(&wanted).unwrap();
    assert_eq!(registry.files_parsed(), 2);

    // The broken spec answers for its ref with its own problem, found when asked for.
    let broken = registry.broken("acme/p7@1").expect("its problem");
    assert_eq!(broken.origin, "registry/processors/p7.yaml");
    assert!(registry.processor(&"acme/p7@1".parse().unwrap()).is_none());
    assert_eq!(registry.files_parsed(), 3);

    assert_eq!(registry.problems().len(), 1, "validate finds the one broken file");
    assert_eq!(registry.processors().count(), 499);
    assert_eq!(registry.files_parsed(), 501, "every file parsed once");
}

#[test]
fn a_file_whose_line_and_document_disagree_is_a_problem() {
    // A quoted description that runs over a line starting `ref:` is not the document's ref: the
    // file is indexed by the line and refused when parsed, naming both.
    let text = "description: \"one\nref: x/y@1\"\nref: a/b@1\n";
    let sources = vec![Source {
        origin: "registry/processors/x.yaml".into(),
        kind: DocumentKind::Processor,
        text: text.into(),
        builtin: false,
    }];
    let problems = Registry::load(sources).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("x/y@1") && problems[0].message.contains("a/b@1"),
        "{problems:?}"
    );
}
