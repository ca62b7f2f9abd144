//! `image/thumbnail@1`: resizes an attached PNG or JPEG so that it fits a square of `max_size`
//! pixels (default 128; smaller images keep their size), and writes it as a PNG with a JSON of
//! its dimensions. Real work with no network and no secret, so it proves binary inputs and
//! outputs end to end.
//!
//! Parameters, in `params`:
//!
//! | key | meaning |
//! |---|---|
//! | `image` | `{"$artifact": <world path>, "cid", "mime"}` — what `{"$attach":"NAME"}` becomes |
//! | `max_size` | the longest side of the thumbnail, 1–4096 (default 128) |
//!
//! Outputs: `thumbnail.png` and `dimensions.json`
//! (`{"source":{"width","height","format"},"thumbnail":{"width","height"},"max_size"}`).
//! In `mock` mode the image is not decoded: the thumbnail is a fixed 1×1 PNG and
//! `dimensions.json` says `"mock": true` and carries the input's CID and size.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use serde::Deserialize;
use serde_json::json;
use theory_processor::protocol::Mode;
use theory_processor::{
    Context, Identity, InputFile, Inputs, OutputItem, ProcessorError, ProcessorResult,
};

/// The ref this processor answers to.
pub const REF: &str = "image/thumbnail@1";
/// The thumbnail of every mock run: one pixel.
pub const MOCK_PNG: &[u8] = include_bytes!("../assets/mock.png");
/// The longest side when `max_size` is not given.
pub const DEFAULT_MAX_SIZE: u32 = 128;
/// Images with a side longer than this are refused before they are decoded.
const MAX_SOURCE_SIDE: u32 = 16_384;
/// The most memory a decode may take.
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// Returns the processor's identity.
pub fn identity() -> Identity {
    Identity::new(REF)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    image: ImageRef,
    #[serde(default)]
    max_size: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct ImageRef {
    #[serde(rename = "$artifact")]
    artifact: String,
}

/// What a thumbnail came from and came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    /// The source's width and height.
    pub source: (u32, u32),
    /// The thumbnail's width and height.
    pub thumbnail: (u32, u32),
}

/// Runs the processor once.
pub async fn run(inputs: Inputs, context: Context) -> Result<ProcessorResult, ProcessorError> {
    let params: Params = inputs.params_as()?;
    let max_size = params.max_size.unwrap_or(DEFAULT_MAX_SIZE);
    if !(1..=4096).contains(&max_size) {
        return Err(ProcessorError::invalid_inputs("max_size must be between 1 and 4096"));
    }
    let file = context.input_file(&params.image.artifact).cloned().ok_or_else(|| {
        ProcessorError::invalid_inputs(format!(
            "the image {} did not arrive with the run (attach it with --attach)",
            params.image.artifact
        ))
    })?;
    let (png, dimensions) = if context.mode() == Mode::Mock {
        let dimensions = json!({
            "mock": true,
            "source": {"cid": file.cid.to_string(), "size_bytes": file.size_bytes},
            "thumbnail": {"width": 1, "height": 1},
            "max_size": max_size,
        });
        (MOCK_PNG.to_vec(), dimensions)
    } else {
        context.info(format!("resizing {} ({} bytes)", file.world_path, file.size_bytes));
        tokio::task::spawn_blocking(move || thumbnail_of(&file, max_size))
            .await
            .map_err(|error| ProcessorError::runtime(error.to_string()))??
    };
    Ok(ProcessorResult {
        outputs: vec![
            OutputItem::bytes("thumbnail.png", "image/png", png),
            OutputItem::json("dimensions.json", &dimensions)?,
        ],
        processor_info: identity().processor_info,
        ..ProcessorResult::default()
    })
}

fn thumbnail_of(
    file: &InputFile,
    max_size: u32,
) -> Result<(Vec<u8>, serde_json::Value), ProcessorError> {
    let (format, source) = decode(&file.path).map_err(|reason| {
        ProcessorError::invalid_inputs(format!(
            "{} is not a readable image: {reason}",
            file.world_path
        ))
    })?;
    let thumbnail = resize(&source, max_size);
    let png = encode_png(&thumbnail)?;
    let dimensions = Dimensions {
        source: (source.width(), source.height()),
        thumbnail: (thumbnail.width(), thumbnail.height()),
    };
    let json = json!({
        "source": {"width": dimensions.source.0, "height": dimensions.source.1, "format": format},
        "thumbnail": {"width": dimensions.thumbnail.0, "height": dimensions.thumbnail.1},
        "max_size": max_size,
    });
    Ok((png, json))
}

/// Decodes a PNG or JPEG, guessing the format from its bytes, within size and memory limits.
fn decode(path: &Path) -> Result<(&'static str, DynamicImage), String> {
    let mut reader = ImageReader::open(path)
        .map_err(|error| error.to_string())?
        .with_guessed_format()
        .map_err(|error| error.to_string())?;
    let format = match reader.format() {
        Some(ImageFormat::Png) => "png",
        Some(ImageFormat::Jpeg) => "jpeg",
        _ => return Err("only PNG and JPEG images are supported".into()),
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader.decode().map_err(|error| error.to_string())?;
    Ok((format, image))
}

/// Scales `source` to fit a `max_size` square, keeping its aspect ratio; never enlarges.
pub fn resize(source: &DynamicImage, max_size: u32) -> DynamicImage {
    if source.width() <= max_size && source.height() <= max_size {
        return source.clone();
    }
    source.resize(max_size, max_size, image::imageops::FilterType::Triangle)
}

/// Encodes an image as PNG, in memory (thumbnails are small).
pub fn encode_png(image: &DynamicImage) -> Result<Vec<u8>, ProcessorError> {
    let mut png = Vec::new();
    image.write_to(&mut Cursor::new(&mut png), ImageFormat::Png).map_err(|error| {
        ProcessorError::runtime(format!("cannot encode the thumbnail: {error}"))
    })?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use image::{GenericImageView, RgbImage};

    use super::{DynamicImage, MOCK_PNG, resize};

    #[test]
    fn the_mock_thumbnail_is_a_one_pixel_png() {
        let decoded = image::load_from_memory(MOCK_PNG).expect("a valid PNG");
        assert_eq!(decoded.dimensions(), (1, 1));
    }

    #[test]
    fn resizing_keeps_the_aspect_ratio_and_never_enlarges() {
        let wide = DynamicImage::ImageRgb8(RgbImage::new(400, 100));
        assert_eq!(resize(&wide, 128).dimensions(), (128, 32));
        let tall = DynamicImage::ImageRgb8(RgbImage::new(30, 90));
        assert_eq!(resize(&tall, 45).dimensions(), (15, 45));
        let small = DynamicImage::ImageRgb8(RgbImage::new(20, 10));
        assert_eq!(resize(&small, 128).dimensions(), (20, 10));
    }
}
