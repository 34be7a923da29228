//! One live run of the `coolkprobe` binary around a workload: started,
//! waited for until every event of its group is enabled, the workload
//! run, then the run's own end (`-c`, `-d`) awaited. Live tests hold one
//! file lock across test binaries: they share tracefs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The lock every live test holds; None (and a SKIPPED note, a failure
/// under CI) when not root.
pub fn live_lock(what: &str) -> Option<std::fs::File> {
    if !super::skip::is_root() {
        super::skip::skip(&format!("{what} needs root"));
        return None;
    }
    assert!(
        Path::new("/sys/kernel/tracing/events/header_page").exists(),
        "running as root but no tracefs at /sys/kernel/tracing: live tests cannot run"
    );
    let f = std::fs::File::create("/tmp/coolkprobe-live-tests.lock").unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    Some(f)
}

/// What a run printed.
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
}

/// The run's instance: `instances/coolkprobe_<PID>` (with any suffix).
fn instance_of(pid: u32) -> Option<std::path::PathBuf> {
    let dir = Path::new("/sys/kernel/tracing/instances");
    let want = format!("coolkprobe_{pid}");
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        (n == want || n.starts_with(&format!("{want}_"))).then(|| e.path())
    })
}

/// Whether `n` events of the run are enabled in its instance.
fn enabled(pid: u32, n: usize) -> bool {
    let Some(inst) = instance_of(pid) else {
        return false;
    };
    let Ok(groups) = std::fs::read_dir(inst.join("events")) else {
        return false;
    };
    let mut on = 0;
    for g in groups.flatten() {
        let Ok(evs) = std::fs::read_dir(g.path()) else {
            continue;
        };
        for e in evs.flatten() {
            if std::fs::read_to_string(e.path().join("enable")).is_ok_and(|s| s.starts_with('1')) {
                on += 1;
            }
        }
    }
    on >= n
}

/// Run coolkprobe with `args` (which should end it: `-c`/`-d`), wait
/// until `events` of its events are enabled, run `workload`, wait for the
/// end. Panics with what the run said if it fails or hangs.
pub fn trace(args: &[&str], events: usize, workload: impl FnOnce()) -> Ran {
    let child = Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let t0 = Instant::now();
    let mut child = child;
    while !enabled(pid, events) {
        if let Some(st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} ended ({st}) before its events were on: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?}: never ready: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    workload();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?}: the run did not end: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let ran = Ran {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        ran.stdout,
        ran.stderr
    );
    ran
}
