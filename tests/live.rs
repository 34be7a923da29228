//! Live runs on this machine's kernel, as root: a tracepoint driven by a
//! generator, a uprobe on a program built here, and teardown after every
//! way a run can end. Each run is a child process (this test binary
//! re-executed in "child" mode) so that signals and a closed stdout hit a
//! real process. All tests hold one file lock: they share tracefs.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use coolkprobe::compile::plan::{CompiledProbe, Display, FetchArg, FieldPlan, Plan, Target};

const TRACEFS: &str = "/sys/kernel/tracing";

// ---------------------------------------------------------------- child mode

/// The child's entry: runs one live session from environment variables.
/// Without CKP_CHILD it does nothing (it is only an entry point).
#[test]
fn zz_child_entry() {
    let Ok(spec) = std::env::var("CKP_CHILD") else {
        return;
    };
    let group = format!("coolkprobe_{}", std::process::id());
    if spec == "panic" {
        // A panic while a session is up: unwinding must tear it down.
        let plan = plan_from("tp|syscalls|sys_enter_getppid", &group);
        let fs = coolkprobe::tracefs::Tracefs::find_or_mount().unwrap();
        let _s = coolkprobe::tracefs::Session::start(fs, &plan, &Default::default()).unwrap();
        eprintln!("SESSION UP");
        panic!("deliberate panic with a live session");
    }
    let plan = plan_from(&spec, &group);
    let env = |k: &str| std::env::var(k).ok();
    let opts = coolkprobe::live::LiveOptions {
        json: env("CKP_JSON").is_some(),
        stack: env("CKP_STACK").is_some(),
        duration: env("CKP_DURATION").map(|d| coolkprobe::live::parse_duration(&d).unwrap()),
        count: env("CKP_COUNT").map(|c| c.parse().unwrap()),
        output: env("CKP_OUTPUT").map(PathBuf::from),
        pid: env("CKP_PID").map(|c| c.parse().unwrap()),
        buffer_kb: env("CKP_BUFFER_KB").map(|c| c.parse().unwrap()),
        cpus: env("CKP_CPUS").map_or(vec![], |c| {
            c.split(',').map(|x| x.parse().unwrap()).collect()
        }),
        echo: true,
        ..Default::default()
    };
    match coolkprobe::live::run(&opts, &plan) {
        Ok(s) => {
            coolkprobe::live::print_summary(&s);
            eprintln!("ENDED {:?}", s.ended);
        }
        Err(e) => {
            eprintln!("ERROR {e}");
            std::process::exit(3);
        }
    }
    std::process::exit(0);
}

/// `tp SYS EVENT [FILTER]` | `up PATH OFFSET` (entry + return probe) |
/// `bad PATH OFFSET` (second probe invalid: fails midway through install).
fn plan_from(spec: &str, group: &str) -> Plan {
    let w: Vec<&str> = spec.split('|').collect();
    let probe = |index, target, fetchargs: Vec<(&str, &str)>, spec: String, fields| CompiledProbe {
        index,
        spec,
        target,
        fetchargs: fetchargs
            .into_iter()
            .map(|(n, f)| FetchArg::raw(n, f))
            .collect(),
        filter: None,
        fields,
        aggs: vec![],
        latency: None,
    };
    let probes = match w[0] {
        "tp" => {
            let mut p = probe(
                0,
                Target::Tracepoint {
                    system: w[1].into(),
                    event: w[2].into(),
                },
                vec![],
                format!("t {}:{}", w[1], w[2]),
                vec![],
            );
            p.filter = w.get(3).map(|s| s.to_string());
            vec![p]
        }
        "up" | "bad" => {
            let path = PathBuf::from(w[1]);
            let offset = u64::from_str_radix(w[2].trim_start_matches("0x"), 16).unwrap();
            let entry = probe(
                0,
                Target::Uprobe {
                    ret: false,
                    path: path.clone(),
                    offset,
                    symbol: Some("probe_me".into()),
                },
                vec![("a", "%di:s64"), ("b", "%si"), ("bx", "%si:x32")],
                format!("p {}:probe_me a=%di b=%si", w[1]),
                vec![FieldPlan {
                    name: "b".into(),
                    display: Display::Signed,
                    ..Default::default()
                }],
            );
            let ret = probe(
                1,
                Target::Uprobe {
                    ret: true,
                    path,
                    offset,
                    symbol: Some("probe_me".into()),
                },
                if w[0] == "bad" {
                    vec![("r", "%nosuchreg")]
                } else {
                    vec![("r", "$retval:s32")]
                },
                format!("r {}:probe_me r=$retval", w[1]),
                vec![],
            );
            vec![entry, ret]
        }
        other => panic!("unknown child spec {other}"),
    };
    Plan {
        group: group.into(),
        probes,
    }
}

// ---------------------------------------------------------------- harness

struct Lock(#[allow(dead_code)] std::fs::File);

/// One live test at a time, across test binaries too.
fn lock() -> Option<Lock> {
    if !common::skip::is_root() {
        common::skip::skip("live tracing tests need root");
        return None;
    }
    assert!(
        Path::new(TRACEFS).join("events/header_page").exists(),
        "running as root but no tracefs at {TRACEFS}: live tests cannot run"
    );
    let f = std::fs::File::create("/tmp/coolkprobe-live-tests.lock").unwrap();
    use std::os::fd::AsRawFd;
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    Some(Lock(f))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ckp-live-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gcc(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let out = dir.join(name);
    let st = Command::new("gcc")
        .args(["-O0", "-fno-inline", "-o"])
        .arg(&out)
        .arg(&c)
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc failed for {name}");
    out
}

/// Calls getppid N times (argv[1]), then prints its pid.
const GEN: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1;
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    printf("%d\n", getpid());
    return 0;
}
"#;

/// probe_me(i, 1000*i - 7) for i in 1..=N.
const PROG: &str = r#"
#include <stdio.h>
#include <stdlib.h>
int probe_me(long a, long b) { return (int)(a + b); }
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1;
    long sum = 0;
    for (long i = 1; i <= n; i++) sum += probe_me(i, 1000 * i - 7);
    printf("%ld\n", sum);
    return 0;
}
"#;

/// File offset of a function in an ELF (what uprobe_events wants).
fn file_offset(bin: &Path, sym: &str) -> u64 {
    use object::{Object, ObjectSection, ObjectSymbol};
    let data = std::fs::read(bin).unwrap();
    let f = object::File::parse(&*data).unwrap();
    let s = f.symbols().find(|s| s.name() == Ok(sym)).unwrap();
    let sec = f.section_by_index(s.section_index().unwrap()).unwrap();
    let (off, _) = sec.file_range().unwrap();
    s.address() - sec.address() + off
}

struct Run {
    child: Child,
    group: String,
}

fn spawn(spec: &str, env: &[(&str, &str)], stdout: Stdio) -> Run {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "zz_child_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("CKP_CHILD", spec)
    .stdout(stdout)
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let group = format!("coolkprobe_{}", child.id());
    Run { child, group }
}

impl Run {
    /// Wait until the last of `events` is enabled in the run's instance.
    fn wait_ready(&mut self, enable: &str) {
        let p = Path::new(TRACEFS)
            .join("instances")
            .join(&self.group)
            .join("events")
            .join(enable)
            .join("enable");
        let t0 = Instant::now();
        loop {
            // `1*` when a trigger is attached.
            if std::fs::read_to_string(&p).is_ok_and(|s| s.starts_with('1')) {
                // Readers start right after enabling; let them open.
                std::thread::sleep(Duration::from_millis(200));
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                let mut e = String::new();
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut e)
                    .unwrap();
                panic!("run ended before it was ready ({st}):\n{e}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "run never became ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Wait for the end; (exit code, stdout, stderr).
    fn finish(&mut self) -> (Option<i32>, String, String) {
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            o.read_to_string(&mut out).unwrap();
        }
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let st = wait_timeout(&mut self.child, Duration::from_secs(30));
        (st, out, err)
    }
}

impl Drop for Run {
    /// A test that fails midway does not leave its run behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
            let _ = wait_timeout(&mut self.child, Duration::from_secs(10));
        }
    }
}

fn wait_timeout(c: &mut Child, limit: Duration) -> Option<i32> {
    let t0 = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return st.code();
        }
        if t0.elapsed() > limit {
            let _ = c.kill();
            panic!("run did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Nothing of `group` is left anywhere in tracefs.
fn assert_clean(group: &str) {
    let t = Path::new(TRACEFS);
    for f in ["dynamic_events", "uprobe_events", "kprobe_events"] {
        if let Ok(s) = std::fs::read_to_string(t.join(f)) {
            assert!(!s.contains(group), "{f} still holds {group}:\n{s}");
        }
    }
    assert!(
        !t.join("instances").join(group).exists(),
        "instance {group} left behind"
    );
    assert!(
        !t.join("events").join(group).exists(),
        "events/{group} left behind"
    );
}

fn global_filter() -> String {
    std::fs::read_to_string(Path::new(TRACEFS).join("events/syscalls/sys_enter_getppid/filter"))
        .unwrap()
}

fn run_gen(gen: &Path, n: u64) -> i32 {
    let o = Command::new(gen).arg(n.to_string()).output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap().trim().parse().unwrap()
}

// ---------------------------------------------------------------- tests

#[test]
fn tracepoint_exact_count_text_and_json() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("tp");
    let gen = gcc(&dir, "getppid_gen", GEN);
    let before = global_filter();
    for json in [false, true] {
        let out = dir.join(if json { "out.json" } else { "out.txt" });
        let mut env = vec![("CKP_OUTPUT", out.to_str().unwrap())];
        if json {
            env.push(("CKP_JSON", "1"));
        }
        let mut run = spawn("tp|syscalls|sys_enter_getppid", &env, Stdio::null());
        let group = run.group.clone();
        run.wait_ready("syscalls/sys_enter_getppid");
        let gpid = run_gen(&gen, 1000);
        run.signal(libc::SIGINT);
        let (code, _, err) = {
            let mut run = run;
            run.finish()
        };
        assert_eq!(code, Some(0), "{err}");
        assert!(err.contains("ENDED Signal(2)"), "{err}");
        let text = std::fs::read_to_string(&out).unwrap();
        let mine: Vec<&str> = if json {
            text.lines()
                .filter(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["pid"].as_i64() == Some(gpid as i64)
                })
                .collect()
        } else {
            text.lines()
                .filter(|l| l.contains(&format!("-{gpid} ")))
                .collect()
        };
        assert_eq!(mine.len(), 1000, "events of the generator ({err})");
        if json {
            let v: serde_json::Value = serde_json::from_str(mine[0]).unwrap();
            assert_eq!(v["event"], "f0");
            assert_eq!(v["probe"], "t syscalls:sys_enter_getppid");
            assert_eq!(v["comm"], "getppid_gen");
            assert_eq!(v["args"]["__syscall_nr"], 110);
            assert!(v["ts"].as_f64().unwrap() > 0.0);
            // jq agrees that every line is JSON.
            let st = Command::new("jq")
                .args(["-e", "-s", "length"])
                .arg(&out)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "jq rejected the output");
        } else {
            let l = mine[0];
            assert!(l.contains("getppid_gen-"), "{l}");
            assert!(l.contains(": f0: __syscall_nr=110"), "{l}");
        }
        // Timestamps never go backwards across the merged CPUs.
        let mut last = 0.0f64;
        for l in text.lines() {
            let ts: f64 = if json {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["ts"]
                    .as_f64()
                    .unwrap()
            } else {
                l.split("] ")
                    .nth(1)
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            assert!(ts >= last, "out of order: {ts} after {last}");
            last = ts;
        }
        assert_clean(&group);
    }
    assert_eq!(global_filter(), before);
}

#[test]
fn count_and_duration_end_the_run() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("cnt");
    let gen = gcc(&dir, "getppid_gen", GEN);
    let mut run = spawn(
        "tp|syscalls|sys_enter_getppid",
        &[("CKP_COUNT", "5")],
        Stdio::piped(),
    );
    let group = run.group.clone();
    run.wait_ready("syscalls/sys_enter_getppid");
    run_gen(&gen, 100);
    let (code, out, err) = {
        let mut run = run;
        run.finish()
    };
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("ENDED Count"), "{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains(": f0: ")).count(),
        5,
        "{out}"
    );
    assert_clean(&group);

    let run = spawn(
        "tp|syscalls|sys_enter_getppid",
        &[("CKP_DURATION", "500ms")],
        Stdio::piped(),
    );
    let group = run.group.clone();
    let (code, _, err) = {
        let mut run = run;
        run.finish()
    };
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("ENDED Duration"), "{err}");
    assert_clean(&group);
}

#[test]
fn uprobe_registers_entry_and_return() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("up");
    let prog = gcc(&dir, "probe_prog", PROG);
    let off = file_offset(&prog, "probe_me");
    for json in [false, true] {
        let out = dir.join("out");
        let spec = format!("up|{}|{off:#x}", prog.display());
        let mut env = vec![("CKP_OUTPUT", out.to_str().unwrap())];
        if json {
            env.push(("CKP_JSON", "1"));
        }
        let mut run = spawn(&spec, &env, Stdio::null());
        let group = run.group.clone();
        run.wait_ready(&format!("{group}/f1"));
        let o = Command::new(&prog).arg("50").output().unwrap();
        assert!(o.status.success());
        run.signal(libc::SIGTERM);
        let (code, _, err) = {
            let mut run = run;
            run.finish()
        };
        assert_eq!(code, Some(0), "{err}");
        assert!(err.contains("ENDED Signal(15)"), "{err}");
        let text = std::fs::read_to_string(&out).unwrap();
        let mut entries = Vec::new();
        let mut returns = Vec::new();
        for l in text.lines() {
            if json {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let a = &v["args"];
                match v["event"].as_str().unwrap() {
                    "f0" => entries.push((
                        a["a"].as_i64().unwrap(),
                        a["b"].as_i64().unwrap(),
                        a["bx"].as_str().unwrap().to_string(),
                    )),
                    "f1" => returns.push(a["r"].as_i64().unwrap()),
                    e => panic!("unexpected event {e}"),
                }
                assert_eq!(v["comm"], "probe_prog");
            } else if let Some(rest) = l.split(": f0: ").nth(1) {
                // (0xADDR) a=1 b=993 bx=0x3e1
                let f: Vec<&str> = rest.split(' ').collect();
                assert!(f[0].starts_with("(0x") && f[0].ends_with(')'), "{l}");
                let num = |s: &str, k: &str| s.strip_prefix(k).unwrap().to_string();
                entries.push((
                    num(f[1], "a=").parse().unwrap(),
                    num(f[2], "b=").parse().unwrap(),
                    num(f[3], "bx="),
                ));
            } else if let Some(rest) = l.split(": f1: ").nth(1) {
                // (0xRET <- 0xFUNC) r=994
                assert!(rest.starts_with("(0x") && rest.contains(" <- 0x"), "{l}");
                returns.push(rest.rsplit("r=").next().unwrap().parse().unwrap());
            }
        }
        let want: Vec<(i64, i64, String)> = (1..=50)
            .map(|i| (i, 1000 * i - 7, format!("{:#x}", 1000 * i - 7)))
            .collect();
        assert_eq!(entries, want, "json={json}\n{text}");
        let want_r: Vec<i64> = (1..=50).map(|i| 1001 * i - 7).collect();
        assert_eq!(returns, want_r);
        assert_clean(&group);
    }
}

/// A probe defined by someone else before the run is there after it.
struct Foreign;

impl Foreign {
    fn define(prog: &Path, off: u64) -> Foreign {
        let line = format!("p:ckp_test_other/keep {}:{off:#x}", prog.display());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(Path::new(TRACEFS).join("uprobe_events"))
            .unwrap();
        use std::io::Write;
        f.write_all(line.as_bytes()).unwrap();
        Foreign
    }
    fn assert_present(&self) {
        let s = std::fs::read_to_string(Path::new(TRACEFS).join("uprobe_events")).unwrap();
        assert!(
            s.contains("ckp_test_other/keep"),
            "foreign probe removed:\n{s}"
        );
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(Path::new(TRACEFS).join("uprobe_events"))
            .unwrap();
        let _ = f.write_all(b"-:ckp_test_other/keep");
    }
}

#[test]
fn teardown_on_every_exit_path() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("td");
    let prog = gcc(&dir, "probe_prog", PROG);
    let off = file_offset(&prog, "probe_me");
    let gen = gcc(&dir, "getppid_gen", GEN);
    let foreign = Foreign::define(&prog, off);
    let filter_before = global_filter();
    let up = format!("up|{}|{off:#x}", prog.display());

    // A closed stdout (`| head -1`): the run ends by itself, cleanly.
    let mut run = spawn("tp|syscalls|sys_enter_getppid", &[], Stdio::piped());
    let group = run.group.clone();
    run.wait_ready("syscalls/sys_enter_getppid");
    let mut lines = BufReader::new(run.child.stdout.take().unwrap()).lines();
    let gen2 = gen.clone();
    let feeder = std::thread::spawn(move || {
        for _ in 0..20 {
            run_gen(&gen2, 1000);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    loop {
        let l = lines.next().expect("a line").unwrap();
        if l.contains(": f0: ") {
            break;
        }
    }
    drop(lines);
    let (code, _, err) = {
        let mut run = run;
        run.finish()
    };
    feeder.join().unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("ENDED ClosedOutput"), "{err}");
    assert_clean(&group);

    // An error midway through the install: the second probe is invalid.
    let bad = format!("bad|{}|{off:#x}", prog.display());
    let run = spawn(&bad, &[], Stdio::null());
    let group = run.group.clone();
    let (code, _, err) = {
        let mut run = run;
        run.finish()
    };
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("ERROR writing") && err.contains("uprobe_events"),
        "{err}"
    );
    assert!(
        err.contains("error_log"),
        "the kernel's reason is shown: {err}"
    );
    assert_clean(&group);

    // An error while running: the output cannot be written.
    let mut run = spawn(&up, &[("CKP_OUTPUT", "/dev/full")], Stdio::null());
    let group = run.group.clone();
    run.wait_ready(&format!("{group}/f1"));
    Command::new(&prog).arg("5000").output().unwrap();
    let (code, _, err) = {
        let mut run = run;
        run.finish()
    };
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("No space left"), "{err}");
    assert_clean(&group);

    // SIGKILL leaves the group; the next run finds and removes it.
    let mut run = spawn(&up, &[], Stdio::null());
    let dead = run.group.clone();
    run.wait_ready(&format!("{dead}/f1"));
    run.signal(libc::SIGKILL);
    {
        let mut run = run;
        run.finish()
    };
    assert!(Path::new(TRACEFS).join("instances").join(&dead).exists());
    let ue = std::fs::read_to_string(Path::new(TRACEFS).join("uprobe_events")).unwrap();
    assert!(
        ue.contains(&dead),
        "killed run's probes are still there before the next run"
    );
    let run = spawn(&up, &[("CKP_DURATION", "300ms")], Stdio::null());
    let group = run.group.clone();
    let (code, _, err) = {
        let mut run = run;
        run.finish()
    };
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&format!("removed {dead}")), "{err}");
    assert_clean(&dead);
    assert_clean(&group);

    foreign.assert_present();
    assert_eq!(global_filter(), filter_before);
}

#[test]
fn stack_traces_with_every_event() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("stk");
    let gen = gcc(&dir, "getppid_gen", GEN);
    for json in [true, false] {
        let out = dir.join("out");
        let mut env = vec![("CKP_OUTPUT", out.to_str().unwrap()), ("CKP_STACK", "1")];
        if json {
            env.push(("CKP_JSON", "1"));
        }
        let mut run = spawn("tp|syscalls|sys_enter_getppid", &env, Stdio::null());
        let group = run.group.clone();
        run.wait_ready("syscalls/sys_enter_getppid");
        let gpid = run_gen(&gen, 200);
        run.signal(libc::SIGINT);
        let (code, _, err) = {
            let mut run = run;
            run.finish()
        };
        assert_eq!(code, Some(0), "{err}");
        let text = std::fs::read_to_string(&out).unwrap();
        if json {
            let mut n = 0;
            for l in text.lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                if v["pid"].as_i64() != Some(gpid as i64) {
                    continue;
                }
                n += 1;
                let st = v["stack"]
                    .as_array()
                    .unwrap_or_else(|| panic!("no stack: {l}"));
                assert!(
                    st.iter()
                        .any(|f| f.as_str().unwrap().starts_with("do_syscall_64+0x")),
                    "stack resolves to kernel symbols: {l}"
                );
            }
            assert_eq!(n, 200);
        } else {
            // Each event line of the generator is followed by ` => sym` lines.
            let lines: Vec<&str> = text.lines().collect();
            let mut n = 0;
            for (i, l) in lines.iter().enumerate() {
                if l.contains(&format!("-{gpid} ")) {
                    n += 1;
                    let frames: Vec<&&str> = lines[i + 1..]
                        .iter()
                        .take_while(|f| f.starts_with(" => "))
                        .collect();
                    assert!(
                        frames.iter().any(|f| f.contains("do_syscall_64+0x")),
                        "{l}: {frames:?}"
                    );
                }
            }
            assert_eq!(n, 200);
        }
        assert_clean(&group);
    }
}

/// The real command line, specs compiled by the compiler: a uprobe with
/// raw fetchargs and a return probe, `--json | jq`, and `-c`.
#[test]
fn cli_end_to_end() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("cli");
    let prog = gcc(&dir, "probe_prog", PROG);
    let exe = env!("CARGO_BIN_EXE_coolkprobe");
    let entry = format!("p {}:probe_me a=%di b=%si", prog.display());
    let ret = format!("r {}:probe_me r=$retval", prog.display());
    let mut child = Command::new(exe)
        .args([&entry, &ret, "--json", "-c", "6"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let group = format!("coolkprobe_{}", child.id());
    let en = Path::new(TRACEFS)
        .join("instances")
        .join(&group)
        .join("events")
        .join(&group)
        .join("f1/enable");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&en).is_ok_and(|s| s.starts_with('1')) {
        assert!(t0.elapsed() < Duration::from_secs(20), "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    Command::new(&prog).arg("10").output().unwrap();
    let code = wait_timeout(&mut child, Duration::from_secs(30));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("uprobe_events"),
        "the tracefs commands are echoed on stderr: {err}"
    );
    let evs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(evs.len(), 6, "{out}");
    for (i, pair) in evs.chunks(2).enumerate() {
        let i = i as u64 + 1;
        assert_eq!(pair[0]["event"], "f0");
        assert_eq!(pair[0]["probe"], entry.as_str());
        // Raw `%di` is an x64: hex, as a string.
        assert_eq!(pair[0]["args"]["a"], format!("{i:#x}"));
        assert_eq!(pair[0]["args"]["b"], format!("{:#x}", 1000 * i - 7));
        assert_eq!(pair[1]["event"], "f1");
        assert_eq!(pair[1]["args"]["r"], format!("{:#x}", 1001 * i - 7));
    }
    let jq = Command::new("jq")
        .args(["-r", ".args.a"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    jq.stdin
        .as_ref()
        .unwrap()
        .write_all(out.as_bytes())
        .unwrap();
    let o = jq.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8(o.stdout).unwrap().starts_with("0x1\n"));
    assert_clean(&group);
}

#[test]
fn panic_unwinds_through_teardown() {
    let Some(_l) = lock() else { return };
    let run = spawn("panic", &[], Stdio::null());
    let group = run.group.clone();
    let (code, _, err) = {
        let mut run = run;
        run.finish()
    };
    assert!(
        err.contains("SESSION UP") && err.contains("deliberate panic"),
        "{err}"
    );
    assert_ne!(code, Some(0));
    assert_clean(&group);
}

/// A stalled reader with a small buffer: the kernel overwrites records,
/// and the loss shows up inline (text and JSON) and in the summary.
#[test]
fn lost_events_are_reported() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("lost");
    let gen = gcc(&dir, "getppid_gen", GEN);
    let global_kb = std::fs::read_to_string(Path::new(TRACEFS).join("buffer_size_kb")).unwrap();
    for json in [false, true] {
        let out = dir.join("out");
        let mut env = vec![
            ("CKP_OUTPUT", out.to_str().unwrap()),
            ("CKP_BUFFER_KB", "16"),
        ];
        if json {
            env.push(("CKP_JSON", "1"));
        }
        let mut run = spawn("tp|syscalls|sys_enter_getppid", &env, Stdio::null());
        let group = run.group.clone();
        run.wait_ready("syscalls/sys_enter_getppid");
        let kb = Path::new(TRACEFS)
            .join("instances")
            .join(&group)
            .join("buffer_size_kb");
        // The kernel rounds up to whole sub-buffers plus its reader page.
        let kb: u64 = std::fs::read_to_string(kb).unwrap().trim().parse().unwrap();
        assert!((16..64).contains(&kb), "instance buffer {kb} KiB");
        // Stop the reader, overflow its buffer, let it go on.
        run.signal(libc::SIGSTOP);
        let gpid = run_gen(&gen, 20000);
        run.signal(libc::SIGCONT);
        std::thread::sleep(Duration::from_millis(300));
        run.signal(libc::SIGINT);
        let (code, _, err) = run.finish();
        assert_eq!(code, Some(0), "{err}");
        let text = std::fs::read_to_string(&out).unwrap();
        let (mut seen, mut lost, mut notices) = (0u64, 0u64, 0);
        for l in text.lines() {
            if json {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                if let Some(n) = v.get("lost") {
                    notices += 1;
                    lost += n.as_u64().unwrap_or(0);
                } else if v["pid"].as_i64() == Some(gpid as i64) {
                    seen += 1;
                }
            } else if let Some(rest) = l.strip_prefix("# LOST ") {
                notices += 1;
                lost += rest.split(' ').next().unwrap().parse::<u64>().unwrap_or(0);
            } else if l.contains(&format!("-{gpid} ")) {
                seen += 1;
            }
        }
        assert!(
            notices > 0 && lost > 0,
            "an inline loss notice with a count: {text:.300}"
        );
        assert!(seen < 20000);
        // Everything is accounted for: seen + lost covers what was generated
        // (lost may also count other tasks' getppid calls).
        assert!(seen + lost >= 20000, "seen {seen} + lost {lost}");
        let summary: u64 = err
            .split("LOST ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("summary on stderr: {err}"));
        assert!(summary >= lost, "summary {summary} < inline {lost}");
        assert_clean(&group);
    }
    let after = std::fs::read_to_string(Path::new(TRACEFS).join("buffer_size_kb")).unwrap();
    assert_eq!(after, global_kb, "the global buffer size is untouched");
}

/// `--cpu`: only the chosen CPUs are recorded.
#[test]
fn cpu_selection() {
    let Some(_l) = lock() else { return };
    let ncpu = std::fs::read_dir(Path::new(TRACEFS).join("per_cpu"))
        .unwrap()
        .count();
    assert!(ncpu >= 2, "needs two CPUs");
    let dir = tmpdir("cpu");
    let gen = gcc(&dir, "getppid_gen", GEN);
    let out = dir.join("out");
    let mut run = spawn(
        "tp|syscalls|sys_enter_getppid",
        &[("CKP_OUTPUT", out.to_str().unwrap()), ("CKP_CPUS", "1")],
        Stdio::null(),
    );
    let group = run.group.clone();
    run.wait_ready("syscalls/sys_enter_getppid");
    let on = |cpu: &str| {
        let o = Command::new("taskset")
            .args(["-c", cpu])
            .arg(&gen)
            .arg("300")
            .output()
            .unwrap();
        assert!(o.status.success());
        String::from_utf8(o.stdout)
            .unwrap()
            .trim()
            .parse::<i32>()
            .unwrap()
    };
    let p0 = on("0");
    let p1 = on("1");
    run.signal(libc::SIGINT);
    let (code, _, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(&format!("-{p0} ")))
            .count(),
        0
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(&format!("-{p1} ")))
            .count(),
        300
    );
    assert!(text.lines().all(|l| l.contains(" [001] ")));
    assert_clean(&group);
}
