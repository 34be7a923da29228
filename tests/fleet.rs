//! Fleets (README, "Fleets"), offline on the fixture kernels: the check
//! report of one probe file against Debian 6.1, 6.12 x86_64 and arm64 and
//! this machine's 6.18 (each named by its file name), exactly; the same
//! from btfhub-style `.tar.xz`/`.xz` archives; the one `-S` script for all
//! of them, and what it does on a kernel it has no types for (this
//! machine's, which is another build than the fixture's).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cli::{golden, normalised};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The binary, run from the repository (paths in reports are relative).
fn ckp(args: &[&str]) -> Output {
    ckp_env(args, &[])
}

fn ckp_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_coolkprobe"));
    c.current_dir(repo()).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The cells of a kernel's row of the check's table.
fn row(report: &str, kernel: &str) -> Vec<String> {
    report
        .lines()
        .find_map(|l| l.strip_prefix(kernel).filter(|r| r.starts_with(' ')))
        .unwrap_or_else(|| panic!("no row of {kernel} in:\n{report}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const PROBES: &str = "tests/fixtures/fleet/probes.txt";

/// The releases of the fixture kernels, from their file names.
const KERNELS: [&str; 4] = [
    "6.1.0-56-cloud-amd64",
    "6.12.117+deb12-cloud-amd64",
    "6.12.117+deb12-cloud-arm64",
    "6.18.44-fc-v782",
];

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ckp-fleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Stable members everywhere; `i_ctime` only on 6.1 (the others name the
/// new members); `tcp_sendpage` only on 6.1; `%6` only where arm64 has
/// the register. The table, every difference and every reason, exactly;
/// exit 1, naming the probes that fail.
#[test]
fn check_report_on_the_fixture_kernels() {
    let out = ckp(&["--check", "-v", "btf-fixtures", "-f", PROBES]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "4 of 5 probe(s) fail on some kernel: f1, f2, f3, f4\n"
    );
    let report = text(&out.stdout);
    for k in KERNELS {
        assert!(
            report.contains(&format!("\n{k} ")),
            "{k} not named: {report}"
        );
    }
    golden("fleet/check.txt", &report);
}

/// The same report as JSON, for CI gates.
#[test]
fn check_report_json() {
    let out = ckp(&["--check", "--json", "-v", "btf-fixtures", "-f", PROBES]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failing"], serde_json::json!(["f1", "f2", "f3", "f4"]));
    let names: Vec<&str> = v["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["release"].as_str().unwrap())
        .collect();
    assert_eq!(names, KERNELS);
    let pretty = serde_json::to_string_pretty(&v).unwrap() + "\n";
    golden("fleet/check.json", &pretty);
}

/// The two other cells: a struct renamed after 6.1 (`io_wqe_acct`, now
/// `io_wq_acct`) is missing with the nearest name; `inet_csk_accept`'s
/// second argument changed from `int flags` to `struct proto_accept_arg *`
/// (6.10): read by position (`%1`) it is the prototype's failure, read
/// by name (`sk`) fine everywhere. Exit 1, both failing probes named.
#[test]
fn check_report_type_missing_and_prototype_changed() {
    let out = ckp(&[
        "--check",
        "--json",
        "-v",
        "btf-fixtures",
        "p inet_csk_accept flags=%1",
        "p inet_csk_accept sk=sk",
        "p tcp_v4_rcv acct=%0~(struct io_wqe_acct)->nr_workers",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "2 of 3 probe(s) fail on some kernel: f0, f2\n"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failing"], serde_json::json!(["f0", "f2"]));
    let cell = |kernel: &str, event: &str| -> serde_json::Value {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kernel"] == kernel && r["event"] == event)
            .unwrap_or_else(|| panic!("no {event} on {kernel}: {v:#}"))
            .clone()
    };
    for k in KERNELS {
        let (f0, f1, f2) = (cell(k, "f0"), cell(k, "f1"), cell(k, "f2"));
        assert_eq!(f1["status"], "ok", "{f1:#}");
        if k == KERNELS[0] {
            assert_eq!(f0["status"], "ok", "{f0:#}");
            assert_eq!(f2["status"], "ok", "{f2:#}");
            continue;
        }
        assert_eq!(f0["status"], "proto", "{f0:#}");
        assert_eq!(f0["fails"], true);
        assert_eq!(
            f0["diagnostics"][0]["message"],
            format!(
                "the prototype changed: argument %1 is `struct proto_accept_arg * arg` here, \
                 `int flags` on {}",
                KERNELS[0]
            ),
            "{f0:#}"
        );
        assert_eq!(f2["status"], "no-type", "{f2:#}");
        assert_eq!(f2["fails"], true);
        assert_eq!(
            f2["diagnostics"][0]["message"], "unknown struct `io_wqe_acct`",
            "{f2:#}"
        );
        assert_eq!(
            f2["diagnostics"][0]["help"], "did you mean `struct io_wq_acct`?",
            "{f2:#}"
        );
    }
}

/// A probe file every kernel takes: exit 0; offsets differing from the
/// first kernel are no failure.
#[test]
fn check_passes_when_every_probe_compiles() {
    let out = ckp(&[
        "--check",
        "-v",
        "btf-fixtures",
        "p wake_up_new_task comm=p->comm pid=p->pid",
        "r vfs_read r=$retval",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert_eq!(row(&report, KERNELS[0]), ["x86_64", "ok", "ok"], "{report}");
    assert_eq!(
        row(&report, KERNELS[2]),
        ["aarch64", "differs", "ok"],
        "{report}"
    );
}

/// btfhub's layout: `DISTRO/VERSION/ARCH/RELEASE.btf.tar.xz` (and a bare
/// `.xz`), made here with tar and xz from the fixtures. Every kernel is
/// named and compiled as from the raw file; the decompressed BTF is kept
/// in the cache and the next run maps it; a damaged archive is that
/// kernel's failure, not the run's.
#[test]
fn btfhub_archives() {
    let root = scratch("btfhub");
    let cache = root.join("cache");
    let hub = root.join("hub");
    let layout = [
        ("debian/12/x86_64", KERNELS[0], ".btf.tar.xz"),
        ("debian/12/x86_64", KERNELS[1], ".btf.tar.xz"),
        ("debian/12/arm64", KERNELS[2], ".btf.xz"),
        ("fedora/43/x86_64", KERNELS[3], ".btf.tar.xz"),
    ];
    for (dir, rel, ext) in layout {
        let d = hub.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        let btf = d.join(format!("{rel}.btf"));
        std::fs::copy(repo().join(format!("btf-fixtures/vmlinux-{rel}.btf")), &btf).unwrap();
        let status = if ext == ".btf.tar.xz" {
            Command::new("tar")
                .current_dir(&d)
                .args(["-cJf", &format!("{rel}.btf.tar.xz"), &format!("{rel}.btf")])
                .status()
        } else {
            Command::new("xz").arg(&btf).status()
        }
        .expect("tar and xz (apt-get install xz-utils)");
        assert!(status.success());
        let _ = std::fs::remove_file(&btf);
    }
    let raw = ckp(&["--check", "--json", "-v", "btf-fixtures", "-f", PROBES]);
    let env = [("XDG_CACHE_HOME", cache.as_path())];
    let args = [
        "--check",
        "--json",
        "-v",
        hub.to_str().unwrap(),
        "-f",
        PROBES,
    ];
    let first = ckp_env(&args, &env);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&raw.stdout).unwrap(),
        serde_json::from_slice(&first.stdout).unwrap(),
    );
    // The same kernels, from the archives' names: releases and arches
    // (arm64 from its directory here, from the release's `-arm64` there).
    // Directories sort arm64 first: the kernels are compared by release.
    let kernels = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        let mut k: Vec<_> = v["kernels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let file = k["file"].as_str().unwrap();
                let ext = if file.ends_with(".tar.xz") {
                    ".btf.tar.xz"
                } else if file.ends_with(".xz") {
                    ".btf.xz"
                } else {
                    ".btf"
                };
                (
                    k["release"].as_str().unwrap().to_string(),
                    k["arch"].as_str().unwrap().to_string(),
                    ext.to_string(),
                )
            })
            .collect();
        k.sort();
        k
    };
    let want: Vec<(String, String, String)> = layout
        .iter()
        .map(|(dir, rel, ext)| {
            let arch = if dir.ends_with("arm64") {
                "aarch64"
            } else {
                "x86_64"
            };
            (rel.to_string(), arch.to_string(), ext.to_string())
        })
        .collect();
    assert_eq!(kernels(&b), want);
    assert_eq!(
        kernels(&a).iter().map(|k| &k.0).collect::<Vec<_>>(),
        want.iter().map(|k| &k.0).collect::<Vec<_>>()
    );
    // The same cells, fetchargs and differences (each probe compared with
    // its first kernel: 6.1 for both, arm64 for `%6`, whichever comes first).
    let cells = |v: &serde_json::Value| -> Vec<String> {
        let mut c: Vec<String> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                // ok/differs depend on which kernel comes first.
                let status = match r["fails"].as_bool().unwrap() {
                    true => r["status"].as_str().unwrap(),
                    false => "compiles",
                };
                serde_json::json!([r["kernel"], r["event"], status, r["fetchargs"]]).to_string()
            })
            .collect();
        c.sort();
        c
    };
    assert_eq!(cells(&a), cells(&b));
    let cached: Vec<PathBuf> = std::fs::read_dir(cache.join("coolkprobe"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("xz-"))
        .collect();
    assert_eq!(cached.len(), 4, "{cached:?}");
    let stamps: Vec<_> = cached
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    let second = ckp_env(&args, &env);
    assert_eq!(second.stdout, first.stdout);
    let again: Vec<_> = cached
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    assert_eq!(stamps, again, "the cache was written again");
    // A damaged archive: that kernel's row says why, the others stand.
    let bad = hub
        .join("fedora/43/x86_64")
        .join(format!("{}.btf.tar.xz", KERNELS[3]));
    let mut bytes = std::fs::read(&bad).unwrap();
    let n = bytes.len();
    bytes.truncate(n / 2);
    std::fs::write(&bad, bytes).unwrap();
    let out = ckp_env(
        &["--check", "-v", hub.to_str().unwrap(), "-f", PROBES],
        &env,
    );
    let report = text(&out.stdout);
    assert_eq!(
        row(&report, KERNELS[3]),
        ["x86_64", "types", "types", "types", "types", "types"],
        "{report}"
    );
    assert!(report.contains("malformed archive"), "{report}");
    // arm64 is the first kernel here: the others differ from it.
    assert_eq!(
        row(&report, KERNELS[2]),
        ["aarch64", "ok", "no-member", "no-func", "arch", "ok"],
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// One `-S` script for the four kernels, exactly: how it tells them
/// apart, each kernel's definitions, the removal commands (the same on
/// every kernel).
#[test]
fn one_script_for_the_fixture_kernels() {
    let out = ckp(&[
        "-S",
        "-v",
        "btf-fixtures",
        "p wake_up_new_task comm=p->comm pid=p->pid",
        "p vfs_read n=count",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    golden(
        "fleet/script_fixture_kernels.sh",
        &normalised(&text(&out.stdout)),
    );
}

/// A probe that fails on some kernel: no script, every reason once with
/// the kernels it holds on, exit 2.
#[test]
fn script_refused_when_a_probe_fails_somewhere() {
    let out = ckp(&["-S", "-v", "btf-fixtures", "-f", PROBES]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    golden("fleet/script_refused.txt", &text(&out.stderr));
}

/// The script on this machine, whose kernel is none of the fixtures (the
/// 6.18 fixture is another build of it, with another release): it says
/// which kernels it has, installs nothing and exits 1, before it needs
/// root or tracefs.
#[test]
fn script_refuses_a_kernel_it_has_no_types_for() {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let release = release.trim();
    assert!(
        !KERNELS.contains(&release),
        "this machine runs a fixture kernel ({release}): the test needs another"
    );
    let dir = scratch("refuse");
    let script = dir.join("fleet.sh");
    let out = ckp(&["-S", "-v", "btf-fixtures", "p do_exit code=%0"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(&script, &out.stdout).unwrap();
    let group = normalised(&text(&out.stdout));
    assert!(group.contains("coolkprobe_<PID>"));
    let run = Command::new("sh").arg(&script).output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(run.stdout.is_empty());
    refused_before_tracefs(&script);
    let build_id = coolkprobe::types::target::Kernel::running()
        .build_id_hex()
        .unwrap_or_else(|| "unknown".into());
    let arch = coolkprobe::arch::Arch::host();
    assert_eq!(
        text(&run.stderr),
        format!(
            "coolkprobe: no definitions for this kernel ({release} {arch}, build-id {build_id}): \
             this script has them for 6.1.0-56-cloud-amd64 x86_64, 6.12.117+deb12-cloud-amd64 x86_64, \
             6.12.117+deb12-cloud-arm64 aarch64, 6.18.44-fc-v782 x86_64; nothing installed\n"
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The script, traced by `sh -x`, stopped before it chose a tracefs
/// (`T=`): nothing of it was written there, nothing mounted.
fn refused_before_tracefs(script: &Path) {
    let run = Command::new("sh").arg("-x").arg(script).output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    let trace = text(&run.stderr);
    assert!(trace.contains("+ exit 1"), "{trace}");
    for l in trace.lines() {
        assert!(
            !l.starts_with("+ T=") && !l.starts_with("+ mount") && !l.starts_with("+ echo p "),
            "the refusing script went on to `{l}`:\n{trace}"
        );
    }
}

/// A kernel whose release the script knows, but whose build-id is not
/// the one its types came with, is another build: refused. This machine's
/// own build-id is read from /sys/kernel/notes; its release is made the
/// script's by naming the 6.1 fixture after it, with a `.notes` copy of
/// another build-id beside it (what `uname -r` says cannot be changed).
#[test]
fn script_refuses_another_build_of_a_known_release() {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let release = release.trim().to_string();
    let Some(own) = coolkprobe::types::target::Kernel::running().build_id else {
        common::skip::skip("/sys/kernel/notes has no build-id");
        return;
    };
    let dir = scratch("otherbuild");
    let btf = dir.join(format!("vmlinux-{release}.btf"));
    std::fs::copy(
        repo().join("btf-fixtures/vmlinux-6.1.0-56-cloud-amd64.btf"),
        &btf,
    )
    .unwrap();
    let other: Vec<u8> = own.iter().map(|b| b ^ 0xff).collect();
    std::fs::write(dir.join(format!("vmlinux-{release}.notes")), notes(&other)).unwrap();
    let out = ckp(&[
        "-S",
        "-v",
        btf.to_str().unwrap(),
        "-v",
        "btf-fixtures/vmlinux-6.12.117+deb12-cloud-arm64.btf",
        "p do_exit",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let script = dir.join("fleet.sh");
    std::fs::write(&script, &out.stdout).unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert!(text(&out.stdout).contains(&format!("build-id {}", hex(&other))));
    let run = Command::new("sh").arg(&script).output().unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    refused_before_tracefs(&script);
    let arch = coolkprobe::arch::Arch::host();
    assert_eq!(
        text(&run.stderr),
        format!(
            "coolkprobe: this kernel, {release} {arch}, is build {}; this script has the types of build {} of that release, whose offsets may differ: nothing installed\n",
            hex(&own),
            hex(&other)
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// ELF notes as /sys/kernel/notes holds them: a Xen note, then the GNU
/// build-id.
fn notes(build_id: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let mut note = |name: &[u8], ty: u32, desc: &[u8]| {
        v.extend((name.len() as u32 + 1).to_le_bytes());
        v.extend((desc.len() as u32).to_le_bytes());
        v.extend(ty.to_le_bytes());
        let mut n = name.to_vec();
        n.push(0);
        n.resize(n.len().div_ceil(4) * 4, 0);
        v.extend(n);
        let mut d = desc.to_vec();
        d.resize(d.len().div_ceil(4) * 4, 0);
        v.extend(d);
    };
    note(b"Xen", 6, b"linux\0");
    note(b"GNU", 3, build_id);
    v
}

/// The script's own reader of /sys/kernel/notes (POSIX sh and od) gives
/// the build-id coolkprobe reads: on this machine's kernel, and on notes
/// with a build-id of another length after other notes.
#[test]
fn script_reads_the_build_id_as_coolkprobe_does() {
    let dir = scratch("notes");
    let prog = format!(
        "{}ckp_build_id \"$1\"\n",
        coolkprobe::tracefs::script::BUILD_ID_FN
    );
    let read = |file: &Path| -> Option<String> {
        let out = Command::new("sh")
            .args(["-c", &prog, "sh"])
            .arg(file)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| text(&out.stdout).trim().to_string())
    };
    let running = coolkprobe::types::target::Kernel::running().build_id_hex();
    assert!(
        running.is_some(),
        "this kernel's /sys/kernel/notes has no build-id"
    );
    assert_eq!(read(Path::new("/sys/kernel/notes")), running);
    let id16: Vec<u8> = (1..=16).collect();
    let file = dir.join("notes");
    std::fs::write(&file, notes(&id16)).unwrap();
    assert_eq!(
        read(&file).as_deref(),
        Some("0102030405060708090a0b0c0d0e0f10")
    );
    std::fs::write(&file, &notes(&id16)[..30]).unwrap();
    assert_eq!(read(&file), None);
    assert_eq!(read(&dir.join("missing")), None);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two files that both say they are the same release and arch, neither
/// with a build-id: the script could not tell them apart.
#[test]
fn script_refuses_kernels_it_cannot_tell_apart() {
    let dir = scratch("twins");
    for d in ["a", "b"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
        std::fs::copy(
            repo().join("btf-fixtures/vmlinux-6.1.0-56-cloud-amd64.btf"),
            dir.join(d).join("vmlinux-6.1.0-56-cloud-amd64.btf"),
        )
        .unwrap();
    }
    let out = ckp(&["-S", "-v", dir.to_str().unwrap(), "p do_exit"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let file = |d: &str| dir.join(d).join("vmlinux-6.1.0-56-cloud-amd64.btf");
    assert_eq!(
        err,
        format!(
            "error: {} and {} are both 6.1.0-56-cloud-amd64 x86_64 and have no build-id: the script could not tell them apart\n\
             help: put a copy of each kernel's /sys/kernel/notes beside its file (NAME.notes)\n",
            file("a").display(),
            file("b").display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A live run and the discovery commands work on one kernel's types.
#[test]
fn several_kernels_only_for_show_and_check() {
    for args in [
        vec!["-v", "btf-fixtures", "-d", "1", "p do_exit"],
        vec!["-v", "btf-fixtures", "--layout", "task_struct"],
    ] {
        let out = ckp(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains("works on one kernel's types, and -v names several"),
            "{}",
            text(&out.stderr)
        );
    }
}
