//! Compiled fetchargs against pahole, an independent reader of the same
//! BTF: for every fixture kernel and many member paths, the fetcharg the
//! compiler emits must equal the one rebuilt from `pahole
//! --hex` output (each pointer level's offset, array element offsets,
//! anonymous members, bitfield bit and container, string vs pointer, and
//! single-member structs like atomic_t/refcount_t reduced to their scalar).
//!
//! pahole (Debian's `dwarves`) is required: without it this test fails.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use coolkprobe::arch::Arch;
use coolkprobe::compile::{compile_probe, Context};
use coolkprobe::spec::parse_probe;
use coolkprobe::types::{load, TypeSource};

/// (root struct or `union NAME`, the walk after the cast).
const CASES: &[(&str, &str)] = &[
    // task_struct: arrays of char, ints, pointer chains, bitfields, nested
    // named members, indexes, refcount_t, atomic_t through a pointer.
    ("task_struct", "->comm"),
    ("task_struct", "->pid"),
    ("task_struct", "->tgid"),
    ("task_struct", "->mm->mm_users"),
    ("task_struct", "->mm->map_count"),
    ("task_struct", "->mm->pgd"),
    ("task_struct", "->real_parent->pid"),
    ("task_struct", "->real_parent->comm"),
    ("task_struct", "->parent->real_parent->tgid"),
    ("task_struct", "->group_leader->mm->mm_users"),
    ("task_struct", "->cred->uid"),
    ("task_struct", "->cred->euid"),
    ("task_struct", "->real_cred->usage"),
    ("task_struct", "->sched_reset_on_fork"),
    ("task_struct", "->in_execve"),
    ("task_struct", "->in_iowait"),
    ("task_struct", "->se.vruntime"),
    ("task_struct", "->se.load.weight"),
    ("task_struct", "->se.sum_exec_runtime"),
    ("task_struct", "->cpus_mask.bits[0]"),
    ("task_struct", "->cpus_mask.bits[1]"),
    ("task_struct", "->thread_info.flags"),
    ("task_struct", "->usage"),
    ("task_struct", "->stack"),
    ("task_struct", "->flags"),
    ("task_struct", "->prio"),
    ("task_struct", "->nsproxy->uts_ns->name.nodename"),
    ("task_struct", "->nsproxy->uts_ns->name.sysname"),
    ("task_struct", "->mm->exe_file->f_path.dentry->d_name.name"),
    ("task_struct", "->mm->exe_file->f_path.dentry->d_sb->s_id"),
    ("task_struct", "->mm->exe_file->f_inode->i_ino"),
    ("task_struct", "->signal->nr_threads"),
    ("task_struct", "->files->next_fd"),
    // sk_buff: anonymous unions/structs several levels deep, bitfields
    // inside them, arrays, refcount_t, pointers to devices and sockets.
    ("sk_buff", "->len"),
    ("sk_buff", "->data_len"),
    ("sk_buff", "->data"),
    ("sk_buff", "->head"),
    ("sk_buff", "->next"),
    ("sk_buff", "->dev_scratch"),
    ("sk_buff", "->tstamp"),
    ("sk_buff", "->cb[3]"),
    ("sk_buff", "->cb[47]"),
    ("sk_buff", "->pkt_type"),
    ("sk_buff", "->cloned"),
    ("sk_buff", "->protocol"),
    ("sk_buff", "->users"),
    ("sk_buff", "->mac_len"),
    ("sk_buff", "->dev->name"),
    ("sk_buff", "->dev->ifindex"),
    ("sk_buff", "->dev->mtu"),
    ("sk_buff", "->sk->sk_rcvbuf"),
    ("sk_buff", "->sk->__sk_common.skc_family"),
    ("sk_buff", "->sk->__sk_common.skc_daddr"),
    ("sk_buff", "->sk->__sk_common.skc_dport"),
    ("sk_buff", "->sk->__sk_common.skc_state"),
    // file / inode / dentry: char * through chains, anonymous union in qstr.
    ("file", "->f_path.dentry->d_name.name"),
    ("file", "->f_path.dentry->d_name.len"),
    ("file", "->f_path.dentry->d_name.hash"),
    ("file", "->f_path.dentry->d_parent->d_name.name"),
    ("file", "->f_inode->i_ino"),
    ("file", "->f_inode->i_sb->s_id"),
    ("file", "->f_inode->i_sb->s_type->name"),
    ("file", "->f_inode->i_mode"),
    ("file", "->f_inode->i_size"),
    ("file", "->f_flags"),
    ("file", "->f_mode"),
    ("file", "->f_pos"),
    ("task_struct", "->mm->mmap_lock.count"),
    ("dentry", "->d_inode->i_sb->s_dev"),
    ("dentry", "->d_name.hash_len"),
    ("sock", "->__sk_common.skc_num"),
    ("sock", "->sk_sndbuf"),
    ("net_device", "->name"),
    ("net_device", "->ifindex"),
    // packet headers (their members are what packet expressions add to
    // skb->data), including tcphdr's bitfields and iphdr's address group.
    ("iphdr", "->protocol"),
    ("iphdr", "->saddr"),
    ("iphdr", "->daddr"),
    ("iphdr", "->ihl"),
    ("iphdr", "->tot_len"),
    ("ipv6hdr", "->nexthdr"),
    ("ipv6hdr", "->payload_len"),
    ("tcphdr", "->dest"),
    ("tcphdr", "->seq"),
    ("tcphdr", "->doff"),
    ("tcphdr", "->syn"),
    ("udphdr", "->len"),
    ("icmphdr", "->type"),
    ("icmphdr", "->un.echo.sequence"),
    ("ethhdr", "->h_proto"),
    // unions as the cast, members inside their anonymous structs.
    ("union bpf_attr", "->map_type"),
    ("union bpf_attr", "->max_entries"),
    ("union bpf_attr", "->map_name"),
    ("union bpf_attr", "->prog_type"),
];

/// Cases with a display letter (root, letter, walk): a `char`-family
/// pointer or array with a letter is the pointer or the elements, a whole
/// integer array the kernel's array fetch type (`x8[6]`).
const LETTERED: &[(&str, &str, &str)] = &[
    ("sk_buff", "X", "->data"),
    ("sk_buff", "X", "->head"),
    ("sk_buff", "U", "->cb"),
    ("net_device", "X", "->perm_addr"),
    ("net_device", "", "->perm_addr"),
    ("net_device", "X", "->name"),
    ("task_struct", "X", "->comm"),
    ("file", "X", "->f_path.dentry->d_name.name"),
    ("ethhdr", "X", "->h_dest"),
    ("ethhdr", "", "->h_source"),
    ("ipv6hdr", "", "->saddr.in6_u.u6_addr8"),
    ("ipv6hdr", "", "->daddr.in6_u.u6_addr16"),
    ("ipv6hdr", "S", "->daddr.in6_u.u6_addr32"),
    ("ipv6hdr", "U", "->daddr.in6_u.u6_addr32"),
];

/// One member as pahole shows it; `path` is dotted from the root struct,
/// anonymous levels left out (as C names them).
#[derive(Clone, Debug)]
struct Entry {
    off: u64,
    size: u64,
    /// `Some(bit)` for a bitfield: bit inside the `size`-byte unit at `off`.
    bit: Option<u64>,
    width: Option<u32>,
    /// The declaration without the name, e.g. `struct mm_struct *`,
    /// `char [16]`; for an expanded type, its opening line.
    decl: String,
}

fn parse_num(s: &str) -> u64 {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => s.parse().unwrap(),
    }
}

/// `/* OFF SIZE */` or `/* OFF:BIT SIZE */` → (off, bit, size).
fn parse_comment(c: &str) -> Option<(u64, Option<u64>, u64)> {
    let c = c
        .trim()
        .trim_start_matches("/*")
        .trim_end_matches("*/")
        .trim();
    let (a, size) = c.rsplit_once(char::is_whitespace)?;
    let a = a.trim();
    if let Some((off, bit)) = a.split_once(':') {
        Some((parse_num(off), Some(parse_num(bit)), parse_num(size)))
    } else {
        Some((parse_num(a), None, parse_num(size)))
    }
}

/// Drop leading `/* typedef ... */` comments: (rest, had a typedef).
fn strip_typedef_comment(s: &str) -> (&str, bool) {
    let s = s.trim();
    if s.starts_with("/*") {
        if let Some(i) = s.find("*/") {
            let td = s[..i].contains("typedef");
            return (s[i + 2..].trim(), td);
        }
    }
    (s, false)
}

struct Frame {
    opening: String,
    entries: Vec<(String, Entry)>,
    direct: Vec<String>,
}

/// pahole's text for each name it was asked about in one run.
type Batch = HashMap<String, String>;

/// Names the cases reach (roots, pointees, named members, typedefs),
/// asked of pahole in one run per kernel: each run reads the whole BTF,
/// so one run instead of fifty. Names missing here are asked one by one.
const PREFETCH: &[&str] = &[
    "task_struct",
    "mm_struct",
    "cred",
    "nsproxy",
    "uts_namespace",
    "new_utsname",
    "file",
    "path",
    "dentry",
    "qstr",
    "inode",
    "super_block",
    "file_system_type",
    "signal_struct",
    "files_struct",
    "sched_entity",
    "load_weight",
    "thread_info",
    "rw_semaphore",
    "sk_buff",
    "net_device",
    "sock",
    "sock_common",
    "iphdr",
    "ipv6hdr",
    "tcphdr",
    "udphdr",
    "icmphdr",
    "ethhdr",
    "bpf_attr",
    "atomic_t",
    "atomic_long_t",
    "atomic64_t",
    "refcount_t",
    "refcount_struct",
    "kuid_t",
    "cpumask_t",
    "cpumask",
    "pid_t",
    "ktime_t",
    "loff_t",
    "fmode_t",
    "umode_t",
    "dev_t",
    "uid_t",
    "u32",
    "u64",
    "s64",
    "__u8",
    "__u16",
    "__u32",
    "__be16",
    "__be32",
    "__kernel_dev_t",
    "__kernel_loff_t",
    "__kernel_pid_t",
    "__kernel_uid32_t",
    "__s64",
    "__u64",
];

fn run_pahole(fixture: &Path, names: &str) -> String {
    let out = Command::new("pahole")
        .args(["-F", "btf", "--hex", "-C", names])
        .arg(fixture)
        .output()
        .expect("pahole must be installed (Debian package dwarves)");
    assert!(
        out.status.success(),
        "pahole failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One pahole run for all of PREFETCH, split into per-name texts: a
/// top-level block runs from a line at column 0 to the `}` closing it
/// (or is a one-line typedef).
fn prefetch(fixture: &Path) -> Batch {
    let text = run_pahole(fixture, &PREFETCH.join(","));
    let mut batch = Batch::new();
    let mut cur: Vec<&str> = Vec::new();
    for line in text.lines() {
        if cur.is_empty() {
            if line.is_empty() {
                continue;
            }
            if line.starts_with("typedef ") && line.ends_with(';') {
                let name = line.trim_end_matches(';').rsplit(' ').next().unwrap();
                batch.insert(name.to_string(), format!("{line}\n"));
                continue;
            }
        }
        cur.push(line);
        if line.starts_with('}') {
            let head = cur[0].trim_end_matches('{').trim();
            let name = if head == "typedef struct" || head == "typedef union" {
                line.trim_start_matches('}')
                    .trim()
                    .trim_end_matches(';')
                    .to_string()
            } else {
                head.rsplit(' ').next().unwrap().to_string()
            };
            batch.insert(name, cur.join("\n") + "\n");
            cur.clear();
        }
    }
    batch
}

/// The layout of a struct/union/typedef as pahole prints it (typedefs of
/// typedefs followed); None for a base type (`int`) or a typedef of one.
fn pahole(fixture: &Path, batch: &Batch, what: &str) -> Option<HashMap<String, Entry>> {
    let name = what
        .trim()
        .trim_start_matches("const ")
        .trim_start_matches("volatile ")
        .trim_start_matches("union ")
        .trim_start_matches("struct ")
        .trim();
    // C's own types have no layout: no need to ask.
    let base = name.split_whitespace().all(|w| {
        matches!(
            w,
            "unsigned" | "signed" | "char" | "short" | "int" | "long" | "_Bool"
        )
    });
    if base {
        return None;
    }
    let text = match batch.get(name) {
        Some(t) => t.clone(),
        None => {
            if std::env::var_os("CKP_DUMP_TYPES").is_some() {
                eprintln!("MISS {name}");
            }
            run_pahole(fixture, name)
        }
    };
    let first = text.lines().next()?.trim();
    if first.starts_with("typedef ") && !first.ends_with('{') {
        // `typedef struct refcount_struct refcount_t;`
        let target = first
            .trim_start_matches("typedef ")
            .trim_end_matches(';')
            .rsplit_once(' ')
            .unwrap()
            .0;
        return pahole(fixture, batch, target);
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut result = HashMap::new();
    for raw in text.lines() {
        let line = raw.trim();
        let (code, comment) = match line.find("/*") {
            // A leading typedef comment is part of the declaration.
            Some(0) => {
                let (rest, _) = strip_typedef_comment(line);
                match rest.find("/*") {
                    Some(i) => (line[..line.len() - rest.len() + i].trim(), Some(&rest[i..])),
                    None => (line, None),
                }
            }
            Some(i) => (line[..i].trim(), Some(&line[i..])),
            None => (line, None),
        };
        let (code_nc, _) = strip_typedef_comment(code);
        // `} __attribute__((__aligned__(64)));`: layout noise, not a name.
        let no_attr;
        let code_nc = match code_nc.find("__attribute__") {
            Some(i) => {
                no_attr = format!("{};", code_nc[..i].trim_end());
                no_attr.as_str()
            }
            None => code_nc,
        };
        if code_nc.is_empty() {
            continue;
        }
        if code_nc.ends_with('{') {
            stack.push(Frame {
                opening: code_nc.trim_end_matches('{').trim().to_string(),
                entries: Vec::new(),
                direct: Vec::new(),
            });
            continue;
        }
        if code_nc.starts_with('}') {
            let f = stack.pop().unwrap();
            let name = code_nc
                .trim_start_matches('}')
                .trim_end_matches(';')
                .trim()
                .to_string();
            if stack.is_empty() {
                result = f.entries.into_iter().collect();
                break;
            }
            let parent = stack.last_mut().unwrap();
            if name.is_empty() {
                // Anonymous: its members are the parent's, as in C.
                parent.direct.extend(f.direct);
                parent.entries.extend(f.entries);
            } else {
                let (off, _, size) = parse_comment(comment.unwrap()).unwrap();
                for (p, e) in f.entries {
                    parent.entries.push((format!("{name}.{p}"), e));
                }
                parent.entries.push((
                    name.clone(),
                    Entry {
                        off,
                        size,
                        bit: None,
                        width: None,
                        decl: f.opening,
                    },
                ));
                parent.direct.push(name);
            }
            continue;
        }
        // A plain member; enumerators (`A = 1,`) have no comment.
        let Some(comment) = comment else { continue };
        if !code_nc.ends_with(';') {
            continue;
        }
        let Some((off, bit, size)) = parse_comment(comment) else {
            continue;
        };
        let decl = code_nc.trim_end_matches(';').trim();
        let (decl, width) = match decl.rsplit_once(':') {
            Some((d, w)) if w.trim().chars().all(|c| c.is_ascii_digit()) => {
                (d.trim(), Some(w.trim().parse::<u32>().unwrap()))
            }
            _ => (decl, None),
        };
        let (name, ty) = if let Some(i) = decl.find("(*") {
            let n = decl[i + 2..].split(')').next().unwrap();
            (n.to_string(), "fnptr *".to_string())
        } else {
            let (ty, n) = decl
                .rsplit_once(|c: char| c.is_whitespace() || c == '*')
                .unwrap();
            let star = if decl[ty.len()..].starts_with('*') {
                "*"
            } else {
                ""
            };
            let (n, dims) = match n.find('[') {
                Some(i) => (&n[..i], &n[i..]),
                None => (n, ""),
            };
            (
                n.to_string(),
                format!("{}{star} {dims}", ty.trim()).trim().to_string(),
            )
        };
        let Some(top) = stack.last_mut() else {
            continue;
        };
        top.direct.push(name.clone());
        top.entries.push((
            name,
            Entry {
                off,
                size,
                bit: width.and(bit),
                width,
                decl: ty,
            },
        ));
    }
    assert!(!result.is_empty(), "no members parsed for {what}");
    Some(result)
}

fn mem(base: &str, off: u64) -> String {
    if off == 0 {
        format!("+0({base})")
    } else {
        format!("+{off:#x}({base})")
    }
}

/// The pointee struct of a pointer declaration: `struct mm_struct *` → mm_struct.
fn pointee(decl: &str) -> String {
    let d = decl.replace("const ", "").replace("volatile ", "");
    let d = d.trim_end_matches('*').trim();
    assert!(!d.contains('*'), "pointer to pointer: {decl}");
    d.trim_start_matches("struct ")
        .trim_start_matches("union ")
        .trim()
        .to_string()
}

fn is_char_name(decl: &str) -> bool {
    let d = decl.replace("const ", "").replace("volatile ", "");
    matches!(d.trim(), "char" | "signed char" | "unsigned char")
}

/// Rebuild the fetcharg from pahole's layout alone. Returns the fetcharg
/// and how many offsets it checked.
fn expected(
    fx: &Path,
    batch: &Batch,
    cache: &mut HashMap<String, Option<HashMap<String, Entry>>>,
    root: &str,
    letter: &str,
    walk: &str,
) -> (String, usize) {
    let mut tokens: Vec<String> = Vec::new();
    let mut rest = walk;
    while !rest.is_empty() {
        let (tok, n) = if let Some(r) = rest.strip_prefix("->") {
            let end = r.find(['-', '.', '[']).unwrap_or(r.len());
            (format!("->{}", &r[..end]), 2 + end)
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['-', '.', '[']).unwrap_or(r.len());
            (format!(".{}", &r[..end]), 1 + end)
        } else {
            let end = rest.find(']').unwrap() + 1;
            (rest[..end].to_string(), end)
        };
        tokens.push(tok);
        rest = &rest[n..];
    }
    let mut layout = |s: &str| -> Option<HashMap<String, Entry>> {
        cache
            .entry(s.to_string())
            .or_insert_with(|| pahole(fx, batch, s))
            .clone()
    };
    let ctx = format!("{root}{walk} in {}", fx.display());
    let mut cur = layout(root).unwrap();
    let mut base = "%di".to_string();
    // Offset of the current struct inside the object `base` points at
    // (`.m` into a named struct member adds it).
    let mut base_off = 0u64;
    let mut path = String::new();
    let mut elem: Option<u64> = None;
    let mut checks = 0;
    for t in &tokens {
        if let Some(m) = t.strip_prefix("->") {
            if !path.is_empty() {
                let e = cur.get(&path).unwrap_or_else(|| panic!("no {path}: {ctx}"));
                assert!(e.decl.ends_with('*'), "{path} is not a pointer: {}", e.decl);
                base = mem(&base, base_off + e.off);
                checks += 1;
                cur = layout(&pointee(&e.decl)).unwrap();
                base_off = 0;
            }
            path = m.to_string();
        } else if let Some(m) = t.strip_prefix('.') {
            let inline = format!("{path}.{m}");
            if cur.contains_key(&inline) {
                // A member of an anonymous type, printed in place.
                path = inline;
            } else {
                let e = cur
                    .get(&path)
                    .unwrap_or_else(|| panic!("no {path}: {ctx}"))
                    .clone();
                checks += 1;
                base_off += e.off;
                cur = layout(&e.decl).unwrap_or_else(|| panic!("{} is no struct: {ctx}", e.decl));
                path = m.to_string();
            }
        } else {
            let i: u64 = t[1..t.len() - 1].parse().unwrap();
            let e = cur.get(&path).unwrap_or_else(|| panic!("no {path}: {ctx}"));
            let dims = e.decl.rsplit_once('[').unwrap().1.trim_end_matches(']');
            let n: u64 = dims.parse().unwrap();
            let es = e.size / n;
            base_off += i * es;
            elem = Some(es);
        }
    }
    // The leaf.
    let mut e = cur
        .get(&path)
        .unwrap_or_else(|| panic!("pahole has no {path}: {ctx}"))
        .clone();
    checks += 1;
    if let Some(es) = elem {
        return (
            format!("{}:x{}", mem(&base, base_off + e.off), es * 8),
            checks,
        );
    }
    // Single-member structs (atomic_t, refcount_t, kuid_t) reduce to
    // their member.
    loop {
        let plain = e.bit.is_none() && !e.decl.contains('[') && !e.decl.ends_with('*');
        let inner = if plain { layout(&e.decl) } else { None };
        match inner {
            Some(l) if l.len() == 1 => {
                let (_, m) = l.into_iter().next().unwrap();
                base_off += e.off;
                e = m;
                checks += 1;
            }
            Some(l) => panic!("leaf {path} is a composite with {} members: {ctx}", l.len()),
            None => break,
        }
    }
    let at = mem(&base, base_off + e.off);
    let kind = match letter {
        "S" => 's',
        "U" => 'u',
        _ => 'x',
    };
    let fetch = if let (Some(bit), Some(w)) = (e.bit, e.width) {
        format!("{at}:b{w}@{bit}/{}", e.size * 8)
    } else if let Some(i) = e.decl.find('[') {
        if is_char_name(&e.decl[..i]) && letter.is_empty() {
            format!("{at}:string")
        } else {
            // The elements: their size is the array's over its length.
            let n: u64 = e.decl[i + 1..].trim_end_matches(']').parse().unwrap();
            format!("{at}:{kind}{}[{n}]", e.size / n * 8)
        }
    } else if let Some(p) = e.decl.strip_suffix('*') {
        if is_char_name(p) && letter.is_empty() {
            format!("+0({at}):string")
        } else {
            format!("{at}:{kind}64")
        }
    } else {
        format!("{at}:{kind}{}", e.size * 8)
    };
    (fetch, checks)
}

/// All cases on one fixture kernel: (report line, offsets checked).
fn check_fixture(fx: &Path) -> (String, usize) {
    let src: Box<dyn TypeSource> = load::open(Some(fx)).unwrap();
    let cx = Context::new(Arch::X86_64, Some(src.as_ref()));
    let mut cache = HashMap::new();
    let batch = prefetch(fx);
    let mut checks = 0;
    let all = CASES
        .iter()
        .map(|(r, w)| (*r, "", *w))
        .chain(LETTERED.iter().copied());
    for (root, letter, walk) in all {
        let cast = if root.starts_with("union ") {
            format!("({root})")
        } else {
            format!("(struct {root})")
        };
        let spec = format!("p f x=%0{letter}~{cast}{walk}");
        let p = parse_probe(&spec).unwrap();
        let got = compile_probe(0, &p, &cx)
            .unwrap_or_else(|e| panic!("{}: {spec}: {e}", fx.display()))
            .fetchargs[0]
            .fetch_text();
        let (want, n) = expected(fx, &batch, &mut cache, root, letter, walk);
        assert_eq!(got, want, "{}: {spec}", fx.display());
        checks += n;
    }
    if std::env::var_os("CKP_DUMP_TYPES").is_some() {
        let mut k: Vec<&String> = cache.keys().collect();
        k.sort();
        eprintln!("TYPES {k:?}");
    }
    let line = format!(
        "{}: {} expressions, {checks} offsets checked against pahole",
        fx.file_name().unwrap().to_string_lossy(),
        CASES.len() + LETTERED.len()
    );
    (line, checks)
}

#[test]
fn offsets_match_pahole_on_every_fixture() {
    // One thread per kernel: the time goes into pahole runs.
    let results: Vec<(String, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = common::fixtures::btf()
            .into_iter()
            .map(|fx| s.spawn(move || check_fixture(&fx)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = 0;
    for (line, n) in &results {
        println!("{line}");
        total += n;
    }
    println!("total: {total} offset checks");
    assert!(total > 200);
}

/// A fetcharg's place and type: `+0x18(%di):x64` → (0x18, "x64").
fn place_and_type(fetch: &str) -> (u64, String) {
    let (place, ty) = fetch.rsplit_once(':').unwrap();
    let off = place
        .strip_prefix('+')
        .and_then(|p| p.strip_suffix("(%di)"))
        .unwrap_or_else(|| panic!("not one level from %di: {fetch}"));
    (parse_num(off), ty.to_string())
}

/// Bytes a fetch type stores: `x64` 8, `u16[8]` 16; None for strings.
fn type_bytes(ty: &str) -> Option<u64> {
    let (base, n) = match ty.split_once('[') {
        Some((b, n)) => (b, n.trim_end_matches(']').parse::<u64>().unwrap()),
        None => (ty, 1),
    };
    let bits: u64 = base[1..].parse().ok()?;
    Some(bits / 8 * n)
}

/// pahole's layouts of one kernel, each asked once.
struct Layouts<'a> {
    fx: &'a Path,
    batch: &'a Batch,
    cache: HashMap<String, Option<HashMap<String, Entry>>>,
}

impl Layouts<'_> {
    fn get(&mut self, name: &str) -> Option<HashMap<String, Entry>> {
        let (fx, batch) = (self.fx, self.batch);
        self.cache
            .entry(name.to_string())
            .or_insert_with(|| pahole(fx, batch, name))
            .clone()
    }

    /// Whether a layout is one member leading down to one non-struct value.
    fn one_scalar(&mut self, l: &HashMap<String, Entry>) -> bool {
        if l.len() != 1 {
            return false;
        }
        let e = l.values().next().unwrap().clone();
        if e.decl.contains('[') {
            // An array is several values.
            return false;
        }
        if e.bit.is_some() || e.decl.ends_with('*') {
            return e.bit.is_none();
        }
        match self.get(&e.decl) {
            Some(inner) => self.one_scalar(&inner),
            None => true,
        }
    }

    /// Every leaf pahole's layout of `name` reaches, recursively as a
    /// whole struct is read (named struct members and arrays of structs
    /// followed, anonymous ones in place, a struct around one value that
    /// value, zero-length arrays nothing): dotted path → (absolute offset,
    /// entry).
    fn leaves(
        &mut self,
        name: &str,
        prefix: &str,
        base: u64,
        out: &mut HashMap<String, (u64, Entry)>,
        depth: usize,
    ) {
        assert!(depth < 24, "{prefix}: too deep");
        let layout = self
            .get(name)
            .unwrap_or_else(|| panic!("no layout of {name}"));
        let join = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        for (key, e) in &layout {
            // An inline named struct/union: its members are listed under it.
            if layout.keys().any(|k| k.starts_with(&format!("{key}."))) {
                continue;
            }
            let at = base + e.off;
            if let Some(i) = e.decl.find('[') {
                let n: u64 = e.decl[i + 1..]
                    .split(']')
                    .next()
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap_or(0);
                if n == 0 {
                    continue;
                }
                let elem = e.decl[..i].trim();
                let composite = elem.starts_with("struct ") || elem.starts_with("union ");
                if composite && e.decl.matches('[').count() == 1 {
                    let es = e.size / n;
                    for j in 0..n {
                        let at = at + j * es;
                        let sub = self.get(elem);
                        if sub.as_ref().is_some_and(|l| l.len() == 1) {
                            out.insert(format!("{}[{j}]", join(key)), (at, e.clone()));
                        } else {
                            self.leaves(elem, &format!("{}[{j}]", join(key)), at, out, depth + 1);
                        }
                    }
                    continue;
                }
                out.insert(join(key), (at, e.clone()));
                continue;
            }
            let plain = e.bit.is_none() && !e.decl.ends_with('*') && !e.decl.starts_with("fnptr");
            let sub = if plain { self.get(&e.decl) } else { None };
            match sub {
                // A struct around one value: that value (atomic_t, refcount_t).
                Some(l) if self.one_scalar(&l) => {
                    out.insert(join(key), (at, e.clone()));
                }
                Some(_) => self.leaves(&e.decl, &join(key), at, out, depth + 1),
                None => {
                    out.insert(join(key), (at, e.clone()));
                }
            }
        }
    }
}

/// Whole structs member by member against pahole, on one kernel: every
/// leaf's offset, size and bitfield bits; all of `sock_common` and
/// `inode`'s leaves, `sk_buff`'s up to the kernel's limit.
fn check_whole_structs(fx: &Path) -> (String, usize) {
    use coolkprobe::compile::plan::PathPart;
    let src: Box<dyn TypeSource> = load::open(Some(fx)).unwrap();
    let cx = Context::new(Arch::X86_64, Some(src.as_ref()));
    let batch = prefetch(fx);
    let mut layouts = Layouts {
        fx,
        batch: &batch,
        cache: HashMap::new(),
    };
    let mut checked = 0;
    let mut report = Vec::new();
    for (root, whole) in [("sock_common", true), ("inode", true), ("sk_buff", false)] {
        let spec = format!("p f x=*%0~(struct {root})");
        let c = compile_probe(0, &parse_probe(&spec).unwrap(), &cx)
            .unwrap_or_else(|e| panic!("{}: {spec}: {e}", fx.display()));
        let mut want = HashMap::new();
        layouts.leaves(root, "", 0, &mut want, 0);
        let mut seen = std::collections::HashSet::new();
        for (fa, fp) in c.fetchargs.iter().zip(&c.fields) {
            let path: String = fp.path[1..]
                .iter()
                .map(|p| match p {
                    PathPart::Member(m) => format!(".{m}"),
                    PathPart::Index(i) => format!("[{i}]"),
                })
                .collect::<String>()
                .trim_start_matches('.')
                .to_string();
            let (at, e) = want
                .get(&path)
                .unwrap_or_else(|| panic!("{}: {root}: pahole has no leaf {path}", fx.display()));
            let (off, ty) = place_and_type(&fa.fetch_text());
            let ctx = format!(
                "{}: {root}.{path}: {} vs pahole {e:?} at {at}",
                fx.display(),
                fa
            );
            if let (Some(w), Some(bit)) = (e.width, e.bit) {
                // `b<width>@<bit>/<container>`: the same bits.
                let (bw, rest) = ty[1..].split_once('@').unwrap();
                let (bb, _) = rest.split_once('/').unwrap();
                assert_eq!(bw.parse::<u32>().unwrap(), w, "{ctx}");
                assert_eq!(off * 8 + bb.parse::<u64>().unwrap(), at * 8 + bit, "{ctx}");
            } else {
                assert_eq!(off, *at, "{ctx}");
                if ty == "string" {
                    assert!(e.decl.contains("char"), "{ctx}");
                } else if ty != "symbol" {
                    assert_eq!(type_bytes(&ty), Some(e.size), "{ctx}");
                }
            }
            seen.insert(path);
            checked += 1;
        }
        if whole {
            let mut missing: Vec<&String> = want.keys().filter(|k| !seen.contains(*k)).collect();
            missing.sort();
            assert!(
                missing.is_empty(),
                "{}: {root}: not read: {missing:?}",
                fx.display()
            );
        } else {
            assert!(
                c.fields.last().unwrap().cut > 0,
                "{}: {root} should be cut",
                fx.display()
            );
        }
        report.push(format!("{root} {}/{}", c.fetchargs.len(), want.len()));
    }
    (
        format!(
            "{}: whole structs {} leaves checked against pahole ({})",
            fx.file_name().unwrap().to_string_lossy(),
            checked,
            report.join(", ")
        ),
        checked,
    )
}

#[test]
fn whole_structs_match_pahole_on_every_fixture() {
    let results: Vec<(String, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = common::fixtures::btf()
            .into_iter()
            .map(|fx| s.spawn(move || check_whole_structs(&fx)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (line, _) in &results {
        println!("{line}");
    }
    assert!(results.iter().map(|r| r.1).sum::<usize>() > 400);
}
