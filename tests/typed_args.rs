//! Arguments typed by the kernel's prototypes, offline on every
//! fixture kernel, x86_64 and arm64: the short forms give the same
//! fetchargs as the old cast forms, syscall wrappers read `struct pt_regs`
//! at the offsets pahole reports, `$retval` follows the return type, and
//! the checks reject what the prototype rules out.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn arch_of(btf: &Path) -> &'static str {
    if btf.to_string_lossy().contains("arm64") {
        "aarch64"
    } else {
        "x86_64"
    }
}

/// `-S` on the fixture `btf`, for its arch.
fn run(btf: &Path, extra: &[&str], specs: &[&str]) -> Output {
    let mut args = vec!["-S", "-v", btf.to_str().unwrap(), "-a", arch_of(btf)];
    args.extend_from_slice(extra);
    args.extend_from_slice(specs);
    common::cli::run(&args)
}

/// The fetchargs of each definition line, after `SYMBOL `.
fn defs(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("echo '") && l.ends_with("kprobe_events"))
        .map(|l| {
            let body = l.trim_start_matches("echo '");
            let body = &body[..body.find("' >>").unwrap()];
            // `p:GROUP/fN SYMBOL ARGS`
            body.splitn(3, ' ').nth(2).unwrap_or("").to_string()
        })
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `+0x40(+0x20(%di)):u64` → `+0x40(+0x20(%di))`.
fn place(fetch: &str) -> &str {
    fetch.rsplit_once(':').map_or(fetch, |(p, _)| p)
}

fn one(btf: &Path, spec: &str) -> String {
    let d = defs(&run(btf, &[], &[spec]));
    assert_eq!(d.len(), 1, "{spec}");
    d[0].clone()
}

#[test]
fn short_forms_equal_the_cast_forms() {
    for btf in common::fixtures::btf() {
        let pairs = [
            (
                "p vfs_read v=file->f_inode->i_ino",
                "p vfs_read v=%0~(struct file)->f_inode->i_ino",
                "u64",
            ),
            (
                "p vfs_read v=%0->f_inode->i_ino",
                "p vfs_read v=%0~(struct file)->f_inode->i_ino",
                "u64",
            ),
            (
                "p wake_up_new_task v=p->comm",
                "p wake_up_new_task v=%0~(struct task_struct)->comm",
                "string",
            ),
            (
                "p wake_up_new_task v=p->mm->mm_users",
                "p wake_up_new_task v=%0S~(struct task_struct)->mm->mm_users",
                "s32",
            ),
            (
                "p wake_up_new_task v=p->pid",
                "p wake_up_new_task v=%0S~(struct task_struct)->pid",
                "s32",
            ),
            (
                "p try_to_wake_up v=p->real_parent->comm",
                "p try_to_wake_up v=%0~(struct task_struct)->real_parent->comm",
                "string",
            ),
        ];
        for (short, old, ty) in pairs {
            let s = one(&btf, short);
            let o = one(&btf, old);
            assert_eq!(place(&s), place(&o), "{}: {short} vs {old}", btf.display());
            assert!(
                s.ends_with(&format!(":{ty}")),
                "{}: {short} → {s}",
                btf.display()
            );
        }
        // A parameter alone: its register, typed by its C type.
        let regs = if arch_of(&btf) == "aarch64" {
            ["%x0", "%x1", "%x2", "%x3"]
        } else {
            ["%di", "%si", "%dx", "%cx"]
        };
        let d = one(&btf, "p vfs_read f=file b=buf n=count pos=pos");
        assert_eq!(
            d,
            format!(
                "f={}:x64 b=+0({}):string n={}:u64 pos={}:x64",
                regs[0], regs[1], regs[2], regs[3]
            ),
            "{}",
            btf.display()
        );
        // `try_to_wake_up(struct task_struct *p, unsigned int state, int wake_flags)`
        let d = one(&btf, "p try_to_wake_up s=state w=wake_flags");
        assert_eq!(
            d,
            format!("s={}:u32 w={}:s32", regs[1], regs[2]),
            "{}",
            btf.display()
        );
    }
}

/// The syscall wrapper's `struct pt_regs *` holds the syscall's arguments
/// at pahole's offsets; pointers from there are user memory.
#[test]
fn syscall_wrappers_read_pt_regs() {
    for btf in common::fixtures::btf() {
        let (wrapper, members, reg0): (&str, Vec<(&str, u64)>, &str) = if arch_of(&btf) == "aarch64"
        {
            (
                "__arm64_sys_",
                (0..6).map(|i| ("regs", i * 8)).collect(),
                "%x0",
            )
        } else {
            (
                "__x64_sys_",
                ["di", "si", "dx", "r10", "r8", "r9"]
                    .into_iter()
                    .map(|m| (m, 0))
                    .collect(),
                "%di",
            )
        };
        let pahole = Command::new("pahole")
            .arg("-C")
            .arg("pt_regs")
            .arg(&btf)
            .output()
            .expect("pahole (Debian's dwarves) must be installed");
        let layout = common::pahole::members(&String::from_utf8_lossy(&pahole.stdout));
        let off = |m: &str| {
            layout
                .iter()
                .find(|(n, _, _)| n == m)
                .unwrap_or_else(|| panic!("{}: pt_regs.{m} in pahole", btf.display()))
                .1
        };
        for (n, (m, extra)) in members.iter().enumerate() {
            let spec = format!("p {wrapper}openat a=%{n}");
            let d = one(&btf, &spec);
            let want = off(m) + extra;
            let at = if want == 0 {
                format!("+0({reg0})")
            } else {
                format!("+{want:#x}({reg0})")
            };
            assert_eq!(d, format!("a={at}:x64"), "{}: {spec}", btf.display());
        }
        // openat2(int dfd, const char *filename, struct open_how *how, size_t usize):
        // `how` points into the caller's memory.
        let how = off(members[2].0) + members[2].1;
        let d = one(
            &btf,
            &format!(
                "p {wrapper}openat2 f=%2~(struct open_how)->flags m=%2~(struct open_how)->mode"
            ),
        );
        assert_eq!(
            d,
            format!("f=+u0(+{how:#x}({reg0})):x64 m=+u0x8(+{how:#x}({reg0})):x64"),
            "{}",
            btf.display()
        );
        let out = run(&btf, &[], &[&format!("p {wrapper}openat a=%1")]);
        assert!(
            stderr(&out).contains("is the syscall wrapper")
                && stderr(&out).contains("t syscalls:sys_enter_openat"),
            "{}",
            stderr(&out)
        );
        // Beyond six arguments; names need the running kernel's tracepoint.
        let out = run(&btf, &[], &[&format!("p {wrapper}openat a=%6")]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("at most 6 arguments"),
            "{}",
            stderr(&out)
        );
        let out = run(&btf, &[], &[&format!("p {wrapper}openat a=filename")]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("argument names of syscall `openat` are not known here"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn retval_follows_the_return_type() {
    for btf in common::fixtures::btf() {
        // Bare: the raw fetcharg, typed for display only.
        assert_eq!(one(&btf, "r kernel_clone r=$retval"), "r=$retval");
        assert_eq!(one(&btf, "r vfs_read r=$retval"), "r=$retval");
        // Compared in a filter: the kernel needs the C width and sign.
        assert_eq!(one(&btf, "r kernel_clone r=$retval f:r<0"), "r=$retval:s32");
        assert_eq!(one(&btf, "r vfs_read r=$retval f:r<0"), "r=$retval:s64");
        // `char *d_path(...)`: the string.
        assert_eq!(one(&btf, "r d_path r=$retval"), "r=+0($retval):string");
        // `struct pid *alloc_pid(...)`: a walk, same as the cast form.
        let s = one(&btf, "r alloc_pid l=$retval->level");
        let o = one(&btf, "r alloc_pid l=$retval~(struct pid)->level");
        assert_eq!(place(&s), place(&o), "{}", btf.display());
        assert!(s.ends_with(":u32"), "{s}");
        // Entry probes keep `$retval` as the old tool passed it.
        assert_eq!(one(&btf, "p do_exit r=$retval"), "r=$retval");
        let out = run(&btf, &[], &["p alloc_pid l=$retval->level"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("only in return probes"),
            "{}",
            stderr(&out)
        );
        let out = run(&btf, &[], &["r wake_up_new_task r=$retval"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("returns nothing"), "{}", stderr(&out));
    }
}

#[test]
fn prototype_checks() {
    for btf in common::fixtures::btf() {
        let out = run(&btf, &[], &["p vfs_read n=cnt"]);
        assert_eq!(out.status.code(), Some(2));
        let e = stderr(&out);
        assert!(e.contains("`vfs_read` has no parameter `cnt`"), "{e}");
        assert!(e.contains("did you mean `count`?"), "{e}");
        assert!(
            e.contains("  p vfs_read n=cnt\n               ^^^\n"),
            "{e}"
        );

        let out = run(&btf, &[], &["p vfs_read x=%4"]);
        assert_eq!(out.status.code(), Some(2));
        let e = stderr(&out);
        assert!(
            e.contains(
                "`vfs_read` takes 4 arguments (%0 file, %1 buf, %2 count, %3 pos): there is no %4"
            ),
            "{e}"
        );

        // `skb_cow_data(struct sk_buff *skb, int tailbits, struct sk_buff **trailer)`
        let out = run(&btf, &[], &["p skb_cow_data l=%2~(struct sk_buff)->len"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let e = stderr(&out);
        assert!(
            e.contains("warning: the cast reads %2 as `struct sk_buff *`, but `skb_cow_data` declares it `struct sk_buff **trailer`"),
            "{e}"
        );
        // A cast that agrees, or of an untyped word, is silent.
        for ok in [
            "p skb_cow_data l=%0~(struct sk_buff)->len",
            "p wake_up_new_task c=%0~(struct task_struct)->comm",
            "p ip_rcv p=%0~$(struct iphdr)->protocol",
        ] {
            let out = run(&btf, &[], &[ok]);
            assert!(out.status.success(), "{ok}: {}", stderr(&out));
            assert_eq!(stderr(&out), "", "{ok}");
        }
        // Compiler copies do not borrow the source's prototype.
        let out = run(&btf, &[], &["p vfs_read.isra.0 n=count"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("compiler copy"), "{}", stderr(&out));
    }
}

/// `--arg-fetch argn` reads `%N` through the kernel's `$argN` at a
/// function's entry and at its return (the arguments kept from the
/// entry), not inside it; the script says which was chosen.
#[test]
fn kernel_argn_at_entry_and_return() {
    let btf = common::fixtures::btf()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("6.1.0"))
        .unwrap();
    let out = run(
        &btf,
        &["--arg-fetch", "argn"],
        &[
            "p wake_up_new_task comm=%0~(struct task_struct)->comm",
            "p vfs_read n=count r=%1",
            "p kernel_clone+21 r=%r12 a=%0",
            "r vfs_read r=$retval a=%0",
        ],
    );
    let d = defs(&out);
    assert_eq!(
        d,
        [
            "comm=+0xba0($arg1):string",
            "n=$arg3:u64 r=$arg2:x64",
            "r=%r12 a=%di:x64",
            "r=$retval a=$arg1:x64",
        ]
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("# %N is read from the kernel's $argN (--arg-fetch argn)"),
        "{text}"
    );
    let out = run(&btf, &[], &["p vfs_read n=count"]);
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("# %N is read from x86_64 registers: the target is another kernel"));
}
