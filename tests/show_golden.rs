//! Golden tests of the exact `-S` output: the README's examples against
//! Debian 6.1's BTF must give the README's offsets (0xba0, 0x8e0, 0x54).

mod common;

use std::process::Command;

use common::cli::{fixture, golden, run, stdout_normalised as normalised, K61};

#[test]
fn readme_examples_on_debian_6_1() {
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
    golden("show/readme_examples_on_debian_6_1.sh", &normalised(&out));
}

/// Raw-only probes need no type source: the -v file (readable, as every
/// option's file must be, but no BTF or ELF) is never parsed.
#[test]
fn raw_probes_open_no_types() {
    let out = run(&[
        "-S",
        "-a",
        "x86_64",
        "-v",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
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
    golden(
        "show/file_tracepoint_uprobe_stack_pid.sh",
        &normalised(&out),
    );
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

/// Whole structs (README, "Whole structs"): `sk->__sk_common` and
/// `*%0~(struct sock_common)` read member by member (the definitions and
/// their field names), `*sk` cut to what the kernel takes, with a warning
/// saying what was left out.
#[test]
fn whole_structs_on_debian_6_1() {
    let fx = fixture(K61);
    let out = run(&[
        "-S",
        "-a",
        "x86_64",
        "-v",
        fx.to_str().unwrap(),
        "p tcp_sendmsg c=sk->__sk_common",
        "p tcp_v4_connect w=*%0X~(struct sock_common)",
        "p tcp_sendmsg s=*sk",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: `s` shows ") && err.contains(" values of `struct sock`; left out: "),
        "{err}"
    );
    golden("show/whole_structs_on_debian_6_1.sh", &normalised(&out));
}
