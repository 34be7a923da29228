//! Aggregations on this machine's kernel, which has no hist triggers: the
//! user-space path, as root. A program reads 1, 100 and 5000 bytes a known
//! number of times; counting its reads at the `syscalls:sys_enter_read`
//! tracepoint and at a uprobe on its own read wrapper must give the same,
//! exact numbers. Shares the live tests' lock (one tracefs).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TRACEFS: &str = "/sys/kernel/tracing";

fn lock() -> Option<std::fs::File> {
    common::trace::live_lock("live aggregation")
}

/// Static (no loader reads before it renames itself). Names itself
/// `ckpreader`, reads SIZE bytes COUNT times through
/// `do_read` for each SIZE:COUNT argument, then stays alive a moment (so
/// that its name can still be looked up for the tracepoint, which records
/// only its pid).
const READER: &str = r#"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/prctl.h>
static char buf[65536];
__attribute__((noinline)) long do_read(int fd, long size) { return read(fd, buf, size); }
int main(int argc, char **argv) {
    prctl(PR_SET_NAME, "ckpreader");
    int fd = open("/dev/zero", O_RDONLY);
    for (int i = 1; i < argc; i++) {
        char *c = argv[i];
        long size = strtol(c, &c, 10), n = strtol(c + 1, 0, 10);
        for (long j = 0; j < n; j++) do_read(fd, size);
    }
    usleep(500000);
    return 0;
}
"#;

fn build_reader() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ckp-agg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join("aggwork.c");
    std::fs::write(&c, READER).unwrap();
    let out = dir.join("aggwork");
    let st = Command::new("gcc")
        .args(["-O1", "-g", "-static", "-o"])
        .arg(&out)
        .arg(&c)
        .status()
        .expect("gcc");
    assert!(st.success());
    out
}

fn start(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until the run's events are enabled in its instance.
fn wait_enabled(child: &Child) {
    let pid = child.id();
    let group = coolkprobe::tracefs::run_group(pid);
    let inst = PathBuf::from(format!("{TRACEFS}/instances/{group}/events"));
    let t0 = Instant::now();
    loop {
        let on = std::fs::read_dir(&inst).ok().is_some_and(|rd| {
            rd.flatten().any(|sys| {
                std::fs::read_dir(sys.path()).ok().is_some_and(|evs| {
                    evs.flatten().any(|e| {
                        std::fs::read_to_string(e.path().join("enable"))
                            .is_ok_and(|t| t.trim() == "1")
                    })
                })
            })
        });
        if on {
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn reader_row(aggs: &[Value], i: usize) -> &Value {
    aggs[i]["rows"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["key"]["comm"] == "ckpreader"))
        .unwrap_or_else(|| panic!("no ckpreader row: {}", aggs[i]))
}

fn buckets(row: &Value) -> Vec<(i64, i64, u64)> {
    row["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["min"].as_i64().unwrap(),
                b["max"].as_i64().unwrap(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn user_space_tracepoint_and_uprobe_agree() {
    let Some(_l) = lock() else { return };
    let bin = build_reader();
    let up = format!("p {}:do_read n=%si:u64", bin.display());
    let tp = "t syscalls:sys_enter_read";
    let mut results = Vec::new();
    for (place, v, filter) in [(up.as_str(), "n", ""), (tp, "count", "")] {
        let specs = [
            format!("{place} hist({v})[comm]{filter}"),
            format!("{place} sum({v})[comm]{filter}"),
            format!("{place} lhist({v},1000)[comm]{filter}"),
        ];
        let mut args = vec!["--json"];
        args.extend(specs.iter().map(String::as_str));
        let child = start(&args);
        wait_enabled(&child);
        let st = Command::new(&bin)
            .args(["1:10", "100:20", "5000:30"])
            .status()
            .unwrap();
        assert!(st.success());
        std::thread::sleep(Duration::from_millis(300));
        let (out, err) = stop(child);
        assert!(
            err.contains("aggregating in user space, every event streamed to coolkprobe (the running kernel cannot: it has no hist triggers"),
            "{err}"
        );
        let aggs: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(aggs.len(), 3, "{out}");
        assert!(aggs.iter().all(|a| a["path"] == "user" && a["lost"] == 0));
        let h = reader_row(&aggs, 0);
        assert_eq!(
            buckets(h),
            [(0, 1, 10), (65, 128, 20), (4097, 8192, 30)],
            "{place}: {h}"
        );
        let s = reader_row(&aggs, 1);
        assert_eq!(
            (s["count"].as_u64(), s["sum"].as_u64()),
            (Some(60), Some(10 + 2000 + 150000)),
            "{s}"
        );
        let l = reader_row(&aggs, 2);
        assert_eq!(buckets(l), [(0, 999, 30), (5000, 5999, 30)], "{l}");
        results.push((h.clone(), s.clone(), l.clone()));
    }
    assert_eq!(
        results[0], results[1],
        "the uprobe and the tracepoint disagree"
    );
}

#[test]
fn text_output_and_refusals() {
    let Some(_l) = lock() else { return };
    let bin = build_reader();
    let spec = format!(
        "p {}:do_read n=%si:u64 hist(n) count()[comm]",
        bin.display()
    );
    let child = start(&[&spec]);
    wait_enabled(&child);
    let st = Command::new(&bin).args(["1:3", "100:2"]).status().unwrap();
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(300));
    let (out, _) = stop(child);
    let want_hist = "\
f0: hist(n): 5 events
[0, 1]    3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
(1, 2]    0 |                                        |
(2, 4]    0 |                                        |
(4, 8]    0 |                                        |
(8, 16]   0 |                                        |
(16, 32]  0 |                                        |
(32, 64]  0 |                                        |
(64, 128] 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@             |
";
    assert!(out.starts_with(want_hist), "{out}");
    assert!(
        out.contains("f0: count()[comm]: 5 events\ncomm       count\nckpreader      5\n"),
        "{out}"
    );
    // Refused before anything is installed: exit 2, nothing left.
    for (bad, msg) in [
        (
            format!("p {}:do_read n=%si:u64 hist(m)", bin.display()),
            "`m` is not a value of this probe",
        ),
        (
            format!(
                "p {}:do_read n=%si:u64 count()[comm,pid,cpu,n]",
                bin.display()
            ),
            "too many keys",
        ),
        (
            "t sched:sched_switch hist(prev_comm)".to_string(),
            "`prev_comm` is a string",
        ),
        (
            "t syscalls:sys_enter_read count()[nosuch]".to_string(),
            "unknown key `nosuch`",
        ),
    ] {
        // `-d 1`: should the check ever miss, the run still ends.
        let out = Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
            .args(["-d", "1"])
            .arg(&bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains(msg), "{bad}: {err}");
        assert!(
            !err.contains("mkdir"),
            "{bad}: something was installed: {err}"
        );
    }
    let ue = std::fs::read_to_string(format!("{TRACEFS}/uprobe_events")).unwrap();
    assert!(!ue.contains(&*bin.to_string_lossy()), "{ue}");
}

/// `-i/--interval` prints every table at each interval, with the totals so
/// far (as the kernel's `hist` file shows them), then once more at the end:
/// counts only grow, an interval between two bursts of reads shows the first
/// burst alone, and the last interval and the final tables agree.
#[test]
fn interval_prints_totals_so_far() {
    let Some(_l) = lock() else { return };
    let bin = build_reader();
    let spec = format!("p {}:do_read n=%si:u64 count()[comm]", bin.display());
    let child = start(&["--json", "-i", "250ms", &spec]);
    wait_enabled(&child);
    // Each burst is followed by well over one interval of quiet.
    for burst in ["1:5", "1:7"] {
        let st = Command::new(&bin).arg(burst).status().unwrap();
        assert!(st.success());
        std::thread::sleep(Duration::from_millis(900));
    }
    let (out, _) = stop(child);
    let tables: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let (last, intervals) = tables.split_last().expect("no output");
    assert!(intervals.len() >= 4, "{out}");
    assert!(last.get("elapsed").is_none(), "the final table: {last}");
    let count = |t: &Value| {
        t["rows"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["key"]["comm"] == "ckpreader"))
            .map_or(0, |r| r["count"].as_u64().unwrap())
    };
    let mut seen = Vec::new();
    let mut at = 0.0;
    for t in intervals {
        let e = t["elapsed"].as_f64().unwrap_or_else(|| panic!("{t}"));
        assert!(e > at, "elapsed does not grow: {out}");
        at = e;
        let c = count(t);
        assert!(seen.last().is_none_or(|&p| c >= p), "a total shrank: {out}");
        seen.push(c);
    }
    assert!(seen.contains(&5), "no interval between the bursts: {out}");
    assert_eq!(seen.last(), Some(&12), "{out}");
    assert_eq!(count(last), 12, "{out}");
}
