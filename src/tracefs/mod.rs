//! Install, enable and tear down probes through tracefs.

pub mod commands;
