//! Struct layouts as coolkprobe prints them (`types::layout`) against
//! `pahole -C` on every fixture kernel: every member, nested anonymous
//! ones included, at the same byte (and bit) offset.

use std::path::{Path, PathBuf};
use std::process::Command;

use coolkprobe::types::{layout, load, CompositeKind};

const STRUCTS: &[&str] = &[
    "task_struct",
    "mm_struct",
    "sk_buff",
    "file",
    "inode",
    "dentry",
    "sock",
    "sock_common",
    "net_device",
    "page",
    "iphdr",
    "ipv6hdr",
    "tcphdr",
    "udphdr",
    "ethhdr",
    "icmphdr",
    "refcount_struct",
    "filename",
    "path",
    "qstr",
    "super_block",
    "vm_area_struct",
];

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("btf-fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "btf"))
        .collect();
    v.sort();
    v
}

/// (member name, byte offset, bit in byte or None) for each member line.
fn members(text: &str) -> Vec<(String, u64, Option<u64>)> {
    let mut v = Vec::new();
    for line in text.lines() {
        let Some((decl, comment)) = line.split_once("/*") else {
            continue;
        };
        let decl = decl.trim();
        let decl = match decl.find(" __attribute__") {
            Some(i) => &decl[..i],
            None => decl.trim_end_matches(';'),
        };
        // `};` closes an unnamed nested type; `} name;` is a member whose
        // type is spelled out above it (anonymous struct/union/enum).
        if decl.is_empty()
            || decl == "}"
            || !line
                .split("/*")
                .next()
                .unwrap_or("")
                .trim_end()
                .ends_with(';')
        {
            continue;
        }
        let name = if let Some(i) = decl.find("(*") {
            decl[i + 2..].split(')').next().unwrap_or("").to_string()
        } else {
            let d = decl.trim_end_matches(';');
            let d = d.split(':').next().unwrap_or(d);
            let d = d.split('[').next().unwrap_or(d);
            d.split_whitespace()
                .last()
                .unwrap_or("")
                .trim_start_matches('*')
                .to_string()
        };
        let nums = comment.trim_end_matches("*/").trim();
        let (off, bit) = match nums.split_once(':') {
            Some((o, rest)) => (o.trim(), rest.split_whitespace().next()),
            None => (nums.split_whitespace().next().unwrap_or(""), None),
        };
        let Ok(off) = off.parse::<u64>() else {
            continue;
        };
        v.push((name, off, bit.and_then(|b| b.parse().ok())));
    }
    v
}

/// `pahole -C a,b,c` once per kernel, split into each struct's text.
fn pahole_layouts(f: &Path) -> Vec<(String, String)> {
    let out = Command::new("pahole")
        .args(["-F", "btf", "-C", &STRUCTS.join(",")])
        .arg(f)
        .output()
        .expect("pahole is needed (apt-get install dwarves)");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut v: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("struct ")
            .and_then(|r| r.strip_suffix(" {"))
        {
            v.push((name.to_string(), String::new()));
        }
        if let Some((_, body)) = v.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    v
}

#[test]
fn layouts_match_pahole() {
    let mut compared = 0;
    for f in fixtures() {
        let src = load::open(Some(&f)).unwrap();
        let theirs_all = pahole_layouts(&f);
        for s in STRUCTS {
            let Some(id) = src.find_composite(CompositeKind::Struct, s).unwrap() else {
                panic!("{}: no struct {s}", f.display())
            };
            let ours = layout::render(&*src, id, 8).unwrap();
            let theirs = theirs_all
                .iter()
                .find(|(n, _)| n == s)
                .map(|(_, t)| t.as_str())
                .unwrap_or_else(|| panic!("pahole printed nothing for {s} in {}", f.display()));
            let (a, b) = (members(&ours), members(theirs));
            assert!(!a.is_empty(), "{s}: no members parsed:\n{ours}");
            assert_eq!(
                a,
                b,
                "{s} in {} differs from pahole.\nours:\n{ours}\npahole:\n{theirs}",
                f.display()
            );
            compared += a.len();
        }
    }
    eprintln!("{compared} member offsets agree with pahole");
    assert!(compared > 3000);
}
