//! Test support shared by the integration tests.

#![allow(dead_code)] // each test binary uses part of it

pub mod fault_server;
pub mod http;

/// A cheap deterministic hash, so that fault patterns are the same every run.
pub fn mix(n: usize) -> u64 {
    let mut x = n as u64 ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
