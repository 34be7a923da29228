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
    let group = coolkprobe::tracefs::run_group(std::process::id());
    if spec == "panic" {
        // A panic while a session is up: unwinding must tear it down.
        let plan = plan_from("tp|syscalls|sys_enter_getppid", &group);
        let fs = coolkprobe::tracefs::Tracefs::find_or_mount().unwrap();
        let o = Default::default();
        let mut s = coolkprobe::tracefs::Session::create(fs, &group, &o).unwrap();
        s.install(&plan, &o).unwrap();
        eprintln!("SESSION UP");
        panic!("deliberate panic with a live session");
    }
    let plan = plan_from(&spec, &group);
    let env = |k: &str| std::env::var(k).ok();
    if let Some(enable) = env("CKP_ABORT_WHEN") {
        // Once the run is up, a panic that cannot unwind (as with
        // panic=abort): no Drop runs; the panic hook must tear down.
        let enable = Path::new(TRACEFS)
            .join("instances")
            .join(&group)
            .join("events")
            .join(enable.replace("GROUP", &group))
            .join("enable");
        std::thread::spawn(move || {
            while !std::fs::read_to_string(&enable).is_ok_and(|s| s.starts_with('1')) {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(200));
            eprintln!("ABORTING");
            panic_without_unwinding();
        });
    }
    let opts = coolkprobe::live::LiveOptions {
        json: env("CKP_JSON").is_some(),
        stack: env("CKP_STACK").is_some(),
        duration: env("CKP_DURATION").map(|d| coolkprobe::live::parse_duration(&d).unwrap()),
        count: env("CKP_COUNT").map(|c| c.parse().unwrap()),
        output: env("CKP_OUTPUT").map(PathBuf::from),
        pid: env("CKP_PID")
            .map(|c| coolkprobe::tracefs::PidFilter {
                pid: c.parse().unwrap(),
                follow: true,
            })
            .or(env("CKP_TID").map(|c| coolkprobe::tracefs::PidFilter {
                pid: c.parse().unwrap(),
                follow: false,
            })),
        buffer_kb: env("CKP_BUFFER_KB").map(|c| c.parse().unwrap()),
        cpus: env("CKP_CPUS").map_or(vec![], |c| {
            c.split(',').map(|x| x.parse().unwrap()).collect()
        }),
        trace_self: env("CKP_TRACE_SELF").is_some(),
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

extern "C" fn panic_without_unwinding() {
    panic!("a panic that cannot unwind");
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

/// One live test at a time, across test binaries too.
fn lock() -> Option<std::fs::File> {
    common::trace::live_lock("live tracing")
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
    let group = coolkprobe::tracefs::run_group(child.id());
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
                    "f1" => {
                        returns.push(a["r"].as_i64().unwrap());
                        let ip = v["ip"].as_str().unwrap();
                        assert!(ip.starts_with("probe_prog:main+0x"), "{l}");
                    }
                    e => panic!("unexpected event {e}"),
                }
                assert_eq!(v["comm"], "probe_prog");
            } else if let Some(rest) = l.split(": f0: ").nth(1) {
                // (probe_prog:probe_me) a=1 b=993 bx=0x3e1: the place by
                // the program's own symbol.
                let f: Vec<&str> = rest.split(' ').collect();
                assert_eq!(f[0], "(probe_prog:probe_me)", "{l}");
                let num = |s: &str, k: &str| s.strip_prefix(k).unwrap().to_string();
                entries.push((
                    num(f[1], "a=").parse().unwrap(),
                    num(f[2], "b=").parse().unwrap(),
                    num(f[3], "bx="),
                ));
            } else if let Some(rest) = l.split(": f1: ").nth(1) {
                // (probe_prog:main+0x2c <- probe_prog:probe_me) r=994: the
                // caller through the program's symbols.
                assert!(
                    rest.starts_with("(probe_prog:main+0x")
                        && rest.contains(" <- probe_prog:probe_me) "),
                    "{l}"
                );
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
            assert_eq!(n, 200, "{err}");
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
            assert_eq!(n, 200, "{err}");
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
    let group = coolkprobe::tracefs::run_group(child.id());
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

// ------------------------------------------------ the real binary, under pressure

/// The binary with `args`; its group (same PID namespace as this test).
fn bin(args: &[&str], stdout: Stdio, stderr: Stdio) -> (Child, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap();
    let group = coolkprobe::tracefs::run_group(child.id());
    (child, group)
}

/// Wait until `instances/GROUP/events/EVENT/enable` reads 1.
fn wait_enabled(child: &mut Child, group: &str, event: &str) {
    let p = Path::new(TRACEFS)
        .join("instances")
        .join(group)
        .join("events")
        .join(event)
        .join("enable");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&p).is_ok_and(|s| s.starts_with('1')) {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("the run ended before it was ready: {st}");
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
}

/// `2>&1 | head -1`: stdout and stderr share a pipe whose reader leaves
/// after one line. Every later write fails (EPIPE); the run must still
/// end by itself and leave nothing installed (it used to abort, 134).
#[test]
fn closed_stderr_mid_run() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("closed-err");
    let prog = gcc(&dir, "probe_prog", PROG);
    let off = file_offset(&prog, "probe_me");
    let up = format!("p {}:{off:#x} a=%di", prog.display());
    let (r, w) = pipe();
    let (mut child, group) = bin(
        &["-d", "2", "t syscalls:sys_enter_getppid", &up],
        Stdio::from(w.try_clone().unwrap()),
        Stdio::from(w),
    );
    // `head -1`: one line, then the pipe's only reader is gone.
    let mut first = String::new();
    BufReader::new(r).read_line(&mut first).unwrap();
    assert!(first.starts_with("mkdir "), "{first}");
    let st = wait_timeout(&mut child, Duration::from_secs(20));
    assert_eq!(st, Some(0), "exit status (None: killed by a signal)");
    assert_clean(&group);
}

fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

/// A terminal that hangs up: SIGHUP, and every write to it fails (EIO).
#[test]
fn hangup_of_the_terminal() {
    use std::os::fd::FromRawFd;
    let Some(_l) = lock() else { return };
    let dir = tmpdir("hup");
    let prog = gcc(&dir, "probe_prog", PROG);
    let off = file_offset(&prog, "probe_me");
    let up = format!("p {}:{off:#x} a=%di", prog.display());
    let (mut master, mut slave) = (0, 0);
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0);
    // Only the child may hold the terminal (the master must close).
    for fd in [master, slave] {
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let slave = unsafe { std::fs::File::from_raw_fd(slave) };
    let master = unsafe { std::fs::File::from_raw_fd(master) };
    let (mut child, group) = bin(
        &["t syscalls:sys_enter_getppid", &up],
        Stdio::from(slave.try_clone().unwrap()),
        Stdio::from(slave),
    );
    wait_enabled(&mut child, &group, &format!("{group}/f1"));
    // The terminal goes away: the master side closes, then the hangup.
    drop(master);
    let t0 = Instant::now();
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    let st = wait_timeout(&mut child, Duration::from_secs(20));
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "ended {:?} after SIGHUP",
        t0.elapsed()
    );
    assert_eq!(st, Some(0), "exit status (None: killed by a signal)");
    assert_clean(&group);
}

/// A panic that does not unwind (as under panic=abort): no Drop runs,
/// the panic hook tears down.
#[test]
fn panic_without_unwinding_tears_down() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("abort");
    let prog = gcc(&dir, "probe_prog", PROG);
    let off = file_offset(&prog, "probe_me");
    let spec = format!("up|{}|{off:#x}", prog.display());
    let mut run = spawn(&spec, &[("CKP_ABORT_WHEN", "GROUP/f1")], Stdio::null());
    let group = run.group.clone();
    let (code, _, err) = run.finish();
    assert!(err.contains("ABORTING"), "{err}");
    // SIGABRT, or the main thread's error exit if it ends first.
    assert_ne!(code, Some(0), "{err}");
    assert_clean(&group);
}

/// Runs in other PID namespaces share tracefs: a run inside
/// `unshare -p` must neither take the host run's group for a dead run's
/// nor collide with a run that has the same PID in another namespace
/// (both are PID 1 here). Each gets every event of the generator.
#[test]
fn runs_in_other_pid_namespaces() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("pidns");
    let gen = gcc(&dir, "getppid_gen", GEN);
    let exe = env!("CARGO_BIN_EXE_coolkprobe");
    let host_out = dir.join("host.out");
    let (mut host, group) = bin(
        &[
            "t syscalls:sys_enter_getppid",
            "-o",
            host_out.to_str().unwrap(),
        ],
        Stdio::null(),
        Stdio::piped(),
    );
    wait_enabled(&mut host, &group, "syscalls/sys_enter_getppid");
    let before: Vec<String> = instances();
    // Two runs in two new PID namespaces: each is PID 1 in its own.
    let ns_outs = [dir.join("ns1.out"), dir.join("ns2.out")];
    let mut ns: Vec<Child> = ns_outs
        .iter()
        .map(|o| {
            Command::new("unshare")
                .args(["-p", "-f", "--mount-proc", exe])
                .args(["t syscalls:sys_enter_getppid", "-o", o.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("unshare")
        })
        .collect();
    // Both namespaced runs are up: two more instances of ours, enabled.
    let t0 = Instant::now();
    let theirs = loop {
        let new: Vec<String> = instances()
            .into_iter()
            .filter(|i| !before.contains(i) && i.starts_with("coolkprobe_1_"))
            .collect();
        let on = |i: &String| {
            std::fs::read_to_string(
                Path::new(TRACEFS)
                    .join("instances")
                    .join(i)
                    .join("events/syscalls/sys_enter_getppid/enable"),
            )
            .is_ok_and(|s| s.starts_with('1'))
        };
        if new.len() == 2 && new.iter().all(on) {
            break new;
        }
        for c in &mut ns {
            if let Ok(Some(st)) = c.try_wait() {
                let mut e = String::new();
                c.stderr.take().unwrap().read_to_string(&mut e).unwrap();
                panic!("a namespaced run ended early ({st}):\n{e}");
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "namespaced runs never ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(theirs[0], theirs[1], "same PID, distinct groups");
    std::thread::sleep(Duration::from_millis(200));
    let gpid = run_gen(&gen, 1000);
    std::thread::sleep(Duration::from_millis(200));
    // unshare waits for the run it forked: the signal goes to the run.
    for c in &ns {
        let kids = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", c.id())).unwrap();
        for k in kids.split_whitespace() {
            unsafe { libc::kill(k.parse().unwrap(), libc::SIGINT) };
        }
    }
    unsafe { libc::kill(host.id() as i32, libc::SIGINT) };
    let mut errs = Vec::new();
    for c in ns.iter_mut().chain(std::iter::once(&mut host)) {
        let mut e = String::new();
        c.stderr.take().unwrap().read_to_string(&mut e).unwrap();
        assert_eq!(wait_timeout(c, Duration::from_secs(20)), Some(0), "{e}");
        errs.push(e);
    }
    for (out, err) in ns_outs.iter().chain(std::iter::once(&host_out)).zip(&errs) {
        for live in theirs.iter().chain(std::iter::once(&group)) {
            assert!(
                !err.contains(&format!("removed {live},")),
                "took a live run for dead:\n{err}"
            );
        }
        let text = std::fs::read_to_string(out).unwrap();
        let n = text
            .lines()
            .filter(|l| l.contains(&format!("-{gpid} ")))
            .count();
        assert_eq!(n, 1000, "{}: events of the generator\n{err}", out.display());
    }
    assert_clean(&group);
    for g in &theirs {
        assert_clean(g);
    }
}

fn instances() -> Vec<String> {
    std::fs::read_dir(Path::new(TRACEFS).join("instances"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Someone disables the run's events and withdraws its probe under it:
/// the run says so, tears down what is left, and fails.
#[test]
fn probes_removed_under_the_run() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("vanish");
    let prog = gcc(&dir, "probe_prog", PROG);
    let off = file_offset(&prog, "probe_me");
    let up = format!("p {}:{off:#x} a=%di", prog.display());
    let (mut child, group) = bin(&[&up], Stdio::null(), Stdio::piped());
    wait_enabled(&mut child, &group, &format!("{group}/f0"));
    let t = Path::new(TRACEFS);
    std::fs::write(t.join("instances").join(&group).join("events/enable"), "0").unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(t.join("uprobe_events"))
            .unwrap();
        f.write_all(format!("-:{group}/f0").as_bytes()).unwrap();
    }
    let st = wait_timeout(&mut child, Duration::from_secs(10));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(st, Some(1), "{err}");
    assert!(
        err.contains("someone else disabled or removed this run's events"),
        "{err}"
    );
    assert_clean(&group);
}

/// Fires getppid from a background thread until dropped.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(gen: &Path) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let gen = gen.to_path_buf();
        let handle = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                run_gen(&gen, 200_000);
            }
        });
        Load {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// SIGINT, then the time to exit (it must be under a second), the exit
/// code and stderr.
fn stop_timed(child: &mut Child) -> (Duration, Option<i32>, String) {
    let mut err_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut e = String::new();
        let _ = err_pipe.read_to_string(&mut e);
        e
    });
    let t0 = Instant::now();
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let code = wait_timeout(child, Duration::from_secs(30));
    let t = t0.elapsed();
    (t, code, reader.join().unwrap())
}

/// stdout is a pipe nobody reads: the output thread is stuck in write(2),
/// yet SIGINT ends the run within a second, and what was not written is
/// counted.
#[test]
fn signal_ends_a_run_blocked_on_its_output() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("blocked");
    let gen = gcc(&dir, "getppid_gen", GEN);
    let (r, w) = pipe();
    let (mut child, group) = bin(
        &["--json", "t syscalls:sys_enter_getppid"],
        Stdio::from(w),
        Stdio::piped(),
    );
    wait_enabled(&mut child, &group, "syscalls/sys_enter_getppid");
    {
        let _load = Load::start(&gen);
        std::thread::sleep(Duration::from_millis(1500));
        let (t, code, err) = stop_timed(&mut child);
        assert!(
            t < Duration::from_secs(1),
            "exit {t:?} after SIGINT:\n{err}"
        );
        assert_eq!(code, Some(0), "{err}");
        assert!(err.contains("events not written"), "{err}");
    }
    drop(r);
    assert_clean(&group);
}

/// `-o FIFO` and nobody opens the FIFO: the run starts anyway (the
/// output thread waits for a reader), and SIGINT ends it.
#[test]
fn signal_ends_a_run_whose_fifo_has_no_reader() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("fifo");
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let (mut child, group) = bin(
        &["t syscalls:sys_enter_getppid", "-o", fifo.to_str().unwrap()],
        Stdio::null(),
        Stdio::piped(),
    );
    wait_enabled(&mut child, &group, "syscalls/sys_enter_getppid");
    let (t, code, err) = stop_timed(&mut child);
    assert!(
        t < Duration::from_secs(1),
        "exit {t:?} after SIGINT:\n{err}"
    );
    assert_eq!(code, Some(0), "{err}");
    assert_clean(&group);
}

/// Under a generator, with --json and an output that keeps up: the exit
/// after SIGINT still takes under a second (it took 4-6 s, draining a
/// queue of up to 256 MB).
#[test]
fn signal_ends_a_loaded_json_run() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("loaded");
    let gen = gcc(&dir, "getppid_gen", GEN);
    let out = dir.join("out.json");
    let (mut child, group) = bin(
        &[
            "--json",
            "t syscalls:sys_enter_getppid",
            "-o",
            out.to_str().unwrap(),
        ],
        Stdio::null(),
        Stdio::piped(),
    );
    wait_enabled(&mut child, &group, "syscalls/sys_enter_getppid");
    {
        let _load = Load::start(&gen);
        std::thread::sleep(Duration::from_millis(2000));
        let (t, code, err) = stop_timed(&mut child);
        assert!(
            t < Duration::from_secs(1),
            "exit {t:?} after SIGINT:\n{err}"
        );
        assert_eq!(code, Some(0), "{err}");
    }
    assert_clean(&group);
}

/// VmHWM (peak RSS) of a process, KiB.
fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

/// Memory is bounded by bytes: an output slower than the events (a pipe
/// read a little at a time) makes the run hold what it can, not all it
/// reads (RSS went to 415 MB). Under 64 MB with default options.
#[test]
fn memory_bounded_under_a_slow_output() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("rss");
    let gen = gcc(&dir, "getppid_gen", GEN);
    let (r, w) = pipe();
    let (mut child, group) = bin(
        &["--json", "t syscalls:sys_enter_getppid"],
        Stdio::from(w),
        Stdio::piped(),
    );
    wait_enabled(&mut child, &group, "syscalls/sys_enter_getppid");
    let slow = std::thread::spawn(move || {
        let mut r = r;
        let mut b = vec![0u8; 16 * 1024];
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(8) {
            match r.read(&mut b) {
                Ok(0) | Err(_) => break,
                Ok(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        r
    });
    let peak = {
        let _load = Load::start(&gen);
        std::thread::sleep(Duration::from_secs(4));
        peak_rss_kb(child.id())
    };
    let (_, code, err) = stop_timed(&mut child);
    drop(slow.join().unwrap());
    assert_eq!(code, Some(0), "{err}");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB\n{err}");
    assert_clean(&group);
}

/// The kernel's reason for a refused write is the entry it logged for
/// that write, in the error_log of the instance the write went to, never
/// an older entry another writer left (it showed another run's uprobe
/// error for a refused filter).
#[test]
fn error_log_of_our_own_write() {
    let Some(_l) = lock() else { return };
    // Another writer's error first, in the top-level error_log.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(Path::new(TRACEFS).join("uprobe_events"))
            .unwrap();
        assert!(f
            .write_all(b"p:ckp_test_other/bad /nonexistent/ckp-elsewhere:0x10")
            .is_err());
    }
    let top = std::fs::read_to_string(Path::new(TRACEFS).join("error_log")).unwrap();
    assert!(top.contains("ckp-elsewhere"), "{top}");
    let run = spawn("tp|syscalls|sys_enter_getppid|((", &[], Stdio::null());
    let group = run.group.clone();
    let (code, _, err) = {
        let mut run = run;
        run.finish()
    };
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("the kernel says (error_log)"), "{err}");
    assert!(
        err.contains("Too many '('"),
        "the filter's own entry: {err}"
    );
    assert!(
        !err.contains("ckp-elsewhere"),
        "another writer's entry: {err}"
    );
    assert_clean(&group);
}

/// probe_str(NULL), probe_str(""), probe_str("abc").
const STRS: &str = r#"
#include <stdio.h>
int probe_str(const char *s) { return s ? s[0] : -1; }
int main(void) {
    int r = probe_str(NULL) + probe_str("") + probe_str("abc");
    printf("%d\n", r);
    return 0;
}
"#;

/// A string fetch through a NULL pointer is a fault, not an empty
/// string: `(fault)` in text as the kernel shows it, `null` with a reason
/// in JSON; a real empty string stays `""`.
#[test]
fn string_fault_is_not_an_empty_string() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("fault");
    let prog = gcc(&dir, "strs", STRS);
    let spec = format!("p {}:probe_str s=+0(%di):string", prog.display());
    for json in [false, true] {
        let out = dir.join("out");
        let mut args = vec![spec.as_str(), "-o", out.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        let (mut child, group) = bin(&args, Stdio::null(), Stdio::piped());
        wait_enabled(&mut child, &group, &format!("{group}/f0"));
        assert!(Command::new(&prog).output().unwrap().status.success());
        std::thread::sleep(Duration::from_millis(200));
        let (_, code, err) = stop_timed(&mut child);
        assert_eq!(code, Some(0), "{err}");
        let text = std::fs::read_to_string(&out).unwrap();
        if json {
            let v: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(v.len(), 3, "{text}");
            assert!(v[0]["args"]["s"].is_null(), "{text}");
            assert!(
                v[0]["faults"]["s"]
                    .as_str()
                    .is_some_and(|r| r.contains("could not read")),
                "{text}"
            );
            assert_eq!(v[1]["args"]["s"], "");
            assert!(v[1].get("faults").is_none(), "{text}");
            assert_eq!(v[2]["args"]["s"], "abc");
        } else {
            let vals: Vec<&str> = text
                .lines()
                .map(|l| l.rsplit(" s=").next().unwrap())
                .collect();
            assert_eq!(vals, ["(fault)", "\"\"", "\"abc\""], "{text}");
        }
        assert_clean(&group);
    }
}

/// Names itself with a newline and a terminal escape, then calls getppid.
const EVIL: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
int main(void) {
    prctl(PR_SET_NAME, "ev\nil\x1b[31m!", 0, 0, 0);
    for (int i = 0; i < 5; i++) syscall(SYS_getppid);
    printf("%d\n", getpid());
    return 0;
}
"#;

/// A task names itself with control bytes: text output escapes them, so
/// that no line can be forged or hidden; JSON keeps the exact name.
#[test]
fn control_bytes_in_names_are_escaped() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("evil");
    let prog = gcc(&dir, "evil", EVIL);
    for json in [false, true] {
        let out = dir.join("out");
        let mut env = vec![("CKP_OUTPUT", out.to_str().unwrap())];
        if json {
            env.push(("CKP_JSON", "1"));
        }
        let mut run = spawn("tp|syscalls|sys_enter_getppid", &env, Stdio::null());
        let group = run.group.clone();
        run.wait_ready("syscalls/sys_enter_getppid");
        let gpid = run_gen(&prog, 0);
        std::thread::sleep(Duration::from_millis(200));
        run.signal(libc::SIGINT);
        let (code, _, err) = run.finish();
        assert_eq!(code, Some(0), "{err}");
        let bytes = std::fs::read(&out).unwrap();
        assert!(!bytes.contains(&0x1b), "a raw escape in the output");
        let text = String::from_utf8(bytes).unwrap();
        let mine: Vec<&str> = if json {
            text.lines()
                .filter(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["pid"].as_i64() == Some(gpid as i64) && v["comm"] == "ev\nil\u{1b}[31m!"
                })
                .collect()
        } else {
            text.lines()
                .filter(|l| l.contains(&format!("ev\\x0ail\\x1b[31m!-{gpid} ")))
                .collect()
        };
        assert_eq!(mine.len(), 5, "{text}");
        assert_clean(&group);
    }
}

/// A process with a thread made before the trace starts and one made
/// after, that then starts a child: each calls getppid 5 times, as does
/// the main thread. Prints its pid, waits for a line on stdin, then prints
/// the thread ids and the child's pid.
const THREADS: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int go = 0;
static void calls(void) { for (int i = 0; i < 5; i++) syscall(SYS_getppid); }
static void *early(void *a) {
    pthread_mutex_lock(&m);
    while (!go) pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    printf("tid %ld\n", syscall(SYS_gettid));
    calls();
    return a;
}
static void *late(void *a) { printf("tid %ld\n", syscall(SYS_gettid)); calls(); return a; }
int main(void) {
    pthread_t t1, t2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_create(&t1, NULL, early, NULL);
    printf("%d\n", getpid());
    char line[8];
    if (!fgets(line, sizeof line, stdin)) return 1;
    printf("tid %ld\n", syscall(SYS_gettid));
    calls();
    pthread_mutex_lock(&m); go = 1; pthread_cond_broadcast(&c); pthread_mutex_unlock(&m);
    pthread_create(&t2, NULL, late, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pid_t k = fork();
    if (k == 0) { calls(); _exit(0); }
    printf("child %d\n", k);
    waitpid(k, NULL, 0);
    return 0;
}
"#;

/// `-p PID` is the whole process: its threads, those it starts after the
/// trace began, and (event-fork) the processes it starts; `--tid` is one
/// thread. Another process's calls are not recorded either way.
#[test]
fn pid_filter_follows_the_whole_process() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("pid");
    let prog = gcc_with(&dir, "threads", THREADS, &["-pthread"]);
    let gen = gcc(&dir, "getppid_gen", GEN);
    for follow in [true, false] {
        let mut p = Command::new(&prog)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(p.stdout.take().unwrap()).lines();
        let pid: u32 = lines.next().unwrap().unwrap().parse().unwrap();
        let out = dir.join("out");
        let (k, v) = if follow {
            ("CKP_PID", pid)
        } else {
            ("CKP_TID", pid)
        };
        let v = v.to_string();
        let mut run = spawn(
            "tp|syscalls|sys_enter_getppid",
            &[("CKP_OUTPUT", out.to_str().unwrap()), (k, &v)],
            Stdio::null(),
        );
        let group = run.group.clone();
        run.wait_ready("syscalls/sys_enter_getppid");
        let setp = std::fs::read_to_string(
            Path::new(TRACEFS)
                .join("instances")
                .join(&group)
                .join("set_event_pid"),
        )
        .unwrap();
        // The process and its thread so far; the thread alone.
        assert_eq!(
            setp.split_whitespace().count(),
            if follow { 2 } else { 1 },
            "{setp}"
        );
        {
            use std::io::Write;
            p.stdin.take().unwrap().write_all(b"go\n").unwrap();
        }
        let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
        assert!(p.wait().unwrap().success());
        let other = run_gen(&gen, 50);
        std::thread::sleep(Duration::from_millis(200));
        run.signal(libc::SIGINT);
        let (code, _, err) = run.finish();
        assert_eq!(code, Some(0), "{err}");
        let mut want: Vec<i64> = rest
            .iter()
            .filter_map(|l| l.strip_prefix("tid ").or_else(|| l.strip_prefix("child ")))
            .map(|t| t.parse().unwrap())
            .collect();
        if !follow {
            want = vec![pid as i64];
        }
        want.sort();
        let text = std::fs::read_to_string(&out).unwrap();
        let mut seen: Vec<i64> = text
            .lines()
            .filter(|l| l.contains(": f0: "))
            .map(|l| {
                let who = l.split(" [").next().unwrap().trim();
                who.rsplit('-').next().unwrap().parse().unwrap()
            })
            .collect();
        assert!(!seen.contains(&(other as i64)), "another process: {text}");
        seen.sort();
        let mut counted: Vec<i64> = want.iter().flat_map(|&t| [t; 5]).collect();
        counted.sort();
        assert_eq!(seen, counted, "follow={follow}: {rest:?}\n{text}");
        assert_clean(&group);
    }
}

fn gcc_with(dir: &Path, name: &str, src: &str, flags: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let out = dir.join(name);
    let st = Command::new("gcc")
        .args(["-O0", "-o"])
        .arg(&out)
        .arg(&c)
        .args(flags)
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc failed for {name}");
    out
}

/// Forks argv[1] children that each exec argv[2].
const SPAWNER: &str = r#"
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    for (int i = 0; i < n; i++) {
        pid_t k = fork();
        if (k == 0) { execl(argv[2], argv[2], "2", (char *)0); _exit(127); }
        waitpid(k, NULL, 0);
    }
    return 0;
}
"#;

/// Calls getppid 3 times, then execs argv[1] (with "3").
const PRE: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    for (int i = 0; i < 3; i++) syscall(SYS_getppid);
    printf("%d\n", getpid());
    fflush(stdout);
    execl(argv[1], argv[1], "3", (char *)0);
    return 127;
}
"#;

/// Names are current for the whole run: 100 processes that live for a
/// moment each are named (they were `<...>`: saved_cmdlines was read once
/// per run), and a process that execs is named by what it runs from
/// then on (it kept its first name).
#[test]
fn task_names_stay_current() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("names");
    let short = gcc(&dir, "shortlived", GEN);
    let spawner = gcc(&dir, "spawner", SPAWNER);
    let pre = gcc(&dir, "pre", PRE);
    let genn2 = gcc(&dir, "genn2", GEN);
    let out = dir.join("out");
    let mut run = spawn(
        "tp|syscalls|sys_enter_getppid",
        &[("CKP_OUTPUT", out.to_str().unwrap())],
        Stdio::null(),
    );
    let group = run.group.clone();
    run.wait_ready("syscalls/sys_enter_getppid");
    let st = Command::new(&spawner)
        .arg("100")
        .arg(&short)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let o = Command::new(&pre).arg(&genn2).output().unwrap();
    assert!(o.status.success());
    let ppid: i64 = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    run.signal(libc::SIGINT);
    let (code, _, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let who = |l: &str| l.split(" [").next().unwrap().trim().to_string();
    let short_lines = text
        .lines()
        .filter(|l| who(l).starts_with("shortlived-"))
        .count();
    assert_eq!(
        short_lines, 200,
        "events of the 100 short-lived processes:\n{text}"
    );
    let mine: Vec<String> = text
        .lines()
        .map(who)
        .filter(|w| w.ends_with(&format!("-{ppid}")))
        .collect();
    let want: Vec<String> = ["pre", "pre", "pre", "genn2", "genn2", "genn2"]
        .iter()
        .map(|n| format!("{n}-{ppid}"))
        .collect();
    assert_eq!(mine, want, "{text}");
    assert_clean(&group);
}

/// The run leaves its own threads out of what it records (its own opens
/// showed up in `t syscalls:sys_enter_openat`), unless asked to keep them.
#[test]
fn the_run_does_not_trace_itself() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("self");
    for keep in [false, true] {
        let out = dir.join("out");
        let mut env = vec![("CKP_OUTPUT", out.to_str().unwrap()), ("CKP_JSON", "1")];
        if keep {
            env.push(("CKP_TRACE_SELF", "1"));
        }
        let mut run = spawn("tp|syscalls|sys_enter_openat", &env, Stdio::null());
        let group = run.group.clone();
        run.wait_ready("syscalls/sys_enter_openat");
        let tids: Vec<i64> = std::fs::read_dir(format!("/proc/{}/task", run.child.id()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
            .collect();
        // It opens files of its instance every 250 ms.
        std::thread::sleep(Duration::from_millis(1200));
        run.signal(libc::SIGINT);
        let (code, _, err) = run.finish();
        assert_eq!(code, Some(0), "{err}");
        let text = std::fs::read_to_string(&out).unwrap();
        let own = text
            .lines()
            .filter(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["pid"].as_i64().is_some_and(|p| tids.contains(&p))
            })
            .count();
        if keep {
            assert!(own > 0, "--trace-self keeps the run's own events");
        } else {
            assert_eq!(own, 0, "the run's own opens:\n{text}");
        }
        assert_clean(&group);
    }
}

/// `-s` with a filter: the trigger runs on every hit and the filter only
/// drops the record, so the trigger carries the filter; only the kept
/// hits have stacks, each right after its own event.
#[test]
fn stacks_only_for_the_hits_the_filter_keeps() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("stkf");
    let gen = gcc(&dir, "getppid_gen", GEN);
    let other = gcc(&dir, "other_gen", GEN);
    let out = dir.join("out");
    let mut run = spawn(
        "tp|syscalls|sys_enter_getppid|comm==\"getppid_gen\"",
        &[("CKP_OUTPUT", out.to_str().unwrap()), ("CKP_STACK", "1")],
        Stdio::null(),
    );
    let group = run.group.clone();
    run.wait_ready("syscalls/sys_enter_getppid");
    let trigger = std::fs::read_to_string(
        Path::new(TRACEFS)
            .join("instances")
            .join(&group)
            .join("events/syscalls/sys_enter_getppid/trigger"),
    )
    .unwrap();
    assert_eq!(
        trigger.trim(),
        "stacktrace:unlimited if comm==\"getppid_gen\"",
        "the kernel's trigger"
    );
    let gpid = run_gen(&gen, 100);
    let opid = run_gen(&other, 300);
    std::thread::sleep(Duration::from_millis(200));
    run.signal(libc::SIGINT);
    let (code, _, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(!text.contains(&format!("-{opid} ")), "{text:.2000}");
    let mut n = 0;
    for (i, l) in lines.iter().enumerate() {
        if l.contains(": f0: ") {
            assert!(l.contains(&format!("-{gpid} ")), "{l}");
            n += 1;
            let frames = lines[i + 1..].iter().take_while(|f| f.starts_with(" => "));
            assert!(frames.count() > 0, "{l} has its stack");
        }
    }
    assert_eq!(n, 100);
    assert_clean(&group);
}

/// Readers take the kernel's pages whole. A reader that read on after
/// catching up with the kernel got the page being written, copied record
/// by record, a few records per read(2): at full rate four reads per
/// page's worth of records (and as many mostly empty pages in memory),
/// at lower rates many more. Counted here with the process's read(2)
/// calls (/proc/PID/io `syscr`) while a generator runs.
#[test]
fn readers_take_whole_pages() {
    let Some(_l) = lock() else { return };
    let dir = tmpdir("pages");
    let gen = gcc(&dir, "getppid_gen", GEN);
    let (mut child, group) = bin(
        &["t syscalls:sys_enter_getppid", "-o", "/dev/null"],
        Stdio::null(),
        Stdio::piped(),
    );
    wait_enabled(&mut child, &group, "syscalls/sys_enter_getppid");
    let syscr = |pid: u32| -> u64 {
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("syscr: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let before = syscr(child.id());
    let t0 = Instant::now();
    let calls = 2_000_000u64;
    run_gen(&gen, calls);
    std::thread::sleep(Duration::from_millis(300));
    let secs = t0.elapsed().as_secs_f64();
    let reads = syscr(child.id()) - before;
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // A getppid record is 20 bytes: 204 to a 4 KiB page.
    let pages = calls / 204;
    // Besides whole pages, each reader's round (one per 2 ms or more)
    // reads at most a page being written, a part page and an empty read.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let rounds = secs * 500.0 * cpus;
    let bound = pages as f64 * 1.2 + 3.0 * rounds + 200.0;
    eprintln!("{reads} reads for {pages} pages in {secs:.2} s (bound {bound:.0})");
    assert!(
        (reads as f64) < bound,
        "{reads} reads for {pages} pages of records in {secs:.2} s ({err})"
    );
    assert_clean(&group);
}

/// Without `--buffer-kb`, a streamed run's buffer is raised to 4 MiB per
/// CPU where that is at most 1/2048 of memory over all CPUs, never below
/// the kernel's default; the global buffer is untouched.
#[test]
fn ring_buffer_default_size() {
    let Some(_l) = lock() else { return };
    let global = std::fs::read_to_string(Path::new(TRACEFS).join("buffer_size_kb")).unwrap();
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    let ncpu = std::fs::read_dir(Path::new(TRACEFS).join("per_cpu"))
        .unwrap()
        .count() as u64;
    let want = (mem_kb / 2048 / ncpu).min(4096);
    for (args, expect) in [
        (
            vec!["t syscalls:sys_enter_getppid", "-o", "/dev/null"],
            None,
        ),
        (
            vec![
                "t syscalls:sys_enter_getppid",
                "-o",
                "/dev/null",
                "--buffer-kb",
                "256",
            ],
            Some(256),
        ),
    ] {
        let (mut child, group) = bin(&args, Stdio::null(), Stdio::piped());
        wait_enabled(&mut child, &group, "syscalls/sys_enter_getppid");
        let kb: u64 = std::fs::read_to_string(
            Path::new(TRACEFS)
                .join("instances")
                .join(&group)
                .join("buffer_size_kb"),
        )
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{err}");
        match expect {
            // The kernel rounds up to whole sub-buffers.
            Some(e) => assert!((e..e + 16).contains(&kb), "--buffer-kb 256: {kb}"),
            // Raised where the kernel's default (1408 KiB or so) is less.
            None if want > 1500 => {
                assert!(
                    (want..want + 16).contains(&kb),
                    "default: {kb}, want {want}"
                )
            }
            None => assert!(kb <= 1500, "default: {kb}, the kernel's kept"),
        }
        assert_clean(&group);
    }
    let after = std::fs::read_to_string(Path::new(TRACEFS).join("buffer_size_kb")).unwrap();
    assert_eq!(after, global, "the global buffer size is untouched");
}
