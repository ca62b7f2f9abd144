//! `theory`: parse, set up logging, run the command, map the result to an exit status.

mod args;
mod commands;
mod logging;
mod modal_args;
mod print;
mod progress;
mod project;
mod signals;
mod usage;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            print::print_error(&format!("cannot start the async runtime: {error}"), None);
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(usage) => {
            print::print_error(&usage.message, Some(&usage.hint));
            ExitCode::from(2)
        }
    }
}
