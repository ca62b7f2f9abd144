//! The `theory-probe` binary: serves `theory/probe@1` on `PORT`.

fn main() -> std::process::ExitCode {
    theory_processor::main(theory_probe::identity(), theory_probe::run)
}
