//! Latencies on this machine's kernel, which has no synthetic events: the
//! user-space pairing, as root. A program sleeps known durations (1, 10
//! and 50 ms) in a function of its own, recursively, nested, and through
//! the nanosleep syscall; `l` on its functions and `since(f0)` between
//! the syscall's tracepoints must give each call with its entry values
//! and a latency no shorter than asked. Shares the live tests' lock (one
//! tracefs).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TRACEFS: &str = "/sys/kernel/tracing";
const MS: u64 = 1_000_000;

fn lock() -> Option<std::fs::File> {
    common::trace::live_lock("live latency")
}

/// Names itself `ckplat`, sleeps 2 s, waits for a go (a byte on stdin), then sleeps
/// through `sleeper` 1, 10 and 50 ms, recurses four deep with 2 ms at
/// each level, calls `outer` (5 ms around a 3 ms `sleeper`), and sleeps
/// 1, 10 and 50 ms through the nanosleep syscall itself (glibc's
/// nanosleep() is clock_nanosleep). When the tracing starts it is inside
/// a 2 s nanosleep syscall, whose exit the tracer sees without its entry. (A return probe is armed at its function's entry: a call begun
/// before the run has no return event either.)
const PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
static void nap(long ns) { struct timespec t = { ns / 1000000000, ns % 1000000000 }; nanosleep(&t, 0); }
static void sys_nap(long ns) { struct timespec t = { ns / 1000000000, ns % 1000000000 }; syscall(SYS_nanosleep, &t, 0); }
__attribute__((noinline)) long sleeper(long ns, const char *tag) { nap(ns); return ns / 1000; }
__attribute__((noinline)) long rec(int depth, long ns) {
    long r = depth > 0 ? rec(depth - 1, ns) : 0;
    nap(ns);
    return r + 1;
}
__attribute__((noinline)) long outer(long ns) { long r = sleeper(3000000, "inner"); nap(ns); return r; }
__attribute__((noinline)) void waiter(void) { char c; if (read(0, &c, 1) != 1) exit(1); }
int main(void) {
    prctl(PR_SET_NAME, "ckplat");
    /* Inside the syscall when the tracing starts. */
    sys_nap(2000000000);
    waiter();
    sleeper(1000000, "one");
    sleeper(10000000, "ten");
    sleeper(50000000, "fifty");
    rec(3, 2000000);
    outer(5000000);
    sys_nap(1000000);
    sys_nap(10000000);
    sys_nap(50000000);
    nap(1600000000);
    return 0;
}
"#;

fn build() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ckp-lat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join("latwork.c");
    std::fs::write(&c, PROGRAM).unwrap();
    let out = dir.join("latwork");
    let st = Command::new("gcc")
        .args(["-O1", "-g", "-o"])
        .arg(&out)
        .arg(&c)
        .status()
        .expect("gcc");
    assert!(st.success());
    out
}

fn coolkprobe(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until every event of the run is enabled in its instance.
fn wait_enabled(child: &Child, n: usize) {
    let pid = child.id();
    let g = coolkprobe::tracefs::run_group(pid);
    let dir = PathBuf::from(format!("{TRACEFS}/instances/{g}/events/{g}"));
    let tps = PathBuf::from(format!("{TRACEFS}/instances/{g}/events/syscalls"));
    let t0 = Instant::now();
    loop {
        let count = |d: &Path| {
            std::fs::read_dir(d).map_or(0, |rd| {
                rd.flatten()
                    .filter(|e| {
                        std::fs::read_to_string(e.path().join("enable"))
                            .is_ok_and(|t| t.trim() == "1")
                    })
                    .count()
            })
        };
        if count(&dir) + count(&tps) >= n {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "run {pid} never enabled its events"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(child: Child) -> (String, String) {
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), err)
}

/// Run the program under `specs` (with `n` events to enable), as JSON.
fn trace(bin: &Path, specs: &[String], n: usize) -> (Vec<Value>, String, u32) {
    let mut prog = Command::new(bin).stdin(Stdio::piped()).spawn().unwrap();
    // Let it get inside its first nanosleep.
    std::thread::sleep(Duration::from_millis(100));
    let mut args = vec!["--json".to_string(), "-p".into(), prog.id().to_string()];
    args.extend(specs.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ckp = coolkprobe(&args);
    wait_enabled(&ckp, n);
    use std::io::Write as _;
    prog.stdin.take().unwrap().write_all(b"g").unwrap();
    let pid = prog.id();
    assert!(prog.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    let group = coolkprobe::tracefs::run_group(ckp.id());
    let (out, err) = stop(ckp);
    // Nothing of the run is left.
    let uprobes = std::fs::read_to_string(format!("{TRACEFS}/uprobe_events")).unwrap();
    assert!(!uprobes.contains(&format!("{group}/")), "{uprobes}");
    assert!(!Path::new(&format!("{TRACEFS}/instances/{group}")).exists());
    let vals = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (vals, err, pid)
}

fn of<'a>(vals: &'a [Value], event: &str) -> Vec<&'a Value> {
    vals.iter()
        .filter(|v| v["event"] == event && v.get("args").is_some())
        .collect()
}

fn lat(v: &Value) -> u64 {
    v["args"]["lat"]
        .as_u64()
        .unwrap_or_else(|| panic!("no lat: {v}"))
}

/// A latency no shorter than asked, and not absurdly longer (a loaded
/// machine delays wake-ups, never shortens them).
fn within(l: u64, asked: u64, v: &Value) {
    assert!(
        l >= asked && l < asked + 500 * MS,
        "latency {l} ns for {asked} ns: {v}"
    );
}

#[test]
fn user_space_pairing_of_uprobes_and_tracepoints() {
    let Some(_l) = lock() else { return };
    let bin = build();
    let b = bin.display();
    let specs = vec![
        format!("l {b}:sleeper ns=%di:s64 tag=+0(%si):ustring r=$retval:s64"),
        format!("l {b}:rec depth=%di:s32 r=$retval:s64"),
        format!("l {b}:outer ns=%di:s64"),
        "t syscalls:sys_enter_nanosleep".to_string(),
        "t syscalls:sys_exit_nanosleep lat=since(f3)".to_string(),
        format!("l {b}:sleeper ns=%di:s64 tag=+0(%si):ustring f:lat>=20ms"),
        format!("l {b}:sleeper ns=%di:s64 hist(lat)"),
        format!("l {b}:sleeper ns=%di:s64 tag=+0(%si):ustring max(lat)[comm]"),
    ];
    // Six `l` probes (entry and return each) and two tracepoints.
    let (vals, err, pid) = trace(&bin, &specs, 14);
    assert!(
        err.contains("pairing latencies in user space, every start and end streamed to coolkprobe (the running kernel cannot: it has no hist triggers"),
        "{err}"
    );
    // Each call of `sleeper`, with its entry values and return value.
    let calls: Vec<(i64, String, i64)> = of(&vals, "f0")
        .iter()
        .map(|v| {
            let a = &v["args"];
            within(lat(v), a["ns"].as_u64().unwrap(), v);
            assert_eq!(v["comm"], "ckplat");
            (
                a["ns"].as_i64().unwrap(),
                a["tag"].as_str().unwrap().to_string(),
                a["r"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            (1_000_000, "one".into(), 1000),
            (10_000_000, "ten".into(), 10000),
            (50_000_000, "fifty".into(), 50000),
            (3_000_000, "inner".into(), 3000),
        ],
        "{vals:?}"
    );
    // Recursion: innermost first; each level holds the ones inside it.
    let rec: Vec<(i64, i64, u64)> = of(&vals, "f1")
        .iter()
        .map(|v| {
            let a = &v["args"];
            (
                a["depth"].as_i64().unwrap(),
                a["r"].as_i64().unwrap(),
                lat(v),
            )
        })
        .collect();
    assert_eq!(
        rec.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(0, 1), (1, 2), (2, 3), (3, 4)]
    );
    for (i, r) in rec.iter().enumerate() {
        assert!(r.2 >= (i as u64 + 1) * 2 * MS, "{rec:?}");
        if i > 0 {
            assert!(r.2 > rec[i - 1].2 + 2 * MS, "{rec:?}");
        }
    }
    // Nesting: `outer` holds its `sleeper` call.
    let outer = of(&vals, "f2");
    assert_eq!(outer.len(), 1, "{vals:?}");
    let inner = of(&vals, "f0")[3];
    within(lat(outer[0]), lat(inner) + 5 * MS, outer[0]);
    // The syscall's tracepoints: its entry's fields come along (rqtp),
    // the exit's own (ret); the call that began before the run is not
    // paired, and is counted.
    let sys: Vec<&Value> = of(&vals, "f4");
    assert_eq!(sys.len(), 3, "{vals:?}");
    for (v, asked) in sys.iter().zip([1, 10, 50]) {
        within(lat(v), asked * MS, v);
        assert_eq!(v["args"]["ret"], 0, "{v}");
        assert!(
            v["args"]["rqtp"]
                .as_str()
                .is_some_and(|p| p.starts_with("0x")),
            "{v}"
        );
    }
    assert!(
        err.contains("f4: 3 completed; 1 ends without their start were not paired"),
        "{err}"
    );
    assert!(!err.contains("f0: "), "{err}");
    // The filter on the latency lets only the 50 ms call through.
    let slow = of(&vals, "f5");
    assert_eq!(slow.len(), 1, "{vals:?}");
    assert_eq!(slow[0]["args"]["tag"], "fifty");
    // The histogram has each call in the bucket of its latency.
    let hist = vals.iter().find(|v| v["event"] == "f6").unwrap();
    let mut want: Vec<(u64, u64)> = Vec::new();
    for v in of(&vals, "f0") {
        let l = lat(v);
        let k = 64 - (l - 1).leading_zeros();
        let lo = (1u64 << (k - 1)) + 1;
        match want.iter_mut().find(|w| w.0 == lo) {
            Some(w) => w.1 += 1,
            None => want.push((lo, 1)),
        }
    }
    want.sort();
    let got: Vec<(u64, u64)> = hist["rows"][0]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["min"].as_u64().unwrap(), b["count"].as_u64().unwrap()))
        .collect();
    // Each run pairs the same calls; their latencies differ by the
    // tracing itself, so the buckets are checked against the asked
    // durations' bounds too.
    assert_eq!(got.iter().map(|g| g.1).sum::<u64>(), 4, "{hist}");
    for (lo, _) in &got {
        assert!(
            [1, 3, 10, 50]
                .iter()
                .any(|ms| *lo <= ms * MS * 2 && ms * MS <= lo * 2),
            "{hist}"
        );
    }
    // The worst call, with its values.
    let max = vals.iter().find(|v| v["event"] == "f7").unwrap();
    let row = &max["rows"][0];
    assert_eq!(row["key"]["comm"], "ckplat", "{max}");
    assert_eq!(row["count"], 4, "{max}");
    assert_eq!(row["with"]["ns"], 50_000_000, "{max}");
    assert_eq!(row["with"]["tag"], "fifty", "{max}");
    within(row["max"].as_u64().unwrap(), 50 * MS, max);
    assert_eq!(row["max"], row["with"]["lat"], "{max}");
    let _ = pid;
}

#[test]
fn text_output_and_refusals() {
    let Some(_l) = lock() else { return };
    let bin = build();
    let b = bin.display();
    // Checked before anything is installed: exit 2.
    for (spec, msg) in [
        (
            format!("l {b}:sleeper lat=%di"),
            "`lat` is the latency of an `l` probe",
        ),
        (
            format!("l {b}:sleeper n=%di hist(m)"),
            "`m` is not a value of this probe",
        ),
        (
            format!("l {b}:sleeper n=%di f:lat>10h"),
            "`10h` is not a time to compare with `lat`",
        ),
        (
            "t syscalls:sys_exit_nanosleep lat=since(f7)".to_string(),
            "there is no probe f7",
        ),
        (
            "t syscalls:sys_exit_nanosleep lat=since(f0)".to_string(),
            "cannot start its own interval",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
            .args(["-S", &spec])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {err}");
        assert!(err.contains(msg), "{spec}: {err}");
    }
    // --latency kernel on a kernel without synthetic events.
    let out = Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(["--latency", "kernel", "-d", "1", &format!("l {b}:sleeper")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--latency kernel, but the running kernel cannot"),
        "{err}"
    );
    // Completed calls paired in user space cannot be aggregated by the
    // kernel, whatever it has (also in a -S script for another kernel).
    for show in [false, true] {
        let mut args = vec!["--agg", "kernel", "--latency", "user", "-d", "1"];
        if show {
            args.extend(["-S", "-v", "btf-fixtures/vmlinux-6.1.0-56-cloud-amd64.btf"]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .args([
                "t syscalls:sys_enter_nanosleep",
                "t syscalls:sys_exit_nanosleep lat=since(f0) hist(lat)",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("--agg kernel, but the latencies are paired in user space"),
            "{err}"
        );
    }
    // Text: the values, then the latency with its unit.
    let mut prog = Command::new(&bin).stdin(Stdio::piped()).spawn().unwrap();
    let ckp = coolkprobe(&[
        "-p",
        &prog.id().to_string(),
        &format!("l {b}:sleeper ns=%di:s64 tag=+0(%si):ustring"),
    ]);
    wait_enabled(&ckp, 2);
    use std::io::Write as _;
    prog.stdin.take().unwrap().write_all(b"g").unwrap();
    assert!(prog.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    let (out, _) = stop(ckp);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for (l, (ns, tag)) in lines.iter().zip([
        ("1000000", "one"),
        ("10000000", "ten"),
        ("50000000", "fifty"),
        ("3000000", "inner"),
    ]) {
        let want = format!("f0: ns={ns} tag=\"{tag}\" lat=");
        assert!(l.contains(&want), "{l}");
        assert!(l.ends_with("ms"), "{l}");
        assert!(l.trim_start().starts_with("ckplat-"), "{l}");
    }
}
