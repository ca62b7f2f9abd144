//! `theory processor pin`: writes `image.platforms.<platform>` into the processor's spec file,
//! keeping the rest of the file as it was.

use std::process::ExitCode;
use theory_core::Failure;

use theory_core::ImagePin;
use theory_core::registry::Platform;
use theory_protocol::ErrorCode;

use crate::args::PinArgs;
use crate::commands::{Context, processor_entry};
use crate::print::{Report, out, print_json};
use crate::usage::usage;

pub(super) fn run(args: &PinArgs, context: &Context) -> Result<ExitCode, Failure> {
    let registry = match &context.registry {
        Ok(registry) => registry,
        Err(errors) => return Ok(crate::commands::registry_failure(errors, args.json)),
    };
    let entry = processor_entry(registry, &args.reference)?;
    let platform: Platform = args
        .platform
        .trim_start_matches("linux/")
        .parse()
        .map_err(|error| usage(format!("--platform: {error}"), "use amd64 or arm64"))?;
    let pin: ImagePin = args.oci.parse().map_err(|error| {
        usage(format!("--oci: {error}"), "a pin looks like ghcr.io/org/repo@sha256:<64 hex digits>")
    })?;
    let reference = &entry.spec.reference;
    if entry.builtin {
        return Ok(Failure::with_hint(
            ErrorCode::Registry,
            format!("{reference} is built into theory ({}), so there is no file to pin it in", entry.origin),
            "copy its spec into registry/processors/ of your project; the project's file replaces the built-in one",
        )
        .report(args.json));
    }
    let file = context.project.root.join(&entry.origin);
    let written = std::fs::read_to_string(&file)
        .map_err(|error| error.to_string())
        .and_then(|text| super::pin_edit::set_pin(&text, platform, &pin))
        .and_then(|text| write_atomically(&file, &text).map_err(|error| error.to_string()));
    if let Err(error) = written {
        return Ok(Failure::with_hint(
            ErrorCode::Registry,
            format!("{}: {error}", file.display()),
            "edit image.platforms in the file by hand",
        )
        .report(args.json));
    }
    if args.json {
        print_json(&serde_json::json!({
            "ok": true,
            "ref": reference.to_string(),
            "platform": platform.as_str(),
            "oci": pin.to_string(),
            "file": entry.origin,
        }));
    } else {
        out(format!("pinned {reference} {platform} to {pin} in {}", entry.origin));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_atomically(file: &std::path::Path, text: &str) -> std::io::Result<()> {
    let temporary = file.with_extension("yaml.pin-tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, file)
}
