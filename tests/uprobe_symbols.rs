//! Uprobe places resolved from ELF symbols, proven by the kernel: a C
//! program built here as PIE and as non-PIE gets a uprobe at
//! `BIN:work` from the -S script; running it must hit the probe once per
//! call with the argument the program passed. Events are read from a
//! tracefs instance of this test's own, so other readers of the global
//! buffer neither see nor steal them.
//!
//! Needs root, tracefs and gcc (as CI has); fails otherwise.

use std::path::Path;
use std::process::Command;

const PROG: &str = r#"
__attribute__((noinline)) int work(long x) { return (int)(x * 2 + 1); }
int main(int argc, char **argv) {
    (void)argv;
    int s = 0;
    for (int i = 0; i < 3; i++) s += work(i + argc + 40);
    return s & 1 ? 0 : 1;
}
"#;

fn tracefs() -> &'static str {
    for t in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(t).join("uprobe_events").exists() {
            return t;
        }
    }
    panic!("no tracefs with uprobe_events: this test needs root and a mounted tracefs");
}

fn sh(script: &str) -> std::process::Output {
    Command::new("sh").arg("-c").arg(script).output().unwrap()
}

fn check(pie: bool) {
    let t = tracefs();
    let tag = if pie { "pie" } else { "nopie" };
    let dir = std::env::temp_dir().join(format!("ckp-uprobe-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("prog.c");
    let bin = dir.join("prog");
    std::fs::write(&src, PROG).unwrap();
    let flags: &[&str] = if pie {
        &["-fPIE", "-pie"]
    } else {
        &["-fno-pie", "-no-pie"]
    };
    let cc = Command::new("gcc")
        .args(["-O1", "-o"])
        .arg(&bin)
        .args(flags)
        .arg(&src)
        .output()
        .expect("gcc must be installed");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );

    let spec = format!("p {}:work x=%0U", bin.display());
    let out = Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(["-S", "-a", "x86_64", &spec])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = String::from_utf8(out.stdout).unwrap();
    let i = script.find("coolkprobe_").unwrap();
    let digits: String = script[i + 11..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let group = format!("coolkprobe_{digits}");
    let inst = format!("{t}/instances/ckp_test_{}_{tag}", std::process::id());

    let install = sh(&script);
    let setup = sh(&format!(
        "mkdir {inst} && echo 1 > {inst}/events/{group}/f0/enable"
    ));
    let run = Command::new(&bin).status().unwrap();
    let trace = std::fs::read_to_string(format!("{inst}/trace")).unwrap_or_default();
    // Teardown first, so a failed assertion leaves nothing behind.
    let teardown = sh(&format!(
        "echo 0 > {inst}/events/{group}/f0/enable; rmdir {inst}; \
         echo 0 > {t}/events/{group}/f0/enable; echo '-:{group}/f0' >> {t}/uprobe_events"
    ));
    let left = std::fs::read_to_string(format!("{t}/uprobe_events")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    assert!(
        teardown.status.success(),
        "{}",
        String::from_utf8_lossy(&teardown.stderr)
    );
    assert!(!left.contains(&group), "{left}");
    assert!(run.success(), "the program itself failed");
    let hits: Vec<&str> = trace.lines().filter(|l| l.contains(" f0: ")).collect();
    assert_eq!(hits.len(), 3, "{tag}: {trace}");
    for (h, want) in hits.iter().zip(["x=41", "x=42", "x=43"]) {
        assert!(h.trim_end().ends_with(want), "{tag}: {h}");
    }
}

#[test]
fn non_pie_symbol_offset_hits() {
    check(false);
}

#[test]
fn pie_symbol_offset_hits() {
    check(true);
}
