//! Discovery commands through the binary, on a fixture kernel.

use std::process::Command;

fn ckp(args: &[&str]) -> (i32, String, String) {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/btf-fixtures/vmlinux-6.1.0-56-cloud-amd64.btf"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .arg("-v")
        .arg(fixture)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn args_lists_parameters_with_registers() {
    let (code, out, _) = ckp(&["--args", "vfs_read"]);
    assert_eq!(code, 0);
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "ssize_t vfs_read(struct file * file, char * buf, size_t count, loff_t * pos)",
            "%0 file struct file * %di",
            "%1 buf char * %si",
            "%2 count size_t %dx",
            "%3 pos loff_t * %cx",
            "$retval ssize_t",
        ]
    );
    // Other arches name other registers; arm passes only four in registers.
    let (_, out, _) = ckp(&["-a", "arm64", "--args", "vfs_read"]);
    assert!(out.contains("%x3"), "{out}");
}

#[test]
fn layout_and_search() {
    let (code, out, _) = ckp(&["--layout", "struct task_struct"]);
    assert_eq!(code, 0);
    assert!(out.contains("comm[16];"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(" comm[16];") && l.contains("/*  2976    16 */")),
        "{out}"
    );
    let (code, out, _) = ckp(&["--funcs", "tcp_v?_rcv"]);
    assert_eq!(code, 0);
    assert_eq!(out, "tcp_v4_rcv\ntcp_v6_rcv\n");
}

/// A name that is not there is bad input, like a bad spec: exit 2, the
/// option shown with carets under the name, the nearest names as help.
#[test]
fn misspelled_names_get_suggestions() {
    let (code, out, err) = ckp(&["--layout", "task_strut"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.starts_with("error: no struct or union `task_strut` in BTF of ")
            && err.ends_with(
                "\n  --layout task_strut\n           ^^^^^^^^^^\nhelp: did you mean `task_struct`?\n"
            ),
        "{err}"
    );
    let (code, _, err) = ckp(&["--args", "vfs_raed"]);
    assert_eq!(code, 2);
    assert!(
        err.ends_with("\n  --args vfs_raed\n         ^^^^^^^^\nhelp: did you mean `vfs_read`?\n"),
        "{err}"
    );
}

#[test]
fn completions() {
    let (code, out, _) = ckp(&["--completions", "bash"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("_coolkprobe()") && out.contains("--vmlinux"),
        "{}",
        &out[..200.min(out.len())]
    );
}

/// A syscall wrapper's own arguments, on the running kernel (its
/// `syscalls:sys_enter_openat` format names them; tracefs needs root).
#[test]
fn args_of_a_syscall_wrapper() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("needs root to read tracefs (CI runs as root)");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(["--args", "__x64_sys_openat"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(lines.contains(&"(a syscall wrapper: %0..%5 are openat's own arguments, read out of its struct pt_regs)".to_string()), "{text}");
    assert!(
        lines.contains(&"%1 filename const char * +0(+0x68(%di)):ustring".to_string()),
        "{text}"
    );
    assert!(
        lines.contains(&"%0 dfd int +0x70(%di):s32".to_string()),
        "{text}"
    );
}
