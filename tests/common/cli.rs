//! Running the `coolkprobe` binary on the fixture kernels, and comparing
//! what it prints with golden files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A file of btf-fixtures/.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("btf-fixtures")
        .join(name)
}

/// Debian's 6.1 cloud kernel: the README's examples' offsets.
pub const K61: &str = "vmlinux-6.1.0-56-cloud-amd64.btf";

pub fn k61() -> PathBuf {
    fixture(K61)
}

/// The binary with these arguments.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(args)
        .output()
        .unwrap()
}

/// `text` with each run's PID in a group name (`coolkprobe_123`)
/// replaced by `<PID>`.
pub fn normalised(text: &str) -> String {
    let mut res = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("coolkprobe_") {
        res.push_str(&rest[..i + "coolkprobe_".len()]);
        rest = &rest[i + "coolkprobe_".len()..];
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        assert!(digits > 0, "group without a pid");
        res.push_str("<PID>");
        rest = &rest[digits..];
    }
    res.push_str(rest);
    res
}

/// stdout of a run, [`normalised`].
pub fn stdout_normalised(out: &Output) -> String {
    normalised(&String::from_utf8(out.stdout.clone()).unwrap())
}

/// `actual` must be exactly tests/golden/NAME. `SNAPSHOTS=overwrite cargo
/// test` rewrites the golden files from what the tests see (then review
/// the diff).
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    snapbox::assert_data_eq!(actual, snapbox::Data::read_from(&path, None).raw());
}
