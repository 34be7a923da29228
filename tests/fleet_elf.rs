//! Fleet targets that are ELF vmlinux files (README, "Fleets"): Debian's
//! newest 6.1 cloud kernel, as its `-dbg` package ships it (symbols,
//! DWARF, `.BTF`) and as it boots (the ELF inside its bzImage, stripped).
//! Each is named by what it holds — the release of its `linux_banner`, its
//! build-id note, its ELF machine — and, with a symbol table, tells a
//! function that is missing from one that exists only as compiler copies.
//! Nothing is pinned to a build: expectations come from the files.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use common::dbg_kernel;
use coolkprobe::arch::Arch;
use coolkprobe::types::target::identify;

/// `vmlinux-RELEASE`: the release the package names it by.
fn release_of(path: &Path) -> String {
    let name = path.file_name().unwrap().to_str().unwrap();
    name.strip_prefix("vmlinux-").unwrap().to_string()
}

/// The debuginfo vmlinux and the booted one are one build: the same
/// release (one from the `linux_banner` symbol, the other from the banner
/// string in the stripped `.rodata`), the same build-id, x86_64.
#[test]
fn elf_vmlinux_named_by_what_it_holds() {
    let dbg = dbg_kernel::vmlinux();
    let k = identify(dbg).unwrap();
    assert_eq!(k.release.as_deref(), Some(release_of(dbg).as_str()));
    assert_eq!(k.release_from, "its linux_banner");
    assert_eq!(k.arch, Some(Arch::X86_64));
    assert_eq!(k.arch_from, "its ELF header");
    assert_eq!(k.build_id_hex(), Some(dbg_kernel::build_id(dbg)));
    let boot = dbg_kernel::boot_vmlinux();
    let b = identify(&boot).unwrap();
    assert_eq!(b.release, k.release, "{}", boot.display());
    assert_eq!(b.release_from, "its linux_banner");
    assert_eq!(b.build_id, k.build_id);
    assert_eq!(b.arch, Some(Arch::X86_64));
}

/// Function names of the symbol table: (plain names, compiler copies as
/// `(base, copy)`).
fn functions(path: &Path) -> (HashSet<String>, Vec<(String, String)>) {
    use object::{Object, ObjectSymbol, SymbolKind};
    let file = std::fs::File::open(path).unwrap();
    // SAFETY: a cached download nobody writes while the tests run.
    let data = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let mut plain = HashSet::new();
    let mut copies = Vec::new();
    for s in elf.symbols() {
        if s.kind() != SymbolKind::Text {
            continue;
        }
        let Ok(n) = s.name() else { continue };
        match n.split_once('.') {
            None => {
                plain.insert(n.to_string());
            }
            Some((base, rest)) if rest.starts_with("isra.") || rest.starts_with("constprop.") => {
                copies.push((base.to_string(), n.to_string()));
            }
            _ => {}
        }
    }
    copies.sort();
    (plain, copies)
}

/// With a symbol table the check tells apart a function that is there
/// (`vfs_read`), one there only as compiler copies (picked from the
/// table: the copies are named), and one not there at all.
#[test]
fn symbol_table_tells_copies_from_missing() {
    let dbg = dbg_kernel::vmlinux();
    let (plain, copies) = functions(dbg);
    assert!(plain.contains("vfs_read"));
    let (base, copy) = copies
        .iter()
        .find(|(b, _)| !plain.contains(b) && !b.starts_with("__"))
        .expect("a function that exists only as compiler copies");
    let out = Command::new(env!("CARGO_BIN_EXE_coolkprobe"))
        .args(["--check", "--json", "-v"])
        .arg(dbg)
        .args([
            "p vfs_read n=count",
            &format!("p {base}"),
            "p no_such_function_at_all",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    let status: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["ok", "copies", "no-func"], "{v:#}");
    let msg = |i: usize, what: &str| {
        results[i]["diagnostics"][0][what]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        msg(1, "message"),
        format!("no function `{base}` in this kernel's symbol table")
    );
    assert!(
        msg(1, "help").contains(&format!("`{copy}`")),
        "{}",
        msg(1, "help")
    );
    assert_eq!(
        msg(2, "message"),
        "no function `no_such_function_at_all` in this kernel's symbol table"
    );
    assert_eq!(v["kernels"][0]["release"], release_of(dbg));
    assert_eq!(v["kernels"][0]["build_id"], dbg_kernel::build_id(dbg));
}
