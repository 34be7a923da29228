//! Filters are checked before anything is installed, and reported like
//! the other spec errors (the filter under carets, the nearest names,
//! exit 2, no script): their grammar is the kernel's, every name must be
//! a field of the event, every literal one the kernel compares with that
//! field as meant. On this machine's kernel the checker is held against
//! the kernel's own filter parser, filter by filter.

mod common;

use common::cli::{golden, k61, run};
use common::skip::{is_root, skip};

/// `-S` on the 6.1 fixture: exit 2, nothing on stdout, stderr as golden.
fn refused(probes: &[&str], golden_name: &str) {
    let fx = k61();
    let mut args = vec!["-S", "-a", "x86_64", "-v", fx.to_str().unwrap()];
    args.extend_from_slice(probes);
    let out = run(&args);
    let err = String::from_utf8(out.stderr).unwrap();
    golden(&format!("errors/{golden_name}"), &err);
    assert_eq!(out.status.code(), Some(2), "{probes:?}");
    assert!(out.stdout.is_empty(), "{probes:?} printed a script");
}

/// Grammar mistakes: every probe's at once.
#[test]
fn filter_syntax() {
    refused(
        &[
            "p vfs_read n=count f:n >",
            "p vfs_read n=count f:n = 3",
            "p vfs_read n=count f:(n > 1 || n < 0",
            "p vfs_read n=count f:n > 1 n < 0",
            "p vfs_read n=count f:n > 1 &&",
        ],
        "filter_syntax.txt",
    );
}

/// Names that are not fields, literals of the wrong kind or size.
#[test]
fn filter_names_and_literals() {
    refused(
        &[
            "p vfs_read n=count f:nn == 3",
            "p do_sys_openat2 d=dfd name=filename f:name == 3 || d == \"x\" || d > 300000000000",
            "p vfs_read n=count f:n ~ \"1*\" && comm < \"b\" && n == -1",
            "t sched:sched_switch f:common_pid == bash",
        ],
        "filter_names_and_literals.txt",
    );
}

/// A user filter stays one term when coolkprobe adds its own (`-p`):
/// it cannot close the parenthesis it is put in.
#[test]
fn a_filter_cannot_escape_its_parentheses() {
    let fx = k61();
    let out = run(&[
        "-S",
        "-v",
        fx.to_str().unwrap(),
        "-p",
        "999999",
        "p do_exit f:common_pid>0) || (common_pid>0",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert!(err.contains("`)` without a matching `(`"), "{err}");
}

/// Filters that are right pass unchanged (but for the literals that must
/// be translated), whatever their spacing.
#[test]
fn good_filters_pass() {
    let fx = k61();
    let out = run(&[
        "-S",
        "-v",
        fx.to_str().unwrap(),
        "p do_sys_openat2 d=dfd name=filename f:!(d == -100) && (name ~ \"/tmp/*\" || common_pid != 1) && cpu < 4",
        "t sched:sched_switch f:prev_comm == 'bash' || whatever & 0x4",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "echo '!(d == -100) && (name ~ \"/tmp/*\" || common_pid != 1) && cpu < 4' > $T/events/coolkprobe_"
        ),
        "{stdout}"
    );
    // Another kernel's tracepoint: its fields cannot be read here, so
    // its own names are left to that kernel.
    assert!(
        stdout.contains("echo 'prev_comm == '\\''bash'\\'' || whatever & 0x4' > $T/events/sched/sched_switch/filter"),
        "{stdout}"
    );
}

/// On this machine's kernel, a tracepoint's filter is checked against its
/// format, and every verdict of the checker is the kernel's own: each
/// filter is given to coolkprobe (`-S`, which reads the format) and
/// written to the event's filter in an instance of this test's own.
/// Where coolkprobe is stricter on purpose (a value the kernel would
/// truncate, a dangling `&&`), that is said.
#[test]
fn the_kernel_agrees_with_the_checker() {
    if !is_root() {
        return skip("not root: tracefs formats and filters need root");
    }
    let root = std::path::Path::new("/sys/kernel/tracing");
    if !root.join("events/sched/sched_switch/format").exists() {
        return skip("no sched:sched_switch tracepoint in tracefs");
    }
    let inst = root.join(format!("instances/coolkprobe_{}", std::process::id()));
    std::fs::create_dir(&inst).unwrap();
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _rm = Rm(inst.clone());
    let file = inst.join("events/sched/sched_switch/filter");
    // (filter, coolkprobe accepts, the kernel accepts)
    let cases: &[(&str, bool, bool)] = &[
        ("prev_pid == 1", true, true),
        ("prev_comm == \"bash\"", true, true),
        ("prev_comm == 'bash'", true, true),
        ("prev_comm ~ \"ba*\" && !(next_pid < 10)", true, true),
        (
            "prev_pid == 1 || prev_pid == 2 && next_pid == 3",
            true,
            true,
        ),
        ("!!prev_pid == 1", true, true),
        ("prev_pid & 0x3", true, true),
        ("prev_pid == -0x10", true, true),
        ("prev_pid == 010", true, true),
        (
            "common_pid != 0 && common_flags < 2 && cpu == 0",
            true,
            true,
        ),
        ("comm ~ \"sys*\" && CPU != 1", true, true),
        ("prev_comm == bash", false, false),
        ("prev_comm < \"a\"", false, false),
        ("prev_pid ~ \"1\"", false, false),
        ("prev_pid == \"1\"", false, false),
        ("prev_pid == 08", false, false),
        ("prev_pid == 1.5", false, false),
        ("prev_comm & 3", false, false),
        ("prev_pid = 1", false, false),
        ("prev_pid", false, false),
        ("prev_pid ==", false, false),
        ("prev_pid == 1 prev_pid == 2", false, false),
        ("prev_pid == 1)", false, false),
        ("((prev_pid == 1)", false, false),
        ("prev_pdi == 1", false, false),
        ("common_flags == -1", false, false),
        ("&& prev_pid == 1", false, false),
        ("prev_comm == \"a", false, false),
        ("()", false, false),
        // Stricter on purpose: the kernel compares a truncated value, or
        // takes a dangling operator as nothing.
        ("prev_pid > 300000000000", false, true),
        ("common_flags == 256", false, true),
        ("prev_pid == 1 ||", false, true),
        ("prev_pid == 1 &&", false, true),
    ];
    let mut wrong = Vec::new();
    for &(f, ours_ok, kernel_ok) in cases {
        let out = run(&["-S", &format!("t sched:sched_switch f:{f}")]);
        let ours = match out.status.code() {
            Some(0) => true,
            Some(2) => false,
            c => panic!("{f}: exit {c:?}: {}", String::from_utf8_lossy(&out.stderr)),
        };
        let kernel = std::fs::write(&file, f).is_ok();
        let _ = std::fs::write(&file, "0");
        if ours != ours_ok || kernel != kernel_ok {
            wrong.push(format!(
                "{f}: coolkprobe {ours} (want {ours_ok}), kernel {kernel} (want {kernel_ok}): {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The format's names and signs are what it is checked against.
    let out = run(&["-S", "t sched:sched_switch f:prev_comn == \"x\""]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean `prev_comm`?"), "{err}");
    if root
        .join("events/syscalls/sys_enter_openat/format")
        .exists()
    {
        // Syscall tracepoints record every argument as an unsigned word.
        let out = run(&["-S", "t syscalls:sys_enter_openat f:dfd == -100"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("0xffffffffffffff9c"), "{err}");
    }
}
