//! The `image-thumbnail` binary: serves `image/thumbnail@1` on `PORT`.

fn main() -> std::process::ExitCode {
    theory_processor::main(image_thumbnail::identity(), image_thumbnail::run)
}
