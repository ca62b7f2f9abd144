//! New execution ids: time-ordered, so sorting ids sorts runs by start time.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use theory_protocol::ExecutionId;

/// Crockford's base32 alphabet, as ULIDs use.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The last id handed out in this process, to stay monotonic within one millisecond.
static LAST: Mutex<(u64, u128)> = Mutex::new((0, 0));

/// Returns a new ULID-shaped id: 26 characters, 48 bits of milliseconds then 80 random bits.
/// Ids made in the same millisecond by this process still sort in the order they were made.
pub fn new_execution_id() -> ExecutionId {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    let mut random = [0u8; 16];
    // Without an entropy source the time and a counter still make ids unique in this process.
    let _ = getrandom::fill(&mut random);
    let random = u128::from_le_bytes(random) & ((1 << 80) - 1);
    let value = {
        let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let value = if millis <= last.0 { (last.0, last.1 + 1) } else { (millis, random) };
        *last = value;
        (u128::from(value.0) << 80) | (value.1 & ((1 << 80) - 1))
    };
    let text: String = (0..26)
        .rev()
        .map(|index| ALPHABET[((value >> (index * 5)) & 31) as usize] as char)
        .collect();
    text.parse().unwrap_or_else(|_| unreachable!("base32 ids are valid execution ids"))
}

#[cfg(test)]
mod tests {
    use super::new_execution_id;

    #[test]
    fn ids_are_unique_and_ordered() {
        let ids: Vec<String> = (0..1000).map(|_| new_execution_id().to_string()).collect();
        assert!(ids.iter().all(|id| id.len() == 26));
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids);
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }
}
