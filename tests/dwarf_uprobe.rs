//! Typed uprobes: `p /path/bin:symbol name=%0~(struct T)->m` walks the
//! binary's own DWARF. A C program built with -g during the test (PIE and
//! not): the -S definitions are checked offset by offset against pahole,
//! then traced for real on this machine's kernel (uprobes work here) by
//! the CLI, and the values in its --json output are checked against what
//! the program passed: struct members, nested pointers, char arrays, char
//! pointers into user memory, a 2-D array element, entry and return.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::pahole;

fn build(flags: &[&str], name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ckp-uprobe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/types.c");
    let st = Command::new("gcc")
        .args(["-g", "-O0"])
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc is needed");
    assert!(st.success());
    out
}

fn coolkprobe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
}

const ARGS: &str = "kind=%0S~(struct holder)->kind comm=%0~(struct holder)->comm \
     name=%0~(struct holder)->name m=%0S~(struct holder)->matrix[1][2] \
     tag=%0~(struct holder)->u.in.tag hi=%0U~(struct holder)->hi16 \
     nk=%0S~(struct holder)->next->kind label=%1";

fn show(bin: &Path) -> String {
    let out = coolkprobe()
        .arg("-S")
        .arg(format!("p {}:probe_me {ARGS}", bin.display()))
        .arg(format!("r {}:probe_me r=$retval", bin.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Byte offset of member `name` of `struct holder` as pahole prints it.
fn pahole_offset(bin: &Path, strukt: &str, name: &str) -> u64 {
    let out = Command::new("pahole")
        .args(["-F", "dwarf", "-C", strukt])
        .arg(bin)
        .output()
        .expect("pahole is needed (apt-get install dwarves)");
    let text = String::from_utf8(out.stdout).unwrap();
    pahole::members(&text)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("pahole shows no {name} in {strukt}:\n{text}"))
        .1
}

#[test]
fn typed_uprobe_definitions_match_pahole() {
    for (name, flags) in [("nopie", &["-no-pie"][..]), ("pie", &["-pie", "-fPIE"][..])] {
        let bin = build(flags, &format!("holder-{name}"));
        let script = show(&bin);
        let def = script
            .lines()
            .find(|l| l.starts_with("echo 'p:"))
            .unwrap_or_else(|| panic!("no uprobe definition:\n{script}"));
        let off = |m: &str| pahole_offset(&bin, "holder", m);
        // holder.u is at `u`, the tag inside struct inner at 4; matrix[1][2]
        // is 1 row of 3 ints plus 2 ints in; hi16 sits in the anonymous
        // union's anonymous struct after lo16.
        let inner_tag = pahole_offset(&bin, "inner", "tag");
        let want = [
            format!("kind=+{:#x}(%di):s32", off("kind")).replace("+0x0(", "+0("),
            format!("comm=+{:#x}(%di):string", off("comm")),
            format!("name=+0(+{:#x}(%di)):string", off("name")),
            format!("m=+{:#x}(%di):s32", off("matrix") + 4 * (3 + 2)),
            format!("tag=+{:#x}(%di):string", off("u") + inner_tag),
            format!("hi=+{:#x}(%di):u16", off("hi16")),
            format!("nk=+0(+{:#x}(%di)):s32", off("next")),
            "label=%si:x64".to_string(),
        ];
        for w in &want {
            assert!(
                def.split_whitespace().any(|a| a.trim_matches('\'') == w),
                "{name}: expected {w} in\n{def}"
            );
        }
        let ret = script.lines().find(|l| l.starts_with("echo 'r:")).unwrap();
        assert!(ret.contains(" r=$retval'"), "{ret}");
    }
}

/// One live tracing test at a time, across test binaries (the lock the
/// live tests take).
fn live_lock() -> Option<std::fs::File> {
    common::trace::live_lock("a live typed uprobe")
}

/// The real command line, live: typed uprobe values in --json output.
#[test]
fn typed_uprobes_live_json() {
    let Some(_lock) = live_lock() else { return };
    for (name, flags) in [
        ("ckpj-np", &["-no-pie"][..]),
        ("ckpj-pie", &["-pie", "-fPIE"][..]),
    ] {
        let bin = build(flags, &format!("{name}{}", std::process::id() % 100_000));
        let entry = format!("p {}:probe_me {ARGS}", bin.display());
        let ret = format!("r {}:probe_me r=$retval", bin.display());
        let mut child = coolkprobe()
            .args([&entry, &ret, "--json", "-c", "2"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let group = coolkprobe::tracefs::run_group(child.id());
        let enable = Path::new("/sys/kernel/tracing/instances")
            .join(&group)
            .join("events")
            .join(&group)
            .join("f1/enable");
        let t0 = std::time::Instant::now();
        while !std::fs::read_to_string(&enable).is_ok_and(|s| s.starts_with('1')) {
            if t0.elapsed() > std::time::Duration::from_secs(20) {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "{name}: never ready: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(Command::new(&bin)
            .args(["one", "two", "three"])
            .output()
            .unwrap()
            .status
            .success());
        let t0 = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if t0.elapsed() > std::time::Duration::from_secs(30) {
                let _ = child.kill();
                panic!("{name}: the run did not end after 2 events");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let evs: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(evs.len(), 2, "{stdout}");
        let a = &evs[0]["args"];
        assert_eq!(evs[0]["event"], "f0", "{stdout}");
        assert_eq!(a["kind"], 4, "{stdout}");
        assert_eq!(a["comm"], "holder", "{stdout}");
        assert_eq!(a["name"], bin.display().to_string(), "{stdout}");
        assert_eq!(a["m"], 7, "{stdout}");
        assert_eq!(a["tag"], "tg", "{stdout}");
        assert_eq!(a["hi"], 4660, "{stdout}");
        assert_eq!(a["nk"], 4, "{stdout}");
        assert_eq!(evs[1]["event"], "f1", "{stdout}");
        // `int probe_me(...)`: the return type makes it a signed number.
        assert_eq!(evs[1]["args"]["r"], 13, "{stdout}");
        eprintln!("{name}: {stdout}");
    }
}

/// Which types a uprobe walks: its binary's, even when -v names a kernel;
/// a kernel's (-v) only for a binary without DWARF or one that defines
/// none of the casts; a clear error when there is nothing to read.
#[test]
fn uprobe_type_source_choice() {
    let bin = build(&["-no-pie"], "choice");
    let fx = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/btf-fixtures/vmlinux-6.1.0-56-cloud-amd64.btf"
    );
    let run = |args: &[&str]| {
        let o = coolkprobe().args(args).output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let own = format!("p {}:probe_me c=%0~(struct holder)->comm", bin.display());
    let comm = format!(
        "c=+{:#x}(%di):string",
        pahole_offset(&bin, "holder", "comm")
    );
    // The binary's own struct, with or without -v.
    for extra in [&[][..], &["-v", fx][..]] {
        let mut args = vec!["-S"];
        args.extend_from_slice(extra);
        args.push(&own);
        let (ok, out, err) = run(&args);
        assert!(ok && out.contains(&comm), "{extra:?}: {out}{err}");
    }
    // A struct the binary does not have: an error naming it, unless -v
    // has it (kernel layout: task_struct->comm is at 0xba0 in 6.1).
    let kernel = format!(
        "p {}:probe_me c=%0~(struct task_struct)->comm",
        bin.display()
    );
    let (ok, _, err) = run(&["-S", &kernel]);
    assert!(!ok && err.contains("task_struct"), "{err}");
    let (ok, out, err) = run(&["-S", "-v", fx, &kernel]);
    assert!(ok && out.contains("c=+0xba0(%di):string"), "{out}{err}");
    // No DWARF at all.
    let stripped = bin.with_file_name("choice-stripped");
    assert!(Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&bin)
        .status()
        .unwrap()
        .success());
    let spec = format!(
        "p {}:probe_me c=%0~(struct holder)->comm",
        stripped.display()
    );
    let (ok, _, err) = run(&["-S", &spec]);
    assert!(
        !ok && err.contains("cannot load C types") && err.contains("-g"),
        "{err}"
    );
}
