//! Inputs and option values are bounded before anything is done: a
//! probe file or a type file without end, a CPU number the machine does
//! not have. Each is an error within moments, in little memory.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> (Output, Duration) {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(args)
        .output()
        .unwrap();
    (out, t0.elapsed())
}

/// Peak RSS of a finished child, from wait4's rusage (KiB).
fn run_rss(args: &[&str]) -> (Output, u64) {
    let child = Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // Collect the output first: the pipes are small.
    let out = std::thread::spawn(move || {
        let mut child = child;
        let mut o = Vec::new();
        let mut e = Vec::new();
        use std::io::Read;
        child.stdout.take().unwrap().read_to_end(&mut o).unwrap();
        child.stderr.take().unwrap().read_to_end(&mut e).unwrap();
        (o, e, child)
    });
    let (stdout, stderr, child) = out.join().unwrap();
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut ru) }, pid);
    std::mem::forget(child);
    use std::os::unix::process::ExitStatusExt;
    (
        Output {
            status: std::process::ExitStatus::from_raw(status),
            stdout,
            stderr,
        },
        ru.ru_maxrss as u64,
    )
}

#[test]
fn endless_probe_file() {
    let (out, rss) = run_rss(&["-S", "-f", "/dev/zero"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot read probe file /dev/zero: larger than 16 MiB"),
        "{err}"
    );
    assert!(rss < 64 * 1024, "peak RSS {rss} KiB");
}

#[test]
fn endless_type_file() {
    let (out, rss) = run_rss(&[
        "-S",
        "-v",
        "/dev/zero",
        "p do_exit x=%0~(struct task_struct)->pid",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("more than 64 MiB without a file size"),
        "{err}"
    );
    assert!(rss < 128 * 1024, "peak RSS {rss} KiB");
}

/// A CPU the machine does not have: refused before anything is
/// installed (the kernel said "Value too large for defined data type",
/// and 4294967295 built a 1.2 GB mask first).
#[test]
fn cpu_numbers_checked_against_the_machine() {
    if !common::skip::is_root() {
        common::skip::skip("option checks against the machine need root (a live run)");
        return;
    }
    let ncpu = std::fs::read_dir("/sys/kernel/tracing/per_cpu")
        .expect("tracefs as root")
        .count();
    for cpu in [ncpu.to_string(), "4294967295".to_string()] {
        let (out, t) = run(&["--cpu", &cpu, "-d", "1", "t syscalls:sys_enter_getppid"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "--cpu {cpu}: this machine has CPUs 0-{}",
                ncpu - 1
            )),
            "{err}"
        );
        assert!(!err.contains("mkdir"), "nothing installed: {err}");
        assert!(t < Duration::from_secs(5), "{t:?}");
    }
}
