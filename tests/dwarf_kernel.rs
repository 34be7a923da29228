//! The DWARF type source on a real debuginfo vmlinux (Debian's newest 6.1
//! cloud kernel, resolved at run time: see tests/common/dbg_kernel.rs),
//! checked against two independent descriptions of the same build: its BTF
//! (made by pahole at build time; the `.BTF` section of that same vmlinux)
//! and `perf probe -D`, which reads the DWARF with elfutils. No expected
//! value is written down for one build: each comes from the same build.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::OnceLock;

use coolkprobe::types::dwarf::DwarfSource;
use coolkprobe::types::{
    layout, load, resolve, type_name, CompositeKind, Type, TypeId, TypeSource,
};

use common::dbg_kernel;

/// The DWARF source, its index built once per test run (then read from
/// the cache by every test).
fn dwarf() -> DwarfSource {
    static WARM: OnceLock<()> = OnceLock::new();
    WARM.get_or_init(|| {
        let d = DwarfSource::open(dbg_kernel::vmlinux()).unwrap();
        d.find_composite(CompositeKind::Struct, "task_struct")
            .unwrap()
            .unwrap();
    });
    DwarfSource::open(dbg_kernel::vmlinux()).unwrap()
}

/// The same build's BTF: the vmlinux's own `.BTF` section (an ELF with
/// one is read through it, not its DWARF).
fn btf() -> Box<dyn TypeSource> {
    let b = load::open_file(dbg_kernel::vmlinux()).unwrap();
    assert!(
        b.describe().starts_with("BTF section of "),
        "{}",
        b.describe()
    );
    b
}

const STRUCTS: &[&str] = &[
    "task_struct",
    "mm_struct",
    "sk_buff",
    "file",
    "inode",
    "dentry",
    "path",
    "qstr",
    "net_device",
    "sock",
    "sock_common",
    "iphdr",
    "ipv6hdr",
    "tcphdr",
    "udphdr",
    "ethhdr",
    "icmphdr",
    "page",
    "folio",
    "super_block",
    "vm_area_struct",
    "filename",
    "cred",
    "nsproxy",
    "signal_struct",
    "files_struct",
    "fdtable",
    "socket",
    "inet_sock",
    "tcp_sock",
    "msghdr",
    "iov_iter",
    "kiocb",
    "bio",
    "request",
    "pt_regs",
    "list_head",
    "hlist_node",
    "rb_node",
    "timer_list",
    "work_struct",
    "kobject",
    "device",
    "pid",
    "upid",
    "refcount_struct",
    "sched_entity",
    "rq",
    "cgroup",
    "css_set",
];

/// Structs as `pahole -C` would print them (the lead's layout printer,
/// itself checked against pahole): identical from DWARF and from BTF.
#[test]
fn layouts_match_btf() {
    let (d, b) = (dwarf(), btf());
    for name in STRUCTS {
        let di = d
            .find_composite(CompositeKind::Struct, name)
            .unwrap()
            .unwrap_or_else(|| panic!("struct {name} not in DWARF"));
        let bi = b
            .find_composite(CompositeKind::Struct, name)
            .unwrap()
            .unwrap_or_else(|| panic!("struct {name} not in BTF"));
        let dl = layout::render(&d, di, 8).unwrap();
        let bl = layout::render(b.as_ref(), bi, 8).unwrap();
        assert_eq!(dl, bl, "layout of struct {name}");
    }
    for name in ["anon_vma_name", "bpf_attr", "fpregs_state"] {
        let di = d.find_composite(CompositeKind::Union, name).unwrap();
        let bi = b.find_composite(CompositeKind::Union, name).unwrap();
        match (di, bi) {
            (Some(di), Some(bi)) => assert_eq!(
                layout::render(&d, di, 8).unwrap(),
                layout::render(b.as_ref(), bi, 8).unwrap(),
                "union {name}"
            ),
            (None, None) => {}
            other => panic!("union {name}: DWARF/BTF disagree on existence: {other:?}"),
        }
    }
}

/// Walk two type graphs side by side and compare every type reached.
struct Walk<'a> {
    a: &'a dyn TypeSource,
    b: &'a dyn TypeSource,
    seen: HashSet<(TypeId, TypeId)>,
    /// Pairs still to compare (a queue, not recursion: the graph is deep).
    todo: Vec<(TypeId, TypeId, String)>,
    compared: usize,
    /// `char` is DW_ATE_signed_char in DWARF; pahole's BTF does not set
    /// BTF_INT_CHAR, so the flag is counted, not compared.
    char_flag_differs: usize,
    multi_dim: usize,
}

/// Total element count, innermost element type and dimension count of a
/// (possibly nested) array type.
fn flatten(src: &dyn TypeSource, mut id: TypeId) -> (u64, TypeId, usize) {
    let (mut n, mut dims) = (1u64, 0);
    while let Type::Array { elem, len } = src.get(id).unwrap() {
        n *= len;
        dims += 1;
        id = elem;
    }
    (n, id, dims)
}

impl Walk<'_> {
    fn cmp(&mut self, ia: TypeId, ib: TypeId, path: &str) {
        if self.seen.insert((ia, ib)) && self.compared + self.todo.len() < 60_000 {
            self.todo.push((ia, ib, path.to_string()));
        }
    }

    fn run(&mut self) {
        while let Some((ia, ib, path)) = self.todo.pop() {
            self.compared += 1;
            self.one(ia, ib, &path);
        }
    }

    fn one(&mut self, ia: TypeId, ib: TypeId, path: &str) {
        let ta = self.a.get(ia).unwrap();
        let tb = self.b.get(ib).unwrap();
        match (ta, tb) {
            (Type::Void, Type::Void) => {}
            (Type::Int(x), Type::Int(y)) => {
                assert_eq!(
                    (&x.name, x.size, x.signed, x.is_bool),
                    (&y.name, y.size, y.signed, y.is_bool),
                    "{path}"
                );
                if x.is_char != y.is_char {
                    self.char_flag_differs += 1;
                }
            }
            (Type::Pointer { target: x, .. }, Type::Pointer { target: y, .. }) => {
                self.cmp(x, y, &format!("{path}*"))
            }
            (Type::Array { .. }, Type::Array { .. }) => {
                // pahole flattens `T a[5][5]` into BTF's `T a[25]`; DWARF
                // keeps the C dimensions. Compare element counts and the
                // element type under all dimensions.
                let (nx, x, dims) = flatten(self.a, ia);
                let (ny, y, _) = flatten(self.b, ib);
                assert_eq!(nx, ny, "{path}[]");
                if dims > 1 {
                    self.multi_dim += 1;
                }
                self.cmp(x, y, &format!("{path}[]"));
            }
            (Type::Composite(x), Type::Composite(y)) => {
                assert_eq!(
                    (x.kind, &x.name, x.size),
                    (y.kind, &y.name, y.size),
                    "{path}"
                );
                assert_eq!(x.members.len(), y.members.len(), "{path}: member count");
                for (mx, my) in x.members.iter().zip(&y.members) {
                    let p = format!("{path}.{}", mx.name.as_deref().unwrap_or("<anon>"));
                    assert_eq!(
                        (&mx.name, mx.bit_offset, mx.bitfield_size),
                        (&my.name, my.bit_offset, my.bitfield_size),
                        "{p}"
                    );
                    self.cmp(mx.ty, my.ty, &p);
                }
            }
            // A declaration with no body anywhere (an opaque struct).
            (Type::Fwd { name: x, kind: kx }, Type::Fwd { name: y, kind: ky }) => {
                assert_eq!((x, kx), (y, ky), "{path}")
            }
            (
                Type::Enum {
                    name: nx,
                    size: sx,
                    signed: gx,
                    values: vx,
                },
                Type::Enum {
                    name: ny,
                    size: sy,
                    signed: gy,
                    values: vy,
                },
            ) => assert_eq!((nx, sx, gx, vx), (ny, sy, gy, vy), "{path}"),
            (
                Type::Typedef {
                    name: x,
                    target: tx,
                },
                Type::Typedef {
                    name: y,
                    target: ty,
                },
            ) => {
                assert_eq!(x, y, "{path}");
                self.cmp(tx, ty, path);
            }
            (
                Type::Qualified {
                    qualifier: qx,
                    target: tx,
                },
                Type::Qualified {
                    qualifier: qy,
                    target: ty,
                },
            ) => {
                assert_eq!(qx, qy, "{path}");
                self.cmp(tx, ty, path);
            }
            (
                Type::FuncProto {
                    ret: rx,
                    params: px,
                    variadic: vx,
                },
                Type::FuncProto {
                    ret: ry,
                    params: py,
                    variadic: vy,
                },
            ) => {
                assert_eq!((px.len(), vx), (py.len(), vy), "{path}()");
                self.cmp(rx, ry, &format!("{path}()"));
                for (i, (x, y)) in px.iter().zip(&py).enumerate() {
                    self.cmp(x.ty, y.ty, &format!("{path}(arg{i})"));
                }
            }
            (Type::Float { name: x, size: sx }, Type::Float { name: y, size: sy }) => {
                assert_eq!((x, sx), (y, sy), "{path}")
            }
            (x, y) => panic!("{path}: DWARF has {x:?}, BTF has {y:?}"),
        }
    }
}

/// Every type reachable from the listed structs (members, pointees,
/// typedef chains, function pointer prototypes), compared one by one.
#[test]
fn type_graphs_match_btf() {
    let (d, b) = (dwarf(), btf());
    let mut w = Walk {
        a: &d,
        b: b.as_ref(),
        seen: HashSet::new(),
        todo: Vec::new(),
        compared: 0,
        char_flag_differs: 0,
        multi_dim: 0,
    };
    for name in ["task_struct", "sk_buff", "page", "net_device", "inode"] {
        let di = d
            .find_composite(CompositeKind::Struct, name)
            .unwrap()
            .unwrap();
        let bi = b
            .find_composite(CompositeKind::Struct, name)
            .unwrap()
            .unwrap();
        w.cmp(di, bi, name);
        w.run();
    }
    eprintln!(
        "compared {} types ({} differ only in the char flag, {} multi-dimensional arrays flattened in BTF)",
        w.compared, w.char_flag_differs, w.multi_dim
    );
    assert!(w.compared > 5_000, "walked only {} types", w.compared);
}

const FUNCS: &[&str] = &[
    "wake_up_new_task",
    "do_exit",
    "kernel_clone",
    "vfs_read",
    "vfs_write",
    "ip_rcv",
    "icmp_rcv",
    "tcp_sendmsg",
    "tcp_v4_connect",
    "do_sys_openat2",
    "__x64_sys_openat",
    "schedule",
    "kmem_cache_alloc",
    "__dev_queue_xmit",
    "security_file_open",
];

/// Function prototypes with parameter names, as BTF has them.
#[test]
fn prototypes_match_btf() {
    let (d, b) = (dwarf(), btf());
    for f in FUNCS {
        let di = d
            .find_func(f)
            .unwrap()
            .unwrap_or_else(|| panic!("{f} not in DWARF"));
        let bi = b
            .find_func(f)
            .unwrap()
            .unwrap_or_else(|| panic!("{f} not in BTF"));
        let (
            Type::Func {
                name: nd,
                proto: pd,
            },
            Type::Func {
                name: nb,
                proto: pb,
            },
        ) = (d.get(di).unwrap(), b.get(bi).unwrap())
        else {
            panic!("{f}: not a function");
        };
        assert_eq!(nd, nb);
        let (
            Type::FuncProto {
                ret: rd,
                params: xd,
                variadic: vd,
            },
            Type::FuncProto {
                ret: rb,
                params: xb,
                variadic: vb,
            },
        ) = (d.get(pd).unwrap(), b.get(pb).unwrap())
        else {
            panic!("{f}: no prototype");
        };
        assert_eq!(vd, vb, "{f}");
        assert_eq!(type_name(&d, rd), type_name(b.as_ref(), rb), "{f} return");
        let sig = |src: &dyn TypeSource,
                   ps: &[coolkprobe::types::Param]|
         -> Vec<(Option<String>, String)> {
            ps.iter()
                .map(|p| (p.name.clone(), type_name(src, p.ty)))
                .collect()
        };
        assert_eq!(sig(&d, &xd), sig(b.as_ref(), &xb), "{f} parameters");
        assert!(!xd.is_empty() || *f == "schedule", "{f} has parameters");
    }
}

/// `PARAM->a->b.c` the way ftrace would fetch it: one offset per pointer
/// dereferenced, innermost first. Anonymous members are searched as C does.
fn fetch_chain(src: &dyn TypeSource, func: &str, expr: &str) -> Vec<u64> {
    let fid = src.find_func(func).unwrap().unwrap();
    let Type::Func { proto, .. } = src.get(fid).unwrap() else {
        panic!()
    };
    let Type::FuncProto { params, .. } = src.get(proto).unwrap() else {
        panic!()
    };
    let (param, mut rest) = expr.split_at(expr.find("->").unwrap());
    let mut ty = params
        .iter()
        .find(|p| p.name.as_deref() == Some(param))
        .unwrap_or_else(|| panic!("{func} has no parameter {param}"))
        .ty;
    let mut chain: Vec<u64> = Vec::new();
    while !rest.is_empty() {
        let deref = rest.starts_with("->");
        rest = &rest[if deref { 2 } else { 1 }..];
        let end = rest.find(['-', '.']).unwrap_or(rest.len());
        let (member, tail) = rest.split_at(end);
        rest = tail;
        if deref {
            let Type::Pointer { target, .. } = resolve(src, ty).unwrap().1 else {
                panic!("{expr}: -> on a non-pointer")
            };
            ty = target;
            chain.push(0);
        }
        let (bits, mty) =
            find_member(src, ty, member).unwrap_or_else(|| panic!("{expr}: {member}"));
        *chain.last_mut().unwrap() += bits / 8;
        ty = mty;
    }
    chain
}

fn find_member(src: &dyn TypeSource, ty: TypeId, name: &str) -> Option<(u64, TypeId)> {
    let Type::Composite(c) = resolve(src, ty).ok()?.1 else {
        return None;
    };
    for m in &c.members {
        match &m.name {
            Some(n) if n == name => return Some((m.bit_offset, m.ty)),
            None => {
                if let Some((b, t)) = find_member(src, m.ty, name) {
                    return Some((m.bit_offset + b, t));
                }
            }
            _ => {}
        }
    }
    None
}

/// Offsets of each fetcharg in `perf probe -D` output, innermost first:
/// `+64(+32(%di))` → [32, 64].
fn perf_chains(out: &str) -> Vec<Vec<u64>> {
    let line = out
        .lines()
        .find(|l| l.starts_with("p:"))
        .expect("a probe line");
    line.split_whitespace()
        .skip(2)
        .map(|arg| {
            let fetch = arg.split_once('=').unwrap().1;
            let mut v: Vec<u64> = fetch
                .split('(')
                .filter_map(|p| p.strip_prefix('+'))
                .map(|n| n.parse().unwrap())
                .collect();
            v.reverse();
            v
        })
        .collect()
}

/// perf probe, reading the same DWARF with elfutils, computes the same
/// fetch offsets (bitfields excepted: perf cannot fetch DWARF 5 ones).
#[test]
fn perf_probe_agrees() {
    if Command::new("perf").arg("--version").output().is_err() {
        panic!("perf is needed (Debian package linux-perf)");
    }
    let (d, b) = (dwarf(), btf());
    let cases: &[(&str, &[&str])] = &[
        (
            "wake_up_new_task",
            &[
                "p->comm",
                "p->mm->mm_users",
                "p->pid",
                "p->real_parent->tgid",
                "p->se.vruntime",
                "p->signal->rlim",
                "p->cred->uid",
            ],
        ),
        (
            "vfs_read",
            &[
                "file->f_inode->i_ino",
                "file->f_path.dentry->d_name.name",
                "file->f_inode->i_sb->s_dev",
                "file->f_mode",
                "file->f_pos",
            ],
        ),
        (
            "ip_rcv",
            &[
                "skb->len",
                "skb->dev->name",
                "skb->data",
                "skb->head",
                "skb->dev->ifindex",
                "skb->sk->__sk_common.skc_family",
            ],
        ),
        (
            "tcp_sendmsg",
            &[
                "sk->__sk_common.skc_dport",
                "sk->sk_protocol",
                "sk->sk_sndbuf",
            ],
        ),
        (
            "tcp_v4_connect",
            &["sk->sk_type", "sk->sk_gso_max_segs", "sk->sk_socket->file"],
        ),
        ("do_sys_openat2", &["how->flags", "how->mode"]),
        (
            "security_file_open",
            &["file->f_cred->euid", "file->f_mapping->host"],
        ),
        (
            "kernel_clone",
            &["args->flags", "args->exit_signal", "args->stack_size"],
        ),
    ];
    let mut checked = 0;
    for (func, exprs) in cases {
        let mut cmd = Command::new("perf");
        cmd.args(["probe", "-k"]).arg(dbg_kernel::vmlinux());
        cmd.arg("-D").arg(format!("{func} {}", exprs.join(" ")));
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "perf probe {func}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let perf = perf_chains(&text);
        assert_eq!(perf.len(), exprs.len(), "{text}");
        for (e, p) in exprs.iter().zip(&perf) {
            assert_eq!(&fetch_chain(&d, func, e), p, "DWARF vs perf: {func} {e}");
            assert_eq!(
                &fetch_chain(b.as_ref(), func, e),
                p,
                "BTF vs perf: {func} {e}"
            );
            checked += 1;
        }
    }
    eprintln!("{checked} fetchargs agree with perf probe");
}

#[test]
fn names_and_misses() {
    let d = dwarf();
    assert_eq!(
        d.find_composite(CompositeKind::Struct, "no_such_struct_xyz")
            .unwrap(),
        None
    );
    assert_eq!(d.find_func("no_such_function_xyz").unwrap(), None);
    // Unions are not structs.
    assert_eq!(
        d.find_composite(CompositeKind::Struct, "bpf_attr").unwrap(),
        None
    );
    let names = d.composite_names(CompositeKind::Struct).unwrap();
    assert!(names.len() > 5_000, "{} struct names", names.len());
    for s in STRUCTS {
        assert!(
            names.iter().any(|n| n == s),
            "{s} missing from composite_names"
        );
    }
    // Every function BTF has a prototype for, DWARF has too.
    let dfuncs: HashSet<String> = d.func_names().unwrap().into_iter().collect();
    let bfuncs = btf().func_names().unwrap();
    let missing: Vec<&String> = bfuncs.iter().filter(|f| !dfuncs.contains(*f)).collect();
    assert!(
        missing.is_empty(),
        "{} BTF functions not in DWARF: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert!(dfuncs.len() >= bfuncs.len());
    eprintln!(
        "{} functions in DWARF, {} in BTF",
        dfuncs.len(),
        bfuncs.len()
    );
    // A struct only declared in the unit of a member's pointer resolves
    // to its body: every pointee of task_struct's members has a body or
    // is opaque in BTF too (checked by type_graphs_match_btf); here, one
    // that is declared-only in many units.
    let id = d
        .find_composite(CompositeKind::Struct, "task_struct")
        .unwrap()
        .unwrap();
    let Type::Composite(c) = d.get(id).unwrap() else {
        panic!()
    };
    let mm = c
        .members
        .iter()
        .find(|m| m.name.as_deref() == Some("mm"))
        .unwrap();
    let Type::Pointer { target, .. } = d.get(mm.ty).unwrap() else {
        panic!()
    };
    assert!(matches!(resolve(&d, target).unwrap().1, Type::Composite(ref c) if c.size > 0));
}

/// The cache: written on the first lookup, used by the next run, and a
/// damaged or foreign file is ignored.
#[test]
fn cache_is_used_and_checked() {
    let _ = dwarf(); // the vmlinux is there
    let dir = std::env::temp_dir().join(format!("ckp-dwarf-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let open = || {
        DwarfSource::open(dbg_kernel::vmlinux())
            .unwrap()
            .with_cache_dir(Some(dir.clone()))
    };
    let want = {
        let d = open();
        let id = d
            .find_composite(CompositeKind::Struct, "sk_buff")
            .unwrap()
            .unwrap();
        layout::render(&d, id, 8).unwrap()
    };
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    let id = dbg_kernel::build_id(dbg_kernel::vmlinux());
    assert!(
        file.to_string_lossy().ends_with(&format!("dwarf-{id}.idx")),
        "{} is not named after the build-id {id}",
        file.display()
    );
    let good = std::fs::read(file).unwrap();
    let check = |what: &str| {
        let d = open();
        let id = d
            .find_composite(CompositeKind::Struct, "sk_buff")
            .unwrap()
            .unwrap();
        assert_eq!(layout::render(&d, id, 8).unwrap(), want, "{what}");
        assert!(d.find_func("vfs_read").unwrap().is_some(), "{what}");
    };
    check("cached");
    // Damaged (the many other ways are tested on small programs in
    // dwarf_c.rs): rebuilt from DWARF, then saved again.
    std::fs::write(file, &good[..good.len() / 3]).unwrap();
    check("truncated");
    assert_eq!(std::fs::read(file).unwrap(), good, "rewritten");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Probe specs through the compiler, once with the DWARF source and once
/// with the same kernel's BTF: the fetchargs and display plans must be
/// identical (the README's examples, packet headers, anonymous members,
/// bitfields, atomic_t-like leaves, char arrays and pointers).
#[test]
fn compiled_fetchargs_match_btf() {
    use coolkprobe::arch::Arch;
    use coolkprobe::compile::{compile_probe, Context};
    use coolkprobe::spec::parse_probe;

    let (d, b) = (dwarf(), btf());
    let probes = [
        "p wake_up_new_task comm=%0~(struct task_struct)->comm",
        "p wake_up_new_task users=%0S~(struct task_struct)->mm->mm_users",
        "p wake_up_new_task pgd=%0~(struct task_struct)->mm->pgd",
        "p wake_up_new_task pid=%0S~(struct task_struct)->pid tgid=%0S~(struct task_struct)->real_parent->tgid",
        "p wake_up_new_task state=%0U~(struct task_struct)->__state flags=%0~(struct task_struct)->flags",
        "p wake_up_new_task vr=%0U~(struct task_struct)->se.vruntime prio=%0S~(struct task_struct)->prio",
        "p wake_up_new_task usage=%0~(struct task_struct)->usage uid=%0U~(struct task_struct)->cred->uid",
        "p wake_up_new_task exe=%0~(struct task_struct)->mm->exe_file->f_path.dentry->d_name.name",
        "p wake_up_new_task sig=%0~(struct task_struct)->signal->rlim[3].rlim_cur",
        "p wake_up_new_task bits=%0~(struct task_struct)->sched_reset_on_fork io=%0~(struct task_struct)->in_iowait",
        "p wake_up_new_task cpu=%0~(struct task_struct)->thread_info.cpu",
        "p vfs_read ino=%0U~(struct file)->f_inode->i_ino mode=%0~(struct file)->f_mode",
        "p vfs_read name=%0~(struct file)->f_path.dentry->d_name.name len=%0U~(struct file)->f_path.dentry->d_name.len",
        "p vfs_read dev=%0~(struct file)->f_inode->i_sb->s_dev sbid=%0~(struct file)->f_inode->i_sb->s_id",
        "p vfs_read pos=%0S~(struct file)->f_pos cnt=%0~(struct file)->f_count",
        "p ip_rcv len=%0U~(struct sk_buff)->len dev=%0~(struct sk_buff)->dev->name",
        "p ip_rcv pt=%0~(struct sk_buff)->pkt_type cloned=%0~(struct sk_buff)->cloned sum=%0~(struct sk_buff)->ip_summed",
        "p ip_rcv proto=%0~(struct sk_buff)->protocol mark=%0~(struct sk_buff)->mark",
        "p ip_rcv proto=%0~$(struct iphdr)l3->protocol",
        "p ip_rcv ip_src=%0~$(struct iphdr)l3->saddr ip_dst=%0~$(struct iphdr)l3->daddr",
        "p icmp_rcv seq=%0S~$(struct icmphdr)l3->sdata[0] type=%0~$(struct icmphdr)l3->type",
        "p tcp_v4_rcv B16_sport=%0~$(struct tcphdr)l4->source B16_dport=%0~$(struct tcphdr)l4->dest",
        "p tcp_v4_rcv syn=%0~$(struct tcphdr)l4->syn ack=%0~$(struct tcphdr)l4->ack doff=%0~$(struct tcphdr)l4->doff",
        "p tcp_sendmsg B16_dport=%0~(struct sock)->__sk_common.skc_dport fam=%0~(struct sock)->__sk_common.skc_family",
        "p tcp_sendmsg ip_d=%0~(struct sock)->__sk_common.skc_daddr proto=%0~(struct sock)->sk_protocol",
        "p tcp_sendmsg refs=%0~(struct sock)->__sk_common.skc_refcnt",
        "p do_sys_openat2 fl=%2~(struct open_how)->flags",
        "p __dev_queue_xmit q=%0~(struct sk_buff)->queue_mapping h=%0~(struct sk_buff)->head d=%0~(struct sk_buff)->data",
        "p kmem_cache_alloc n=%0~(struct kmem_cache)->name sz=%0U~(struct kmem_cache)->size",
        "p security_file_open fl=%0~(struct file)->f_flags euid=%0~(struct file)->f_cred->euid",
        "p page_add_new_anon_rmap fl=%0~(struct page)->flags idx=%0~(struct page)->index map=%0~(struct page)->_mapcount",
        "p page_add_new_anon_rmap ref=%0~(struct page)->_refcount mapping=%0~(struct page)->mapping",
        "r kernel_clone r=$retval",
        "p kernel_clone+21 r=%r12",
    ];
    let mut compared = 0;
    for spec in probes {
        let p = parse_probe(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        let cx = |t: &dyn TypeSource| compile_probe(0, &p, &Context::new(Arch::X86_64, Some(t)));
        let from_btf = cx(b.as_ref()).unwrap_or_else(|e| panic!("BTF: {spec}: {e}"));
        let from_dwarf = cx(&d).unwrap_or_else(|e| panic!("DWARF: {spec}: {e}"));
        assert_eq!(from_dwarf.fetchargs, from_btf.fetchargs, "{spec}");
        assert_eq!(from_dwarf.fields, from_btf.fields, "{spec}");
        compared += from_btf.fetchargs.len();
    }
    // The README's expression and packet examples, with this build's
    // offsets from its BTF (the fixture kernel's exact ones are checked in
    // show_golden.rs); IP and ICMP offsets are the wire format's.
    let one = |spec: &str| {
        let p = parse_probe(spec).unwrap();
        let c = compile_probe(0, &p, &Context::new(Arch::X86_64, Some(&d))).unwrap();
        c.fetchargs[0].fetch_text()
    };
    let off = |func: &str, expr: &str| fetch_chain(b.as_ref(), func, expr);
    let comm = off("wake_up_new_task", "p->comm");
    assert_eq!(one(probes[0]), format!("+{:#x}(%di):string", comm[0]));
    let users = off("wake_up_new_task", "p->mm->mm_users");
    assert_eq!(
        one(probes[1]),
        format!("+{:#x}(+{:#x}(%di)):s32", users[1], users[0])
    );
    let data = off("ip_rcv", "skb->data")[0];
    assert_eq!(
        one("p ip_rcv proto=%0~$(struct iphdr)l3->protocol"),
        format!("+0x9(+{data:#x}(%di)):x8")
    );
    assert_eq!(
        one("p ip_rcv seq=%0S~$(struct icmphdr)l3->sdata[0]"),
        format!("+0x1c(+{data:#x}(%di)):s16")
    );
    eprintln!("{compared} compiled fetchargs identical from DWARF and BTF");
}

/// A kernel module's debug file (relocatable ELF: DWARF with relocations,
/// and split BTF that is useless without vmlinux): `-v module.ko` reads
/// its DWARF; layouts agree with pahole, prototypes have their names.
#[test]
fn module_debug_file() {
    let ko = dbg_kernel::module();
    let src = load::open_file(&ko).unwrap();
    assert!(
        src.describe().starts_with("DWARF of "),
        "{}",
        src.describe()
    );
    let mut compared = 0;
    for name in [
        "nf_conn",
        "nf_conntrack_tuple",
        "nf_conntrack_l4proto",
        "nf_conntrack_net",
    ] {
        let id = src
            .find_composite(CompositeKind::Struct, name)
            .unwrap()
            .unwrap_or_else(|| panic!("struct {name}"));
        let ours = layout::render(src.as_ref(), id, 8).unwrap();
        let out = Command::new("pahole")
            .args(["-F", "dwarf", "-C", name])
            .arg(&ko)
            .output()
            .expect("pahole");
        let theirs = String::from_utf8(out.stdout).unwrap();
        let (a, b) = (
            common::pahole::members(&ours),
            common::pahole::members(&theirs),
        );
        assert!(!a.is_empty());
        assert_eq!(a, b, "{name}:\n{ours}\npahole:\n{theirs}");
        compared += a.len();
    }
    let f = src.find_func("nf_conntrack_in").unwrap().unwrap();
    let Type::Func { proto, .. } = src.get(f).unwrap() else {
        panic!()
    };
    let Type::FuncProto { params, .. } = src.get(proto).unwrap() else {
        panic!()
    };
    let sig: Vec<(String, String)> = params
        .iter()
        .map(|p| (p.name.clone().unwrap(), type_name(src.as_ref(), p.ty)))
        .collect();
    assert_eq!(
        sig,
        [
            ("skb".to_string(), "struct sk_buff *".to_string()),
            (
                "state".to_string(),
                "const struct nf_hook_state *".to_string()
            )
        ]
    );
    eprintln!("{compared} module member offsets agree with pahole");
}
