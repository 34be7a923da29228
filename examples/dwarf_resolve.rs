//! Resolve a few struct members through an ELF file's DWARF and print
//! their layout: what `bench/dwarf.sh` times (cold: no cache; cached).
//!
//!   cargo run --release --example dwarf_resolve -- VMLINUX [STRUCT...]

use std::path::Path;

use coolkprobe::types::dwarf::DwarfSource;
use coolkprobe::types::{layout, CompositeKind, TypeSource};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: dwarf_resolve FILE [STRUCT...]"))?;
    let src = DwarfSource::open(Path::new(&path))?;
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names = vec!["task_struct".into(), "mm_struct".into()];
    }
    for n in &names {
        let id = src
            .find_composite(CompositeKind::Struct, n)?
            .ok_or_else(|| anyhow::anyhow!("no struct {n} in {}", src.describe()))?;
        print!("{}", layout::render(&src, id, 8)?);
    }
    Ok(())
}
