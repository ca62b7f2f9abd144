//! Random suffixes for container names and temp files.

/// `2 * bytes` random lowercase hex digits.
pub(crate) fn random_hex(bytes: usize) -> String {
    use std::fmt::Write as _;
    let mut random = vec![0u8; bytes];
    // Without entropy the suffix is zeros; names stay valid and collisions are caught by Docker.
    let _ = getrandom::fill(&mut random);
    random.iter().fold(String::with_capacity(bytes * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}
