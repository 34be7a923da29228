//! Every option is parsed and range-checked before anything else is done:
//! a bad one is an input error (exit 2) that names it, in `-S` and in a
//! live run alike, with nothing printed on stdout and nothing installed;
//! nothing panics on a number too large; each error says its cause once.

mod common;

use common::cli::run;

/// `args` must be refused with exit 2, stderr holding `want`.
fn refused(args: &[&str], want: &str) {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?} printed something");
    assert!(err.contains(want), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

#[test]
fn files_named_by_options() {
    for show in [&["-S"][..], &[]] {
        let with = |a: &[&'static str]| -> Vec<&'static str> { [show, a].concat() };
        refused(
            &with(&["-v", "/nonexistent", "p x"]),
            "error: -v /nonexistent: cannot read it: No such file or directory",
        );
        // A directory is a fleet of kernels (README, "Fleets"): one
        // without any kernel's types is refused.
        let empty: &'static str = empty_dir().leak();
        refused(
            &with(&["-v", empty, "p do_exit"]),
            &format!("error: -v {empty}: no kernel's types in it (BTF files, vmlinux files"),
        );
        refused(
            &with(&["-f", "/nonexistent"]),
            "error: -f /nonexistent: cannot read it",
        );
        refused(
            &with(&["-o", "/nonexistent/out", "p do_exit"]),
            "error: -o /nonexistent/out: no directory /nonexistent",
        );
        refused(
            &with(&["-o", "/tmp", "p do_exit"]),
            "error: -o /tmp: it is a directory",
        );
    }
}

#[test]
fn numbers_in_range() {
    for show in [&["-S"][..], &[]] {
        let with = |a: &[&'static str]| -> Vec<&'static str> { [show, a].concat() };
        refused(&with(&["-d", "5x", "p do_exit"]), "bad duration `5x`");
        refused(
            &with(&["-d", "18446744073709551616", "p do_exit"]),
            "at most 365 days",
        );
        refused(
            &with(&["-d", "9223372036854775807", "p do_exit"]),
            "at most 365 days",
        );
        refused(&with(&["-d", "0", "p do_exit"]), "longer than 0");
        refused(&with(&["-i", "0", "p do_exit"]), "longer than 0");
        refused(&with(&["-c", "0", "p do_exit"]), "at least 1");
        refused(&with(&["--agg-size", "7", "p do_exit"]), "--agg-size");
    }
}

#[test]
fn discovery_says_what_it_did_not_find() {
    refused(&["--funcs", "["], "`[` is in no function name");
    let fx = common::cli::k61();
    refused(
        &["-v", fx.to_str().unwrap(), "--funcs", "vfs_raed"],
        "help: did you mean `vfs_read`?",
    );
}

/// An error quoting its cause does not repeat it (it did:
/// "Is a directory (os error 21): Is a directory (os error 21)").
#[test]
fn each_cause_once() {
    let empty = empty_dir();
    let out = run(&["-S", "-v", &empty, "p do_exit a=%0->pid"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("kernel's types").count(), 1, "{err}");
    assert_eq!(err.matches(empty.as_str()).count(), 1, "{err}");
}

/// An empty directory of this test process's own.
fn empty_dir() -> String {
    let d = std::env::temp_dir().join(format!("ckp-options-empty-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.display().to_string()
}

/// `-S -o FILE` writes the script there; options only a live run uses are
/// said to be ignored.
#[test]
fn show_mode_options() {
    let path = std::env::temp_dir().join(format!("ckp-script-{}.sh", std::process::id()));
    let p = path.to_str().unwrap();
    let out = run(&["-S", "-o", p, "-d", "5", "--json", "p do_exit"]);
    let script = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert!(script.starts_with("#!/bin/sh\n") && script.contains(" do_exit' >> $T/kprobe_events"));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("warning: -d, --json are for a live run: -S prints the script and ignores them"));
}
