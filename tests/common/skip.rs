//! Tests that need what a machine may lack (root, a kernel feature) say
//! so when they do not run; under CI (which runs as root on a kernel
//! with tracefs) not running is a failure, never a silent pass.

/// Say that the calling test did not run, and why; a failure under CI
/// (`CI` set, as CI runners do).
pub fn skip(why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
        panic!("skipped under CI: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
