//! Raw fetchargs and places are checked the way the target kernel will
//! read them, before anything is installed (exit 2): register names of
//! the target arch, instruction alignment inside a function, the
//! kernel's comment character and length limits, balanced parentheses,
//! control characters from a probe file, a uprobe offset past the end of
//! its function; relative binary paths are resolved.

mod common;

use common::cli::{fixture, golden, k61, run};

const ARM64: &str = "vmlinux-6.12.117+deb12-cloud-arm64.btf";

fn refused(args: &[&str], golden_name: &str) {
    let out = run(args);
    let err = String::from_utf8(out.stderr).unwrap();
    golden(&format!("errors/{golden_name}"), &err);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?} printed a script");
}

/// What the kernel's parser reads otherwise than written: a `#` (the rest
/// of the line is a comment), unbalanced parentheses.
#[test]
fn raw_text_the_kernel_misreads() {
    refused(
        &[
            "-S",
            "p do_exit a=%di:s64#x b=%si:s64",
            "p do_exit a=+8(%si:u32",
            "p do_exit a=+8(%si)):u32",
            "p /tmp/a#b:0x10",
        ],
        "raw_text.txt",
    );
}

/// Registers and alignment of another arch (`-a arm64`), the kernel's
/// limits on names and fetchargs.
#[test]
fn raw_fetchargs_against_the_target() {
    let arm = fixture(ARM64);
    refused(
        &[
            "-S",
            "-a",
            "arm64",
            "-v",
            arm.to_str().unwrap(),
            "p do_sys_openat2 fn=+0(%si):string",
            "p do_sys_openat2+2",
            "p do_sys_openat2 x=%x31 y=%X0",
        ],
        "raw_fetchargs_arm64.txt",
    );
    let fx = k61();
    refused(
        &[
            "-S",
            "-v",
            fx.to_str().unwrap(),
            "p do_exit a_name_longer_than_the_kernel_takes=%di",
            "p do_exit common_pid=%di",
            "p do_exit x=+0x10(+0x20(+0x30(+0x40(+0x50(+0x60(+0x70(+0x80(+0x90(%di))))))))):string",
            "p do_exit r=%rdi",
        ],
        "raw_limits.txt",
    );
}

/// A control character from a probe file is refused where it is, and
/// shown without reaching the terminal.
#[test]
fn control_characters_from_a_file() {
    let dir = std::env::temp_dir().join(format!("ckp-raw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("probes");
    std::fs::write(&file, b"p do_exit a=%di\x01\np do_exit b=%si\x00\n").unwrap();
    let out = run(&["-S", "-f", file.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(
        err.replace(file.to_str().unwrap(), "FILE"),
        "error: a control character (0x01) in the probe\n  --> FILE:1\n  p do_exit a=%di\u{fffd}\n                 ^\n\
         help: probes are text; remove it (a probe file is one probe per line)\n\
         error: a control character (0x00) in the probe\n  --> FILE:2\n  p do_exit b=%si\u{fffd}\n                 ^\n\
         help: probes are text; remove it (a probe file is one probe per line)\n"
    );
}

/// A uprobe `SYMBOL+OFFSET` stays inside the symbol; a relative path is
/// the file it names from here.
#[test]
fn uprobe_places() {
    let exe = env!("CARGO_BIN_EXE_coolkprobe");
    let out = run(&["-S", &format!("p {exe}:main+0x100000")]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: `+0x100000` is outside `main` (0x"),
        "{err}"
    );
    assert!(
        err.contains("help: offsets count from the function's first byte"),
        "{err}"
    );

    let dir = std::env::temp_dir().join(format!("ckp-rel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(exe, dir.join("prog")).unwrap();
    let out = std::process::Command::new(exe)
        .current_dir(&dir)
        .args(["-S", "p ./prog:main", "r ../ckp-rel-missing/x:0x10"])
        .output()
        .unwrap();
    let dir = std::fs::canonicalize(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        stdout.contains(&format!(" {}:0x", dir.join("prog").display())),
        "{stdout}"
    );
    // Not here (a script for another machine): made absolute as written.
    assert!(
        stdout.contains(&format!(" {}/../ckp-rel-missing/x:0x10'", dir.display())),
        "{stdout}"
    );
}
