//! Helpers shared by integration tests.
#![allow(dead_code)]

pub mod cli;
pub mod dbg_kernel;
pub mod fixtures;
pub mod pahole;
pub mod skip;
pub mod trace;
