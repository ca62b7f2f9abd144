//! The filesystem store's contract: atomic writes, reads, deletes, odd keys.

mod filesystem;
