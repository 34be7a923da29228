//! Struct layouts as coolkprobe prints them (`types::layout`) against
//! `pahole -C` on every fixture kernel: every member, nested anonymous
//! ones included, at the same byte (and bit) offset.

mod common;

use std::path::Path;
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
    for f in common::fixtures::btf() {
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
            let (a, b) = (
                common::pahole::members(&ours),
                common::pahole::members(theirs),
            );
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
