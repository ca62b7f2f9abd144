//! `theory processor pin`: writes `image.platforms.<platform>` into the processor's spec file,
//! keeping the rest of the file as it was — one pin, or every pin of a `processor push --json`
//! report (`--pushed`).

use std::process::ExitCode;
use theory_core::Failure;

use serde_json::{Value, json};
use theory_core::ImagePin;
use theory_core::registry::{Platform, ProcessorEntry};
use theory_protocol::ErrorCode;

use crate::args::PinArgs;
use crate::commands::{Context, processor_entry};
use crate::print::{Report, out, print_json};
use crate::usage::usage;

/// One pin to write: the ref, the platform and the image, as given.
struct Wanted {
    reference: String,
    platform: String,
    oci: String,
}

pub(super) async fn run(args: &PinArgs, context: &Context) -> Result<ExitCode, Failure> {
    let registry = match &context.registry {
        Ok(registry) => registry,
        Err(errors) => return Ok(crate::commands::registry_failure(errors, args.json)),
    };
    let wanted = match &args.pushed {
        Some(file) => read_pushed(file)?,
        None => vec![Wanted {
            reference: args.reference.clone().unwrap_or_default(),
            platform: args.platform.clone().unwrap_or_default(),
            oci: args.oci.clone().unwrap_or_default(),
        }],
    };
    let mut pins = Vec::new();
    for one in &wanted {
        let entry = processor_entry(registry, &one.reference)?;
        let platform: Platform = one
            .platform
            .trim_start_matches("linux/")
            .parse()
            .map_err(|error| usage(format!("--platform: {error}"), "use amd64 or arm64"))?;
        let pin: ImagePin = one.oci.parse().map_err(|error| {
            usage(
                format!("--oci: {error}"),
                "a pin looks like ghcr.io/org/repo@sha256:<64 hex digits>",
            )
        })?;
        if args.verify_digest
            && let Err(error) = verify_digest(&pin, platform, context).await
        {
            return Ok(error.report(args.json));
        }
        if let Err(error) = write_pin(entry, platform, &pin, context) {
            return Ok(error.report(args.json));
        }
        let reference = &entry.spec.reference;
        if !args.json {
            out(format!("pinned {reference} {platform} to {pin} in {}", entry.origin));
        }
        pins.push(json!({
            "ref": reference.to_string(),
            "platform": platform.as_str(),
            "oci": pin.to_string(),
            "file": entry.origin,
        }));
    }
    if args.json {
        let mut report = json!({"ok": true, "pins": pins});
        if let [only] = pins.as_slice() {
            // One pin: its fields at the top level too, as before `--pushed`.
            for (key, value) in only.as_object().into_iter().flatten() {
                report[key] = value.clone();
            }
        }
        print_json(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--verify-digest`: the registry has the manifest, and it is an image of `platform` (not an
/// index, not another platform's).
async fn verify_digest(
    pin: &ImagePin,
    platform: Platform,
    context: &Context,
) -> Result<(), Failure> {
    let target = super::push::Target::of(pin.repository().to_owned());
    let login = super::push::login_for(context, &target);
    let api = super::push::registry_api(context, &target, login.as_ref())?;
    let digest = pin.digest().to_string();
    let found = api
        .manifest(&target.path, &digest)
        .await
        .map_err(|error| super::push::registry_failure(&error, &target))?;
    let Some((descriptor, manifest)) = found else {
        return Err(Failure::with_hint(
            ErrorCode::ImageNotFound,
            format!("the registry has no manifest {pin}"),
            "pin what `theory processor push` printed; nothing was written",
        ));
    };
    if manifest["manifests"].is_array() {
        return Err(Failure::with_hint(
            ErrorCode::RegistryMismatch,
            format!(
                "{pin} is an image index ({}), not one platform's image",
                descriptor.media_type
            ),
            "pin each platform's manifest digest (`theory processor push` prints them); nothing was written",
        ));
    }
    let (os, architecture) = api
        .platform_of(&target.path, &manifest)
        .await
        .map_err(|error| super::push::registry_failure(&error, &target))?;
    if os != "linux" || architecture != platform.as_str() {
        return Err(Failure::with_hint(
            ErrorCode::RegistryMismatch,
            format!("{pin} is an image for {os}/{architecture}, not linux/{platform}"),
            format!(
                "pin it as --platform {architecture}, or pin the linux/{platform} image; nothing was written"
            ),
        ));
    }
    eprintln!("the registry has {pin}: a linux/{architecture} image");
    Ok(())
}

/// The pins of a `theory processor push --json` report.
fn read_pushed(file: &std::path::Path) -> Result<Vec<Wanted>, Failure> {
    let hint = "pass the file `theory processor push --json` wrote";
    let text = std::fs::read_to_string(file).map_err(|error| {
        usage(format!("--pushed: cannot read {}: {error}", file.display()), hint)
    })?;
    let report: Value = serde_json::from_str(&text).map_err(|error| {
        usage(format!("--pushed: {} is not JSON: {error}", file.display()), hint)
    })?;
    let pushes = report["pushes"].as_array().ok_or_else(|| {
        usage(format!("--pushed: {} has no \"pushes\" list", file.display()), hint)
    })?;
    pushes
        .iter()
        .map(|push| {
            let field = |name: &str| {
                push[name].as_str().map(str::to_owned).ok_or_else(|| {
                    usage(format!("--pushed: a push in {} has no {name:?}", file.display()), hint)
                })
            };
            Ok(Wanted {
                reference: field("ref")?,
                platform: field("platform")?,
                oci: field("oci")?,
            })
        })
        .collect()
}

/// Writes `pin` as `image.platforms.<platform>` into the spec file of `entry`, keeping the rest
/// of the file as it was.
pub(super) fn write_pin(
    entry: &ProcessorEntry,
    platform: Platform,
    pin: &ImagePin,
    context: &Context,
) -> Result<(), Failure> {
    let reference = &entry.spec.reference;
    if entry.builtin {
        return Err(Failure::with_hint(
            ErrorCode::Registry,
            format!(
                "{reference} is built into theory ({}), so there is no file to pin it in",
                entry.origin
            ),
            "copy its spec into registry/processors/ of your project; the project's file replaces the built-in one",
        ));
    }
    let file = context.project.root.join(&entry.origin);
    std::fs::read_to_string(&file)
        .map_err(|error| error.to_string())
        .and_then(|text| super::pin_edit::set_pin(&text, platform, pin))
        .and_then(|text| write_atomically(&file, &text).map_err(|error| error.to_string()))
        .map_err(|error| {
            Failure::with_hint(
                ErrorCode::Registry,
                format!("{}: {error}", file.display()),
                "edit image.platforms in the file by hand",
            )
        })
}

fn write_atomically(file: &std::path::Path, text: &str) -> std::io::Result<()> {
    let temporary = file.with_extension("yaml.pin-tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, file)
}
