//! Every offline error, as the user sees it: the message, the
//! probe with carets under the offending part, the hint, the exit code,
//! and nothing printed on stdout (nothing to install).

mod common;

use common::cli::{golden, k61, run};
use common::skip::{is_root, skip};

/// Run `-S` on the 6.1 fixture with these probes; expect exit 2, empty
/// stdout, and exactly tests/golden/errors/GOLDEN on stderr.
fn check(probes: &[&str], golden_name: &str) {
    let fx = k61();
    let mut args = vec!["-S", "-a", "x86_64", "-v", fx.to_str().unwrap()];
    args.extend_from_slice(probes);
    let out = run(&args);
    let err = String::from_utf8(out.stderr).unwrap();
    golden(&format!("errors/{golden_name}"), &err);
    assert_eq!(out.status.code(), Some(2), "{probes:?}");
    assert!(out.stdout.is_empty(), "{probes:?} printed a script");
}

#[test]
fn unknown_struct_with_nearest_names() {
    check(
        &["p wake_up_new_task comm=%0~(struct task_strct)->comm"],
        "unknown_struct_with_nearest_names.txt",
    );
}

#[test]
fn union_named_as_struct() {
    check(
        &["p f x=%0~(struct bpf_attr)->map_type"],
        "union_named_as_struct.txt",
    );
}

#[test]
fn unknown_member_with_nearest_names() {
    check(
        &["p wake_up_new_task comm=%0~(struct task_struct)->com"],
        "unknown_member_with_nearest_names.txt",
    );
}

/// The nearest names include members inside anonymous structs/unions.
#[test]
fn unknown_member_suggests_through_anonymous_members() {
    check(
        &["p ip_rcv t=%0~(struct sk_buff)->pkt_typ"],
        "unknown_member_suggests_through_anonymous_members.txt",
    );
}

#[test]
fn arrow_on_non_pointer() {
    check(
        &["p f x=%0~(struct task_struct)->se->vruntime"],
        "arrow_on_non_pointer.txt",
    );
}

#[test]
fn dot_on_pointer() {
    check(
        &["p f x=%0~(struct task_struct)->mm.mm_users"],
        "dot_on_pointer.txt",
    );
}

#[test]
fn index_on_non_array() {
    check(
        &["p f x=%0~(struct task_struct)->pid[0]"],
        "index_on_non_array.txt",
    );
}

#[test]
fn index_out_of_bounds() {
    check(
        &["p f x=%0~(struct task_struct)->comm[16]"],
        "index_out_of_bounds.txt",
    );
}

#[test]
fn argument_beyond_registers() {
    check(
        &["p f x=%6~(struct task_struct)->comm"],
        "argument_beyond_registers.txt",
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
fn leaf_array_beyond_the_kernels_limit() {
    check(
        &["p f x=%0~(struct task_struct)->cpus_mask.bits"],
        "leaf_array_beyond_the_kernels_limit.txt",
    );
}

#[test]
fn packet_layer_mismatch() {
    check(
        &["p ip_rcv m=%0~$(struct ethhdr)l3->h_proto"],
        "packet_layer_mismatch.txt",
    );
}

#[test]
fn packet_unknown_header() {
    check(
        &["p ip_rcv m=%0~$(struct sctphdr)->source"],
        "packet_unknown_header.txt",
    );
}

#[test]
fn malformed_specs() {
    check(&["q do_exit"], "malformed_specs.txt");
    check(
        &["p do_exit comm=%0~(struct task_struct->comm"],
        "malformed_specs_2.txt",
    );
    check(&["p do_exit comm"], "malformed_specs_3.txt");
    check(&["r do_exit+8"], "malformed_specs_4.txt");
    check(
        &["p do_exit x=%0~(struct task_struct)->"],
        "malformed_specs_5.txt",
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
        "one_bad_probe_stops_everything.txt",
    );
}

/// Independent mistakes are all reported in one run: each bad probe, and
/// each bad argument of a probe; the good ones say nothing.
#[test]
fn several_independent_errors() {
    check(
        &[
            "p do_exit x=%0~(struct task_struct)->nope",
            "p wake_up_new_task comm=%0~(struct task_struct)->comm",
            "p wake_up_new_task a=%0~(struct task_strct)->comm b=%0~(struct task_struct)->pid[0]",
        ],
        "several_independent_errors.txt",
    );
    // Spec errors of several probes, likewise.
    check(
        &["q do_exit", "p do_exit", "p do_exit c"],
        "several_spec_errors.txt",
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
    // Said once: the reason is not repeated after itself.
    let reason = &err["error: cannot load C types from /etc/hostname: ".len()..];
    assert_eq!(err.matches(reason.trim_end()).count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Live mode on a kernel without kprobes (this machine's) or without
/// root: one clear message saying what still works, nothing installed.
#[test]
fn live_mode_without_kprobes_or_root() {
    let root = is_root();
    let kprobes = std::path::Path::new("/sys/kernel/tracing/kprobe_events").exists();
    if root && kprobes {
        skip("this kernel has kprobes: the no-kprobes message cannot be checked here");
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

/// `*` on what is not a pointer, and on a `void *`.
#[test]
fn deref_of_what_is_no_pointer() {
    check(
        &["p tcp_sendmsg n=*size", "p kfree p=*object"],
        "deref_of_what_is_no_pointer.txt",
    );
}

/// `*` before a raw fetcharg.
#[test]
fn deref_of_a_raw_fetcharg() {
    check(&["p f x=*%di"], "deref_of_a_raw_fetcharg.txt");
}
