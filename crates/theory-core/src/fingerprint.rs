//! The environment fingerprint: a deterministic one-line summary of the setup a run used.

use crate::registry::RuntimeSpec;

/// What the fingerprint is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint<'a> {
    /// `local` or `modal`.
    pub adapter: &'a str,
    /// `process`, `docker` or `modal`.
    pub runtime: &'a str,
    /// The identity of the image (or binary) that ran.
    pub image_digest: &'a str,
    /// Resources and timeout.
    pub resources: &'a RuntimeSpec,
    /// Secret names present in the environment (never values).
    pub present_env_keys: &'a [String],
}

impl Fingerprint<'_> {
    /// Returns the fingerprint with every unknown part spelled `unknown`, same order.
    pub fn unknown(adapter: &str) -> String {
        format!(
            "adapter={adapter},runtime=unknown,image_digest=unknown,cpu=unknown,memory_gb=unknown,timeout_s=unknown,gpu=unknown,present_env_keys=[]"
        )
    }

    /// Returns `adapter=…,runtime=…,image_digest=…,cpu=…,memory_gb=…,timeout_s=…,gpu=…,present_env_keys=[A,B]`,
    /// names sorted.
    pub fn render(&self) -> String {
        let mut keys = self.present_env_keys.to_vec();
        keys.sort();
        keys.dedup();
        format!(
            "adapter={},runtime={},image_digest={},cpu={},memory_gb={},timeout_s={},gpu={},present_env_keys=[{}]",
            self.adapter,
            self.runtime,
            self.image_digest,
            self.resources.cpu,
            self.resources.memory_gb,
            self.resources.timeout_s,
            self.resources.gpu.as_deref().unwrap_or("none"),
            keys.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Fingerprint;
    use crate::registry::RuntimeSpec;

    #[test]
    fn fixed_order_sorted_names() {
        let resources = RuntimeSpec {
            cpu: 1.0,
            memory_gb: 2.0,
            timeout_s: 300,
            gpu: None,
            max_concurrency: None,
        };
        let keys = ["OPENAI_API_KEY".to_owned(), "ANTHROPIC_API_KEY".to_owned()];
        let fingerprint = Fingerprint {
            adapter: "local",
            runtime: "process",
            image_digest: "b3:ab",
            resources: &resources,
            present_env_keys: &keys,
        };
        assert_eq!(
            fingerprint.render(),
            "adapter=local,runtime=process,image_digest=b3:ab,cpu=1,memory_gb=2,timeout_s=300,gpu=none,present_env_keys=[ANTHROPIC_API_KEY,OPENAI_API_KEY]"
        );
    }
}
