//! The `llm-litellm` binary: serves `llm/litellm@1` on `PORT`.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match llm_litellm::Config::from_env() {
        Ok(config) => {
            theory_processor::main(llm_litellm::identity(), llm_litellm::make_runner(config))
        }
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: cannot build the HTTP client: {error}");
            ExitCode::FAILURE
        }
    }
}
