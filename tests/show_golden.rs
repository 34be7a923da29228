//! Golden tests of the exact `-S` output: the SPEC 2.1 examples against
//! Debian 6.1's BTF must give the SPEC's offsets (0xba0, 0x8e0, 0x54).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("btf-fixtures")
        .join(name)
}

const K61: &str = "vmlinux-6.1.0-56-cloud-amd64.btf";

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(args)
        .output()
        .unwrap()
}

/// stdout with this run's PID in the group name replaced by `<PID>`.
fn normalised(out: &Output) -> String {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let mut res = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("coolkprobe_") {
        res.push_str(&rest[..i + "coolkprobe_".len()]);
        rest = &rest[i + "coolkprobe_".len()..];
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        assert!(digits > 0, "group without a pid");
        res.push_str("<PID>");
        rest = &rest[digits..];
    }
    res.push_str(rest);
    res
}

const PREAMBLE: &str = "set -e
T=/sys/kernel/tracing
if [ ! -e \"$T/events\" ]; then
\tif ! mount -t tracefs nodev \"$T\" 2>/dev/null; then
\t\tT=/sys/kernel/debug/tracing
\t\t[ -e \"$T/events\" ] || mount -t debugfs nodev /sys/kernel/debug
\tfi
fi
";

#[test]
fn spec_2_1_examples_on_debian_6_1() {
    let fx = fixture(K61);
    let out = run(&[
        "-S",
        "-a",
        "x86_64",
        "-v",
        fx.to_str().unwrap(),
        "p wake_up_new_task comm=%0~(struct task_struct)->comm",
        "p wake_up_new_task users=%0S~(struct task_struct)->mm->mm_users",
        "p do_exit r=$retval",
        "r kernel_clone r=$retval",
        "p kernel_clone+21 r=%r12",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = format!(
        "#!/bin/sh
# coolkprobe: 5 probe(s) in group coolkprobe_<PID>; run as root on the target
#   f0: p wake_up_new_task comm=%0~(struct task_struct)->comm
#   f1: p wake_up_new_task users=%0S~(struct task_struct)->mm->mm_users
#   f2: p do_exit r=$retval
#   f3: r kernel_clone r=$retval
#   f4: p kernel_clone+21 r=%r12
# %N is read from x86_64 registers: the target is another kernel (--arg-fetch argn for $argN)
{PREAMBLE}echo 'p:coolkprobe_<PID>/f0 wake_up_new_task comm=+0xba0(%di):string' >> $T/kprobe_events
echo 'p:coolkprobe_<PID>/f1 wake_up_new_task users=+0x54(+0x8e0(%di)):s32' >> $T/kprobe_events
echo 'p:coolkprobe_<PID>/f2 do_exit r=$retval' >> $T/kprobe_events
echo 'r:coolkprobe_<PID>/f3 kernel_clone r=$retval' >> $T/kprobe_events
echo 'p:coolkprobe_<PID>/f4 kernel_clone+21 r=%r12' >> $T/kprobe_events
echo '1' > $T/events/coolkprobe_<PID>/f0/enable
echo '1' > $T/events/coolkprobe_<PID>/f1/enable
echo '1' > $T/events/coolkprobe_<PID>/f2/enable
echo '1' > $T/events/coolkprobe_<PID>/f3/enable
echo '1' > $T/events/coolkprobe_<PID>/f4/enable
# read the events:
#   cat $T/trace_pipe
# remove the probes:
#   echo '0' > $T/events/coolkprobe_<PID>/f0/enable
#   echo '0' > $T/events/coolkprobe_<PID>/f1/enable
#   echo '0' > $T/events/coolkprobe_<PID>/f2/enable
#   echo '0' > $T/events/coolkprobe_<PID>/f3/enable
#   echo '0' > $T/events/coolkprobe_<PID>/f4/enable
#   echo '-:coolkprobe_<PID>/f0' >> $T/kprobe_events
#   echo '-:coolkprobe_<PID>/f1' >> $T/kprobe_events
#   echo '-:coolkprobe_<PID>/f2' >> $T/kprobe_events
#   echo '-:coolkprobe_<PID>/f3' >> $T/kprobe_events
#   echo '-:coolkprobe_<PID>/f4' >> $T/kprobe_events
"
    );
    assert_eq!(normalised(&out), want);
}

/// Raw-only probes need no type source: a missing -v file is never opened.
#[test]
fn raw_probes_open_no_types() {
    let out = run(&[
        "-S",
        "-a",
        "x86_64",
        "-v",
        "/nonexistent/vmlinux",
        "r kernel_clone r=$retval",
        "p do_exit code=%0S",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = normalised(&out);
    assert!(
        text.contains("echo 'r:coolkprobe_<PID>/f0 kernel_clone r=$retval' >> $T/kprobe_events\n")
    );
    assert!(
        text.contains("echo 'p:coolkprobe_<PID>/f1 do_exit code=%di:s64' >> $T/kprobe_events\n")
    );
}

/// Probes from a file (comments, blank lines), a tracepoint with a filter,
/// a uprobe at an offset, -s stack triggers and -p pid filters.
#[test]
fn file_tracepoint_uprobe_stack_pid() {
    let dir = std::env::temp_dir().join(format!("ckp-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("probes");
    std::fs::write(
        &file,
        "# my probes\n\n  t sched:sched_process_exec f:pid > 1\np /bin/true:0x1130 a=%di\n   # done\n",
    )
    .unwrap();
    let out = run(&[
        "-S",
        "-s",
        "-p",
        "42",
        "-a",
        "x86_64",
        "-f",
        file.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // -p works in an instance of the script's own (nothing global but the
    // definition); each stack trigger carries its event's filter.
    let want = format!(
        "#!/bin/sh
# coolkprobe: 2 probe(s) in group coolkprobe_<PID>; run as root on the target
#   f0: t sched:sched_process_exec f:pid > 1
#   f1: p /bin/true:0x1130 a=%di
# -p 42: process 42, its threads and the tasks it starts, in instance coolkprobe_<PID>
{PREAMBLE}[ -d /proc/42/task ] || {{ echo 'no process 42' >&2; exit 1; }}
I=$T/instances/coolkprobe_<PID>
mkdir $I
echo '1' > $I/options/event-fork
echo $(ls /proc/42/task) > $I/set_event_pid
echo 'p:coolkprobe_<PID>/f1 /bin/true:0x1130 a=%di' >> $T/uprobe_events
echo 'pid > 1' > $I/events/sched/sched_process_exec/filter
echo 'stacktrace if pid > 1' >> $I/events/sched/sched_process_exec/trigger
echo '1' > $I/events/sched/sched_process_exec/enable
echo 'stacktrace' >> $I/events/coolkprobe_<PID>/f1/trigger
echo '1' > $I/events/coolkprobe_<PID>/f1/enable
# read the events:
#   cat $I/trace_pipe
# remove the probes:
#   echo '0' > $I/events/sched/sched_process_exec/enable
#   echo '!stacktrace if pid > 1' >> $I/events/sched/sched_process_exec/trigger
#   echo '0' > $I/events/coolkprobe_<PID>/f1/enable
#   echo '!stacktrace' >> $I/events/coolkprobe_<PID>/f1/trigger
#   echo '-:coolkprobe_<PID>/f1' >> $T/uprobe_events
#   rmdir $I
"
    );
    assert_eq!(normalised(&out), want);
}

/// The script is valid POSIX sh (dash parses it without running it).
#[test]
fn script_parses_as_sh() {
    let fx = fixture(K61);
    let out = run(&[
        "-S",
        "-a",
        "x86_64",
        "-v",
        fx.to_str().unwrap(),
        "p wake_up_new_task comm=%0~(struct task_struct)->comm f:comm == \"it's\"",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = std::env::temp_dir().join(format!("ckp-sh-{}.sh", std::process::id()));
    std::fs::write(&path, &out.stdout).unwrap();
    let sh = Command::new("sh").arg("-n").arg(&path).output().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(
        sh.status.success(),
        "{}",
        String::from_utf8_lossy(&sh.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(r#"echo 'comm == "it'\''s"' > $T/events/coolkprobe_"#),
        "{text}"
    );
}

/// Other architectures get their own argument registers and pointer size.
#[test]
fn other_arches() {
    let fx = fixture(K61);
    for (arch, want) in [
        ("aarch64", "users=+0x54(+0x8e0(%x0)):s32 s=%x1:x64"),
        ("riscv64", "users=+0x54(+0x8e0(%a0)):s32 s=%a1:x64"),
        ("arm", "users=+0x54(+0x8e0(%r0)):s32 s=%r1:x32"),
    ] {
        let out = run(&[
            "-S",
            "-a",
            arch,
            "-v",
            fx.to_str().unwrap(),
            "p try_to_wake_up users=%0S~(struct task_struct)->mm->mm_users s=%1",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = normalised(&out);
        assert!(
            text.contains(&format!("/f0 try_to_wake_up {want}' >> $T/kprobe_events")),
            "{arch}: {text}"
        );
    }
}
