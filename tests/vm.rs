//! Real kprobes on real kernels (README, "Tests").
//!
//! The kernels here have no kprobes, so each test boots a Debian cloud
//! kernel under QEMU (tests/vm/run.sh: fetches and caches the newest 5.10,
//! 6.1 or 6.12 package, packs busybox + this build's coolkprobe + the
//! scenarios of tests/vm/scenarios into an initramfs, boots it once, runs
//! every scenario in that one boot) and then checks each scenario's output
//! here, on the host, where the values can be parsed properly (JSON
//! included). Every scenario runs on every kernel of [`KERNELS`]; a
//! scenario asks which kernel and features it has from /etc/vm.conf (the
//! checks from `Vm::conf` / `Vm::has`).
//!
//! A kernel that does not boot, a scenario that fails inside the VM, or a
//! check that fails here fails the test with the scenario output and the
//! serial console log. Nothing is skipped: without qemu, busybox-static or
//! the kernel packages the test fails and says what to install.
//!
//! COOLKPROBE_VM_SCENARIOS="02-struct 05-stack" limits a run to those
//! scenarios (by file name without .sh) when debugging; tests/vm/README.md
//! shows how to boot one kernel with one scenario by hand.

#[path = "vm/check.rs"]
mod vmcheck;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use vmcheck::{Scenario, Vm};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The scenario scripts this run boots with, by name.
fn scenario_files() -> BTreeMap<String, PathBuf> {
    let only: Option<Vec<String>> = std::env::var("COOLKPROBE_VM_SCENARIOS")
        .ok()
        .map(|s| s.split_whitespace().map(str::to_owned).collect());
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(repo().join("tests/vm/scenarios")).expect("tests/vm/scenarios") {
        let path = entry.expect("scenario dir entry").path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".sh"))
        else {
            continue;
        };
        if only.as_ref().is_none_or(|o| o.iter().any(|x| x == name)) {
            files.insert(name.to_owned(), path);
        }
    }
    assert!(
        !files.is_empty(),
        "no scenario selected (COOLKPROBE_VM_SCENARIOS={only:?})"
    );
    files
}

/// The coolkprobe under test: COOLKPROBE_VM_BIN if set, else an optimised
/// build of this tree. Under software emulation a debug build makes each
/// kprobe run seconds slower (measured with 6.1 and 6.12: ~3.7 min with it,
/// ~1.3 min with a release build), so a debug `cargo test` builds the
/// release binary once, here (cargo's build lock is free while tests run).
fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("COOLKPROBE_VM_BIN") {
            return PathBuf::from(bin);
        }
        let this = PathBuf::from(env!("CARGO_BIN_EXE_coolkprobe"));
        if !cfg!(debug_assertions) {
            return this;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(repo())
            .args(["build", "--release", "--bin", "coolkprobe"])
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo build --release: {e}"));
        assert!(status.success(), "cargo build --release failed: {status}");
        // target/debug/coolkprobe -> target/release/coolkprobe, whatever the target dir.
        let release = this
            .parent()
            .and_then(Path::parent)
            .map(|t| t.join("release/coolkprobe"))
            .expect("target dir of the test binary");
        assert!(
            release.exists(),
            "no {} after cargo build --release",
            release.display()
        );
        release
    })
    .clone()
}

/// The kernels of the matrix, by tests/vm/kernel.sh series, and whether the
/// VM gets that build's debuginfo vmlinux (the -dbg package, ~280 MB, on a
/// disk: scenario 13 types probes from its DWARF with BTF hidden).
/// `COOLKPROBE_VM_DEBUGINFO="6.1 5.10"` names other series for it.
const KERNELS: &[&str] = &["5.10", "6.1", "6.12"];

fn with_debuginfo(series: &str) -> bool {
    match std::env::var("COOLKPROBE_VM_DEBUGINFO") {
        Ok(v) => v.split_whitespace().any(|s| s == series),
        Err(_) => series == "6.1",
    }
}

/// The probes of scenario 18's fleet scripts: struct walks whose offsets
/// differ from kernel to kernel, by parameter name.
const FLEET_PROBES: [&str; 2] = [
    "p wake_up_new_task comm=p->comm pid=p->pid users=p->mm->mm_users",
    "p do_filp_open name=pathname->name",
];

/// Scenario 18's data (the VM's /data), made once here as a user would:
/// `coolkprobe -S` with the types of several kernels. `fleet-all.sh` has
/// every kernel of the matrix, from its ELF vmlinux (the one inside its
/// bzImage: `.BTF` and build-id); `fleet-some.sh` has 6.1's vmlinux and
/// the raw BTF fixtures of 6.12 (x86_64, arm64) and 6.18, no 5.10. Each
/// kernel's definitions in `fleet-all.sh` are first checked to be what a
/// script for that kernel alone installs.
fn fleet_data() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm-fleet");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("vm-fleet data dir");
        let vmlinux: Vec<PathBuf> = KERNELS
            .iter()
            .map(|series| {
                let out = Command::new("bash")
                    .arg(repo().join("tests/vm/kernel.sh"))
                    .args(["-x", series])
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run tests/vm/kernel.sh: {e}"));
                assert!(out.status.success(), "kernel.sh -x {series} failed");
                PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("vmlinux")
            })
            .collect();
        let show = |kernels: &[PathBuf]| -> String {
            let mut c = Command::new(binary());
            c.arg("-S");
            for k in kernels {
                c.arg("-v").arg(k);
            }
            let out = c.args(FLEET_PROBES).output().expect("coolkprobe -S");
            assert!(
                out.status.success(),
                "coolkprobe -S {kernels:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).expect("utf-8 script")
        };
        let all = show(&vmlinux);
        let fixture = |f: &str| repo().join("btf-fixtures").join(f);
        let some = show(&[
            vmlinux[KERNELS.iter().position(|&k| k == "6.1").expect("6.1")].clone(),
            fixture("vmlinux-6.12.117+deb12-cloud-amd64.btf"),
            fixture("vmlinux-6.12.117+deb12-cloud-arm64.btf"),
            fixture("vmlinux-6.18.44-fc-v782.btf"),
        ]);
        for (i, v) in vmlinux.iter().enumerate() {
            let alone = vmcheck::definitions(&show(std::slice::from_ref(v)), None);
            let branch = vmcheck::definitions(&all, Some(i + 1));
            assert!(
                !alone.is_empty() && alone == branch,
                "fleet-all.sh's k{} installs {branch:?}, a script for {} alone {alone:?}",
                i + 1,
                v.display()
            );
        }
        std::fs::write(dir.join("fleet-all.sh"), all).expect("fleet-all.sh");
        std::fs::write(dir.join("fleet-some.sh"), some).expect("fleet-some.sh");
        dir
    })
}

fn boot(series: &str, scenarios: &BTreeMap<String, PathBuf>) -> Vm {
    assert!(KERNELS.contains(&series), "{series} is not in KERNELS");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("vm-{series}"));
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let run = Command::new("bash")
        .arg(repo().join("tests/vm/run.sh"))
        .args(["-k", series])
        .args(with_debuginfo(series).then_some("-g"))
        .args(
            scenarios
                .contains_key("18-fleet")
                .then(|| [PathBuf::from("-d"), fleet_data().clone()])
                .into_iter()
                .flatten(),
        )
        .arg("-b")
        .arg(binary())
        .arg("-o")
        .arg(&out)
        .args(scenarios.values())
        .output()
        .unwrap_or_else(|e| panic!("cannot run tests/vm/run.sh: {e}"));
    let stderr = String::from_utf8_lossy(&run.stderr);
    let console = std::fs::read_to_string(out.join("console.log")).unwrap_or_default();
    if !run.status.success() {
        let partial = std::fs::read_to_string(out.join("results.txt")).unwrap_or_default();
        panic!(
            "Debian {series} VM run failed ({}):\n{stderr}\n--- scenario output so far ---\n{partial}\n--- console ({}) ---\n{console}",
            run.status,
            out.join("console.log").display()
        );
    }
    eprintln!(
        "Debian {series}: booted and ran {} scenarios in {:.1}s",
        scenarios.len(),
        started.elapsed().as_secs_f64()
    );
    let results = std::fs::read_to_string(out.join("results.txt")).expect("results.txt");
    let conf = std::fs::read_to_string(out.join("vm.conf")).expect("vm.conf");
    Vm::new(series, results, console, &conf, out)
}

/// Boots started for every kernel at once when the whole matrix runs (no
/// test-name filter on the command line): libtest runs as many tests at a
/// time as there are cores (two here), so the third kernel would otherwise
/// boot alone on one core once the first is done. A filtered run boots
/// only what it runs.
fn prestarted() -> &'static Mutex<HashMap<&'static str, JoinHandle<Vm>>> {
    static BOOTS: OnceLock<Mutex<HashMap<&'static str, JoinHandle<Vm>>>> = OnceLock::new();
    BOOTS.get_or_init(|| {
        let filtered = std::env::args().skip(1).any(|a| !a.starts_with('-'));
        let mut boots = HashMap::new();
        if !filtered {
            let files = scenario_files();
            for &series in KERNELS {
                let files = files.clone();
                boots.insert(series, std::thread::spawn(move || boot(series, &files)));
            }
        }
        Mutex::new(boots)
    })
}

fn run_kernel(series: &str) {
    let files = scenario_files();
    let started = prestarted()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(series);
    let vm = match started {
        // A boot that failed panicked in its thread: fail here with its message.
        Some(boot) => boot
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        None => boot(series, &files),
    };
    let mut failures = Vec::new();
    for name in files.keys() {
        let verdict = match vm.scenario(name) {
            None => Err("the VM printed no output for it (did /init run it?)".to_owned()),
            Some(s) => check(&vm, s),
        };
        match verdict {
            Ok(()) => eprintln!(
                "Debian {series} ({}): {name}: ok ({:.1}s)",
                vm.release,
                vm.scenario(name).map_or(0.0, |s| s.seconds)
            ),
            Err(e) => {
                eprintln!("Debian {series} ({}): {name}: FAILED", vm.release);
                let output = vm.scenario(name).map(|s| s.output.as_str()).unwrap_or("");
                failures.push(format!("=== {name}: {e}\n--- its output ---\n{output}"));
            }
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} scenarios failed on Debian {series} ({}; outputs in {}):\n{}\n--- console ---\n{}",
            failures.len(),
            files.len(),
            vm.release,
            vm.dir.display(),
            failures.join("\n"),
            vm.console
        );
    }
}

/// A scenario's verdict: it must have run to the end inside the VM, and its
/// values must pass the host-side checks registered for its name.
fn check(vm: &Vm, s: &Scenario) -> Result<(), String> {
    if s.rc != 0 {
        return Err(format!("failed inside the VM (exit {})", s.rc));
    }
    match s.name.as_str() {
        "00-raw-kprobe" => vmcheck::raw_kprobe(vm, s),
        "01-entry-return" => vmcheck::entry_return(vm, s),
        "02-struct" => vmcheck::structs(vm, s),
        "03-filter" => vmcheck::filters(vm, s),
        "04-offset" => vmcheck::offset(vm, s),
        "05-stack" => vmcheck::stack(vm, s),
        "06-json" => vmcheck::json(vm, s),
        "07-teardown" => vmcheck::teardown(vm, s),
        "08-btf-args" => vmcheck::btf_args(vm, s),
        "09-packets" => vmcheck::packets(vm, s),
        "10-packet-filters" => vmcheck::packet_filters(vm, s),
        "11-validation" => vmcheck::validation(vm, s),
        "12-typed-args" => vmcheck::typed_args(vm, s),
        "13-no-btf" => vmcheck::no_btf(vm, s),
        "14-kernel-features" => vmcheck::kernel_features(vm, s),
        "15-aggregations" => vmcheck::aggregations(vm, s),
        "16-values" => vmcheck::values(vm, s),
        "17-latency" => vmcheck::latency(vm, s),
        "30-return-args" => vmcheck::return_args(vm, s),
        "31-atomic-script" => vmcheck::atomic_script(vm, s),
        "18-fleet" => vmcheck::fleet(vm, s),
        "20-missed-hits" => vmcheck::missed_hits(vm, s),
        other => Err(format!(
            "no host-side check for scenario {other} in tests/vm.rs"
        )),
    }
}

#[test]
fn kprobes_on_debian_5_10() {
    run_kernel("5.10");
}

#[test]
fn kprobes_on_debian_6_1() {
    run_kernel("6.1");
}

#[test]
fn kprobes_on_debian_6_12() {
    run_kernel("6.12");
}
