//! What is read from the running kernel, as opposed to a type source or a
//! spec: its functions (/proc/kallsyms, the kprobe blacklist,
//! `available_filter_functions`, its build configuration) and the checks
//! made against them, the syscalls its tracepoints describe, and what its
//! tracefs says it supports. Nothing here mounts or writes anything.

pub mod checks;
pub mod kallsyms;
pub mod symbols;
pub mod syscalls;

pub use checks::check;
pub use symbols::KernelSymbols;

use crate::tracefs::Tracefs;

/// Whether the running kernel's probe events take `$argN` (its tracefs
/// README lists `$arg<N>`; Linux 4.20+ on x86_64). None when tracefs is
/// not readable.
pub fn has_argn() -> Option<bool> {
    let readme = Tracefs::find()?.read("README").ok()?;
    Some(readme.contains("$arg<N>"))
}
