//! Arguments in a return probe: `%N` and parameter names mean the
//! entry's arguments, read through `$argN` where the target kernel keeps
//! them for return probes (Linux 6.10), refused where it does not or
//! cannot be asked; never read from the argument registers at the return.
//! Raw fetchargs stay as written. (Live, on every kernel of the matrix:
//! VM scenario 30.)

mod common;

use common::cli::{fixture, golden, run};
use common::skip::{is_root, skip};

const K612: &str = "vmlinux-6.12.117+deb12-cloud-amd64.btf";

fn show(extra: &[&str], probes: &[&str]) -> std::process::Output {
    let fx = fixture(K612);
    let mut args = vec!["-S", "-a", "x86_64", "-v", fx.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(probes);
    run(&args)
}

/// `-S` for another kernel cannot know whether it keeps the arguments:
/// refused, with what to do, and nothing printed.
#[test]
fn refused_when_the_target_cannot_be_asked() {
    let out = show(
        &[],
        &[
            "r kernel_clone rf=args->flags r=$retval",
            "r do_filp_open n=%1->name",
        ],
    );
    let err = String::from_utf8(out.stderr).unwrap();
    golden("errors/return_args_unknown_target.txt", &err);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// Told that the target keeps them (`--arg-fetch argn`), `%N`, parameter
/// names and a syscall wrapper's `struct pt_regs` are read through
/// `$argN`; a raw register and `$retval` stay as written.
#[test]
fn argn_where_the_target_keeps_them() {
    let out = show(
        &["--arg-fetch", "argn"],
        &[
            "r kernel_clone rf=args->flags r=$retval raw=%di",
            "r do_filp_open n=pathname->name d=dfd",
            "r __x64_sys_openat fl=%2",
        ],
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        " kernel_clone rf=+0($arg1):u64 r=$retval raw=%di'",
        " do_filp_open n=+0(+0($arg2)):string d=$arg1:s32'",
        " __x64_sys_openat fl=+0x60($arg1):x64'",
        "# %N in return probes is read from the kernel's $argN, kept from the entry (--arg-fetch argn)",
    ] {
        assert!(stdout.contains(want), "{want}\n{stdout}");
    }
    // What an argument points to is read at the return: said once.
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("note: in a return probe, `args` is the entry's value (the kernel's $arg1); what it points to is read at the return"),
        "{err}"
    );
}

/// `--arg-fetch regs` reads registers, which hold no arguments at a return.
#[test]
fn refused_with_registers() {
    let out = show(&["--arg-fetch", "regs"], &["r kernel_clone x=%0"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a return probe cannot read `%0`, an argument of `kernel_clone`: --arg-fetch regs reads registers"),
        "{err}"
    );
}

/// A uprobe's return: the kernel has no `$argN` for uprobes.
#[test]
fn refused_at_a_uprobe_return() {
    let exe = env!("CARGO_BIN_EXE_coolkprobe");
    let out = run(&["-S", &format!("r {exe}:main argc=%0 rv=$retval")]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a return probe cannot read `%0`, an argument of `main`: the kernel keeps a function's arguments for return probes of kernel functions only"),
        "{err}"
    );
    // Written by hand, a register is the user's business.
    let out = run(&["-S", &format!("r {exe}:main di=%di")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(" di=%di'"));
}

/// On this machine's kernel, `auto` asks its tracefs README.
#[test]
fn the_running_kernel_is_asked() {
    if !is_root() {
        return skip("not root: tracefs' README needs root");
    }
    let Ok(readme) = std::fs::read_to_string("/sys/kernel/tracing/README") else {
        return skip("no tracefs README");
    };
    let kept = readme
        .lines()
        .any(|l| l.contains("kernel return probes support:") && l.contains("$arg<N>"));
    let out = run(&["-S", "r kernel_clone x=%0"]);
    let (stdout, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    if kept {
        assert!(stdout.contains(" kernel_clone x=$arg1"), "{stdout}{err}");
    } else {
        assert_eq!(out.status.code(), Some(2), "{stdout}{err}");
        assert!(
            err.contains("the running kernel does not keep them"),
            "{err}"
        );
    }
}
