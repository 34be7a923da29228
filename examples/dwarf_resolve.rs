//! Resolve `FUNC PARAM->member->member...` through a type source and print
//! the fetch offsets, the way `perf probe -D` does: what `bench/dwarf.sh`
//! times, cold (no index cache) and cached, beside perf probe.
//!
//!   dwarf_resolve [--btf] FILE FUNC EXPR...
//!   dwarf_resolve vmlinux wake_up_new_task p->comm p->mm->mm_users
//!
//! FILE is read as DWARF (even if it has a .BTF section), or with --btf
//! through `load::open_file` (its BTF), for comparison.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use coolkprobe::types::dwarf::DwarfSource;
use coolkprobe::types::{load, resolve, Type, TypeId, TypeSource};

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let btf = args.first().is_some_and(|a| a == "--btf");
    if btf {
        args.remove(0);
    }
    if args.len() < 3 {
        bail!("usage: dwarf_resolve [--btf] FILE FUNC EXPR...");
    }
    let path = Path::new(&args[0]);
    let src: Box<dyn TypeSource> = if btf {
        load::open_file(path)?
    } else {
        Box::new(DwarfSource::open(path)?)
    };
    let func = &args[1];
    let fid = src
        .find_func(func)?
        .ok_or_else(|| anyhow!("no function {func}"))?;
    let Type::Func { proto, .. } = src.get(fid)? else {
        bail!("{func} is not a function")
    };
    let Type::FuncProto { params, .. } = src.get(proto)? else {
        bail!("{func} has no prototype")
    };
    let regs = ["%di", "%si", "%dx", "%cx", "%r8", "%r9"];
    let mut out = format!("p:probe/{func} {func}+0");
    for expr in &args[2..] {
        let arrow = expr.find("->").ok_or_else(|| anyhow!("{expr}: no ->"))?;
        let (pname, mut rest) = expr.split_at(arrow);
        let (i, p) = params
            .iter()
            .enumerate()
            .find(|(_, p)| p.name.as_deref() == Some(pname))
            .ok_or_else(|| anyhow!("{func} has no parameter {pname}"))?;
        let mut ty = p.ty;
        let mut fetch = regs.get(i).copied().unwrap_or("%ax").to_string();
        let mut off: Option<u64> = None;
        let mut leaf = String::new();
        while !rest.is_empty() {
            let deref = rest.starts_with("->");
            rest = &rest[if deref { 2 } else { 1 }..];
            let end = rest.find(['-', '.']).unwrap_or(rest.len());
            let (member, tail) = rest.split_at(end);
            rest = tail;
            if deref {
                if let Some(o) = off.take() {
                    fetch = format!("+{o}({fetch})");
                }
                let Type::Pointer { target, .. } = resolve(src.as_ref(), ty)?.1 else {
                    bail!("{expr}: -> on a non-pointer")
                };
                ty = target;
                off = Some(0);
            }
            let (bits, mty) = find_member(src.as_ref(), ty, member)?
                .ok_or_else(|| anyhow!("{expr}: no member {member}"))?;
            off = off.map(|o| o + bits / 8);
            ty = mty;
            leaf = member.to_string();
        }
        if let Some(o) = off {
            fetch = format!("+{o}({fetch})");
        }
        out.push_str(&format!(" {leaf}={fetch}"));
    }
    println!("{out}");
    Ok(())
}

fn find_member(src: &dyn TypeSource, ty: TypeId, name: &str) -> Result<Option<(u64, TypeId)>> {
    let Type::Composite(c) = resolve(src, ty)?.1 else {
        return Ok(None);
    };
    for m in &c.members {
        match &m.name {
            Some(n) if n == name => return Ok(Some((m.bit_offset, m.ty))),
            None => {
                if let Some((b, t)) = find_member(src, m.ty, name)? {
                    return Ok(Some((m.bit_offset + b, t)));
                }
            }
            _ => {}
        }
    }
    Ok(None)
}
