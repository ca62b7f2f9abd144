//! `theory`: parse, set up logging, run the command, map the result to an exit status.

mod args;
mod commands;
mod logging;
mod modal_args;
mod print;
mod progress;
mod signals;
mod usage;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    // Completions and the manual need nothing but the command line's own description.
    match &cli.command {
        args::Command::Completions(completions) => return print::completions(completions.shell),
        args::Command::Man => return print::manual(),
        _ => {}
    }
    // One thread suffices for a command; the server uses every core.
    let mut builder = if matches!(cli.command, args::Command::Serve(_)) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            print::print_error(&format!("cannot start the async runtime: {error}"), None);
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(failure) => {
            // A command that failed before it had a document to print: `error:`/`hint:` only;
            // a bad flag says what is wrong with it, anything else its code first.
            let message = match failure.code {
                theory_protocol::ErrorCode::Usage => failure.message.clone(),
                _ => format!("{}: {}", failure.code, failure.message),
            };
            print::print_error(&message, failure.hint.as_deref());
            usage::exit_code(&failure)
        }
    }
}
