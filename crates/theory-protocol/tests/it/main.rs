//! Integration tests of the wire types: snapshots, round trips, the original system's frames,
//! handshake rules and properties.

mod fixtures;
mod frames;
mod fuzz;
mod handshake;
mod properties;
