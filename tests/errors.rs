//! Every offline error of SPEC 4, as the user sees it: the message, the
//! probe with carets under the offending part, the hint, the exit code,
//! and nothing printed on stdout (nothing to install).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn k61() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("btf-fixtures/vmlinux-6.1.0-56-cloud-amd64.btf")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(args)
        .output()
        .unwrap()
}

/// Run `-S` on the 6.1 fixture with these probes; expect exit 2, empty
/// stdout, and exactly `want` on stderr.
fn check(probes: &[&str], want: &str) {
    let fx = k61();
    let mut args = vec!["-S", "-a", "x86_64", "-v", fx.to_str().unwrap()];
    args.extend_from_slice(probes);
    let out = run(&args);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err, want, "probes: {probes:?}");
    assert_eq!(out.status.code(), Some(2), "{probes:?}");
    assert!(out.stdout.is_empty(), "{probes:?} printed a script");
}

#[test]
fn unknown_struct_with_nearest_names() {
    check(
        &["p wake_up_new_task comm=%0~(struct task_strct)->comm"],
        "error: unknown struct `task_strct`
  p wake_up_new_task comm=%0~(struct task_strct)->comm
                                     ^^^^^^^^^^
help: did you mean `struct task_struct`?
",
    );
}

#[test]
fn union_named_as_struct() {
    check(
        &["p f x=%0~(struct bpf_attr)->map_type"],
        "error: unknown struct `bpf_attr`
  p f x=%0~(struct bpf_attr)->map_type
                   ^^^^^^^^
help: `bpf_attr` is a union: write `(union bpf_attr)`
",
    );
}

#[test]
fn unknown_member_with_nearest_names() {
    check(
        &["p wake_up_new_task comm=%0~(struct task_struct)->com"],
        "error: `struct task_struct` has no member `com`
  p wake_up_new_task comm=%0~(struct task_struct)->com
                                                   ^^^
help: did you mean `comm`?
",
    );
}

/// The nearest names include members inside anonymous structs/unions.
#[test]
fn unknown_member_suggests_through_anonymous_members() {
    check(
        &["p ip_rcv t=%0~(struct sk_buff)->pkt_typ"],
        "error: `struct sk_buff` has no member `pkt_typ`
  p ip_rcv t=%0~(struct sk_buff)->pkt_typ
                                  ^^^^^^^
help: did you mean `pkt_type`?
",
    );
}

#[test]
fn arrow_on_non_pointer() {
    check(
        &["p f x=%0~(struct task_struct)->se->vruntime"],
        "error: `->vruntime` needs a pointer, but `%0~(struct task_struct)->se` is `struct sched_entity`
  p f x=%0~(struct task_struct)->se->vruntime
                                   ^^^^^^^^^^
help: `%0~(struct task_struct)->se` is a struct or union in place: use `.vruntime`
",
    );
}

#[test]
fn dot_on_pointer() {
    check(
        &["p f x=%0~(struct task_struct)->mm.mm_users"],
        "error: `%0~(struct task_struct)->mm` is a pointer (`struct mm_struct *`): `.mm_users` needs a struct or union
  p f x=%0~(struct task_struct)->mm.mm_users
                                   ^^^^^^^^^
help: use `->mm_users`
",
    );
}

#[test]
fn index_on_non_array() {
    check(
        &["p f x=%0~(struct task_struct)->pid[0]"],
        "error: `%0~(struct task_struct)->pid` is `pid_t`, not an array: it cannot be indexed
  p f x=%0~(struct task_struct)->pid[0]
                                    ^^^
",
    );
}

#[test]
fn index_out_of_bounds() {
    check(
        &["p f x=%0~(struct task_struct)->comm[16]"],
        "error: index 16 is out of bounds: `%0~(struct task_struct)->comm` is `char[16]` (16 elements)
  p f x=%0~(struct task_struct)->comm[16]
                                     ^^^^
help: valid indexes are 0..=15
",
    );
}

#[test]
fn argument_beyond_registers() {
    check(
        &["p f x=%6~(struct task_struct)->comm"],
        "error: argument %6 is beyond the x86_64 argument registers (%0..%5: %di %si %dx %cx %r8 %r9)
  p f x=%6~(struct task_struct)->comm
        ^^
",
    );
    let fx = k61();
    let out = run(&["-S", "-a", "arm", "-v", fx.to_str().unwrap(), "p f x=%4"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(
            "error: argument %4 is beyond the arm argument registers (%0..%3: %r0 %r1 %r2 %r3)\n"
        ),
        "{err}"
    );
}

#[test]
fn leaf_struct_with_several_members() {
    check(
        &["p f x=%0~(struct task_struct)->thread_info"],
        "error: cannot fetch `%0~(struct task_struct)->thread_info`: it is `struct thread_info`, a struct with 4 members
  p f x=%0~(struct task_struct)->thread_info
        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
help: pick a member: `.flags`, `.syscall_work`, `.status`, `.cpu`
",
    );
}

#[test]
fn leaf_array_of_non_char() {
    check(
        &["p f x=%0~(struct task_struct)->cpus_mask.bits"],
        "error: cannot fetch `%0~(struct task_struct)->cpus_mask.bits`: it is an array of 128 `long unsigned int`
  p f x=%0~(struct task_struct)->cpus_mask.bits
        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
help: index it: `%0~(struct task_struct)->cpus_mask.bits[0]`
",
    );
}

#[test]
fn packet_layer_mismatch() {
    check(
        &["p ip_rcv m=%0~$(struct ethhdr)l3->h_proto"],
        "error: `struct ethhdr` is an l2 header, but the marker says skb->data points at l3
  p ip_rcv m=%0~$(struct ethhdr)l3->h_proto
                                ^^
help: a header below the marker's layer has already been passed; use `l2` if skb->data points at the ethhdr here
",
    );
}

#[test]
fn packet_unknown_header() {
    check(
        &["p ip_rcv m=%0~$(struct sctphdr)->source"],
        "error: `struct sctphdr` is not a packet header coolkprobe knows
  p ip_rcv m=%0~$(struct sctphdr)->source
                         ^^^^^^^
help: packet headers are ethhdr (l2), iphdr (l3), ipv6hdr (l3), icmphdr (l4), icmp6hdr (l4), tcphdr (l4), udphdr (l4)
",
    );
}

#[test]
fn malformed_specs() {
    check(
        &["q do_exit"],
        "error: unknown probe type `q`
  q do_exit
  ^
help: the type is `p` (entry), `r` (return) or `t` (tracepoint)
",
    );
    check(
        &["p do_exit comm=%0~(struct task_struct->comm"],
        "error: expected `)` to close the cast
  p do_exit comm=%0~(struct task_struct->comm
                                       ^
",
    );
    check(
        &["p do_exit comm"],
        "error: `comm` has no value
  p do_exit comm
            ^^^^
help: write `comm=EXPR`
",
    );
    check(
        &["r do_exit+8"],
        "error: a return probe cannot have an offset
  r do_exit+8
    ^^^^^^^^^
",
    );
    check(
        &["p do_exit x=%0~(struct task_struct)->"],
        "error: expected a member name after `->`
  p do_exit x=%0~(struct task_struct)->
                                       ^
",
    );
}

/// One bad probe among good ones: nothing is printed, the bad one is named.
#[test]
fn one_bad_probe_stops_everything() {
    check(
        &[
            "p wake_up_new_task comm=%0~(struct task_struct)->comm",
            "p do_exit x=%0~(struct task_struct)->nope",
        ],
        "error: `struct task_struct` has no member `nope`
  p do_exit x=%0~(struct task_struct)->nope
                                       ^^^^
",
    );
}

#[test]
fn errors_in_a_probe_file_name_the_line() {
    let dir = std::env::temp_dir().join(format!("ckp-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("probes");
    std::fs::write(
        &file,
        "# first\np do_exit\n\np do_exit x=%0~(struct task_struct)->comm[99]\n",
    )
    .unwrap();
    let fx = k61();
    let out = run(&[
        "-S",
        "-a",
        "x86_64",
        "-v",
        fx.to_str().unwrap(),
        "-f",
        file.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err,
        format!(
            "error: index 99 is out of bounds: `%0~(struct task_struct)->comm` is `char[16]` (16 elements)
  --> {}:4
  p do_exit x=%0~(struct task_struct)->comm[99]
                                           ^^^^
help: valid indexes are 0..=15
",
            file.display()
        )
    );
}

#[test]
fn uprobe_missing_binary_and_symbol() {
    let out = run(&["-S", "p /nonexistent/bin:main"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: cannot use /nonexistent/bin: No such file or directory"),
        "{err}"
    );
    assert!(err.contains("\n    ^^^^^^^^^^^^^^^^^^^^^\n"), "{err}");
    let exe = env!("CARGO_BIN_EXE_coolkprobe");
    let spec = format!("p {exe}:no_such_function_here");
    let out = run(&["-S", &spec]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(&format!(
            "error: symbol `no_such_function_here` not found in {exe}\n"
        )),
        "{err}"
    );
}

#[test]
fn no_probe_is_a_usage_error() {
    let out = run(&["-S"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .starts_with("error: no probe given"));
}

/// A type source that is not BTF/ELF: a runtime error (exit 1).
#[test]
fn bad_type_source_is_a_runtime_error() {
    let out = run(&[
        "-S",
        "-v",
        "/etc/hostname",
        "p f x=%0~(struct task_struct)->comm",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: cannot load C types from /etc/hostname: "),
        "{err}"
    );
}

/// Live mode on a kernel without kprobes (this machine's) or without
/// root: one clear message saying what still works, nothing installed.
#[test]
fn live_mode_without_kprobes_or_root() {
    let root = unsafe { libc::geteuid() } == 0;
    let kprobes = std::path::Path::new("/sys/kernel/tracing/kprobe_events").exists();
    if root && kprobes {
        eprintln!("this kernel has kprobes: the no-kprobes message cannot be checked here");
        return;
    }
    let out = run(&["-a", "x86_64", "-d", "1", "p do_exit"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    if root {
        assert!(err.contains("this kernel has no kprobe events"), "{err}");
        assert!(
            err.contains("uprobes") && err.contains("tracepoints"),
            "{err}"
        );
        assert!(!err.contains("mkdir"), "nothing installed: {err}");
    } else {
        assert!(err.contains("needs root"), "{err}");
    }
}
