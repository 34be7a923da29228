//! The BTF reader against an independent one: every type of every fixture
//! kernel (and a module's split BTF) decoded by us and by `bpftool btf dump`
//! must agree on kind, name, size, member offsets, bitfields, targets,
//! parameters and enumerators (names, values, signedness).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use coolkprobe::types::btf::{map_or_read, Btf};
use coolkprobe::types::{Qualifier, Type};

fn bpftool_dump(file: &Path, base: Option<&Path>) -> String {
    let mut cmd = Command::new("bpftool");
    cmd.args(["btf", "dump", "file"]).arg(file);
    if let Some(b) = base {
        cmd.arg("-B").arg(b);
    }
    let out = cmd
        .output()
        .expect("bpftool is needed for this test (apt-get install bpftool)");
    assert!(
        out.status.success(),
        "bpftool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Split `'quoted name' rest` into the name (empty for `(anon)`) and the rest.
fn quoted(s: &str) -> (&str, &str) {
    match s
        .strip_prefix('\'')
        .and_then(|r| r.find('\'').map(|e| (r, e)))
    {
        Some((r, e)) => (unquote(&r[..e]), &r[e + 1..]),
        None => ("", s),
    }
}

/// `'name'` → `name`, `'(anon)'` → ``.
fn unquote(s: &str) -> &str {
    let s = s.trim_matches('\'');
    if s == "(anon)" {
        ""
    } else {
        s
    }
}

fn attr<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(|v| v.trim_end_matches(','))
}

/// Our view of one type, in the terms bpftool prints, for comparison.
fn ours(btf: &Btf, id: u32) -> Vec<String> {
    let t = btf.get(id).unwrap_or_else(|e| panic!("type {id}: {e}"));
    let n = |s: &Option<String>| s.clone().unwrap_or_default();
    match t {
        Type::Void => vec!["VOID".into()],
        Type::Int(i) => {
            let enc = if i.is_bool {
                "BOOL"
            } else if i.is_char {
                "CHAR"
            } else if i.signed {
                "SIGNED"
            } else {
                "(none)"
            };
            vec![format!("INT {} size={} encoding={enc}", i.name, i.size)]
        }
        Type::Float { name, size } => vec![format!("FLOAT {name} size={size}")],
        Type::Pointer { target, .. } => vec![format!("PTR type_id={}", target.0)],
        Type::Array { elem, len } => vec![format!("ARRAY type_id={} nr_elems={len}", elem.0)],
        Type::Composite(c) => {
            let mut v = vec![format!(
                "{} {} size={} vlen={}",
                match c.kind {
                    coolkprobe::types::CompositeKind::Struct => "STRUCT",
                    coolkprobe::types::CompositeKind::Union => "UNION",
                },
                n(&c.name),
                c.size,
                c.members.len()
            )];
            for m in &c.members {
                let bf = m
                    .bitfield_size
                    .map(|b| format!(" bitfield_size={b}"))
                    .unwrap_or_default();
                v.push(format!(
                    "  {} type_id={} bits_offset={}{bf}",
                    n(&m.name),
                    m.ty.0,
                    m.bit_offset
                ));
            }
            v
        }
        Type::Enum {
            name,
            size,
            signed,
            values,
        } => {
            let mut v = vec![format!(
                "ENUM {} size={size} signed={signed} vlen={}",
                n(&name),
                values.len()
            )];
            for e in values {
                let val = if signed {
                    (e.value as i64).to_string()
                } else {
                    e.value.to_string()
                };
                v.push(format!("  {} val={val}", e.name));
            }
            v
        }
        Type::Fwd { name, kind } => vec![format!("FWD {name} fwd_kind={kind}")],
        Type::Typedef { name, target } => vec![format!("TYPEDEF {name} type_id={}", target.0)],
        Type::Qualified { qualifier, target } => vec![match qualifier {
            Qualifier::Const => format!("CONST type_id={}", target.0),
            Qualifier::Volatile => format!("VOLATILE type_id={}", target.0),
            Qualifier::Restrict => format!("RESTRICT type_id={}", target.0),
            Qualifier::Tag(tag) => format!("TYPE_TAG {tag} type_id={}", target.0),
        }],
        Type::Func { name, proto } => vec![format!("FUNC {name} type_id={}", proto.0)],
        Type::FuncProto {
            ret,
            params,
            variadic,
        } => {
            let mut v = vec![format!(
                "FUNC_PROTO ret_type_id={} vlen={}",
                ret.0,
                params.len() + variadic as usize
            )];
            for p in &params {
                v.push(format!("  {} type_id={}", n(&p.name), p.ty.0));
            }
            if variadic {
                v.push("   type_id=0".into());
            }
            v
        }
        Type::Other { what } => vec![format!("OTHER {what}")],
    }
}

/// bpftool's view of one type (header line + member lines), same terms.
fn theirs(head: &str, members: &[&str]) -> Vec<String> {
    let mut w = head.splitn(3, ' ');
    let _id = w.next();
    let kind = w.next().unwrap_or("");
    let rest = w.next().unwrap_or("");
    // Names may contain spaces ('long unsigned int'): take the quoted part.
    let (name, _) = quoted(rest);
    let a = |k: &str| attr(rest, k).unwrap_or("?").to_string();
    let member = |m: &&str| {
        let (mname, tail) = quoted(m.trim());
        (mname.to_string(), tail.to_string())
    };
    match kind {
        "INT" => vec![format!(
            "INT {name} size={} encoding={}",
            a("size"),
            a("encoding")
        )],
        "FLOAT" => vec![format!("FLOAT {name} size={}", a("size"))],
        "PTR" => vec![format!("PTR type_id={}", a("type_id"))],
        "ARRAY" => vec![format!(
            "ARRAY type_id={} nr_elems={}",
            a("type_id"),
            a("nr_elems")
        )],
        "STRUCT" | "UNION" => {
            let mut v = vec![format!(
                "{kind} {name} size={} vlen={}",
                a("size"),
                a("vlen")
            )];
            for m in members {
                let (mname, tail) = member(m);
                let bf = attr(&tail, "bitfield_size")
                    .map(|b| format!(" bitfield_size={b}"))
                    .unwrap_or_default();
                v.push(format!(
                    "  {mname} type_id={} bits_offset={}{bf}",
                    attr(&tail, "type_id").unwrap_or("?"),
                    attr(&tail, "bits_offset").unwrap_or("?")
                ));
            }
            v
        }
        "ENUM" | "ENUM64" => {
            // Enumerators: `'NAME' val=-1` (ENUM64: `val=1ULL`, `-1LL`).
            let mut v = vec![format!(
                "ENUM {name} size={} signed={} vlen={}",
                a("size"),
                a("encoding") == "SIGNED",
                a("vlen")
            )];
            for m in members {
                let (mname, tail) = member(m);
                let val = attr(&tail, "val")
                    .unwrap_or("?")
                    .trim_end_matches("ULL")
                    .trim_end_matches("LL");
                v.push(format!("  {mname} val={val}"));
            }
            v
        }
        "FWD" => vec![format!("FWD {name} fwd_kind={}", a("fwd_kind"))],
        "TYPEDEF" => vec![format!("TYPEDEF {name} type_id={}", a("type_id"))],
        "CONST" | "VOLATILE" | "RESTRICT" => vec![format!("{kind} type_id={}", a("type_id"))],
        "TYPE_TAG" => vec![format!("TYPE_TAG {name} type_id={}", a("type_id"))],
        "FUNC" => vec![format!("FUNC {name} type_id={}", a("type_id"))],
        "FUNC_PROTO" => {
            let mut v = vec![format!(
                "FUNC_PROTO ret_type_id={} vlen={}",
                a("ret_type_id"),
                a("vlen")
            )];
            for m in members {
                let (mname, tail) = member(m);
                v.push(format!(
                    "  {mname} type_id={}",
                    attr(&tail, "type_id").unwrap_or("?")
                ));
            }
            v
        }
        "VAR" => vec!["OTHER variable".into()],
        "DATASEC" => vec!["OTHER data section".into()],
        "DECL_TAG" => vec!["OTHER declaration tag".into()],
        other => vec![format!("UNKNOWN {other}")],
    }
}

/// Compare every type; returns how many were checked.
fn compare_all(btf: &Btf, dump: &str) -> usize {
    let lines: Vec<&str> = dump.lines().collect();
    let mut checked = 0;
    let mut i = 0;
    while i < lines.len() {
        let head = lines[i];
        let id: u32 = head
            .strip_prefix('[')
            .and_then(|r| r.split(']').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected bpftool line: {head}"));
        let mut j = i + 1;
        while j < lines.len() && !lines[j].starts_with('[') {
            j += 1;
        }
        let expected = theirs(head, &lines[i + 1..j]);
        let got = ours(btf, id);
        assert_eq!(got, expected, "type [{id}] differs from bpftool: {head}");
        checked += 1;
        i = j;
    }
    checked
}

#[test]
fn every_type_of_every_fixture_matches_bpftool() {
    let mut total = 0;
    for f in common::fixtures::btf() {
        let btf = Btf::from_bytes(std::fs::read(&f).unwrap()).unwrap();
        let n = compare_all(&btf, &bpftool_dump(&f, None));
        assert_eq!(
            n,
            btf.type_count(),
            "{}: bpftool lists a different number of types",
            f.display()
        );
        eprintln!("{}: {n} types agree with bpftool", f.display());
        total += n;
    }
    assert!(total > 300_000, "suspiciously few types compared: {total}");
}

#[test]
fn module_split_btf_matches_bpftool() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("btf-fixtures");
    let base_path = dir.join("vmlinux-6.1.0-56-cloud-amd64.btf");
    let module = dir.join("modules-6.1.0-56-cloud-amd64/8021q");
    let base = Arc::new(Btf::from_bytes(std::fs::read(&base_path).unwrap()).unwrap());
    let backing = Arc::new(map_or_read(&module).unwrap());
    let len = backing.bytes().len();
    let split = Btf::parse_split(backing, 0..len, base.clone()).unwrap();
    let dump = bpftool_dump(&module, Some(&base_path));
    // bpftool prints only the split part: ids continue after the base.
    assert!(dump.starts_with(&format!("[{}]", base.next_id())));
    let n = compare_all(&split, &dump);
    assert_eq!(n, split.type_count() - base.type_count());
}

#[test]
fn type_source_finds_module_types_after_vmlinux() {
    use coolkprobe::types::{load, resolve, CompositeKind, TypeSource};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("btf-fixtures");
    let src = load::open_kernel_btf(
        &dir.join("vmlinux-6.1.0-56-cloud-amd64.btf"),
        Some(&dir.join("modules-6.1.0-56-cloud-amd64")),
    )
    .unwrap();
    // vmlinux types come from the base blob.
    let ts = src
        .find_composite(CompositeKind::Struct, "task_struct")
        .unwrap()
        .unwrap();
    assert_eq!(ts.0 >> 32, 0);
    // A struct only 8021q.ko defines is found in the module, and its
    // members that point back into vmlinux resolve there.
    let id = src
        .find_composite(CompositeKind::Struct, "vlan_ioctl_args")
        .unwrap()
        .expect("vlan_ioctl_args is in 8021q's BTF");
    assert_eq!(id.0 >> 32, 1, "module types carry their blob number");
    let Type::Composite(c) = src.get(id).unwrap() else {
        panic!()
    };
    assert_eq!(c.size, 56);
    for m in &c.members {
        resolve(&src, m.ty).unwrap();
    }
    assert!(src
        .composite_names(CompositeKind::Struct)
        .unwrap()
        .iter()
        .any(|n| n == "vlan_ioctl_args"));
    assert!(src
        .find_composite(CompositeKind::Struct, "no_such_struct_xyz")
        .unwrap()
        .is_none());
}

/// A hand-made blob with one type of every kind 1..=19 (fuzz seed), so
/// rare kinds (TYPE_TAG, DECL_TAG, ENUM64, variadic protos) are covered
/// whatever the fixture kernels happen to contain.
#[test]
fn every_kind_matches_bpftool() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/btf_reader/all_kinds");
    let btf = Btf::from_bytes(std::fs::read(&seed).unwrap()).unwrap();
    assert_eq!(compare_all(&btf, &bpftool_dump(&seed, None)), 19);
    // The pointer [2] targets a struct through no tag; the TYPE_TAG [18]
    // named `user` marks user memory when a pointer goes through it.
    assert_eq!(
        btf.get(18).unwrap(),
        Type::Qualified {
            qualifier: Qualifier::Tag("user".into()),
            target: coolkprobe::types::TypeId(3)
        }
    );
}
