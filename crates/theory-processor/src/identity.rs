//! Who the processor is, as `/info` and every envelope say.

/// The processor's ref and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `ns/name@ver`, such as `llm/litellm@1`.
    pub reference: String,
    /// A human-readable description of this build, such as `llm/litellm@1 (theory-processor 0.1.0)`.
    pub processor_info: String,
}

impl Identity {
    /// Builds an identity whose description names the ref and this SDK's version.
    pub fn new(reference: impl Into<String>) -> Identity {
        let reference = reference.into();
        let processor_info =
            format!("{reference} (theory-processor {})", env!("CARGO_PKG_VERSION"));
        Identity { reference, processor_info }
    }

    /// Returns `ns_name` for `ns/name@ver`, the default folder of outputs.
    pub fn ref_slug(&self) -> String {
        let without_version = self.reference.split('@').next().unwrap_or_default();
        without_version.replace('/', "_")
    }
}
