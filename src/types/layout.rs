//! A struct's layout with offsets, the way `pahole -C` shows it: what a
//! user looks at before writing `->member` chains.

use std::fmt::Write as _;

use super::{resolve, size_of, type_name, Composite, Result, Type, TypeId, TypeSource};

/// Render `id` (a struct or union) with every member's offset and size;
/// anonymous structs/unions are expanded in place, as C nests them.
pub fn render(src: &dyn TypeSource, id: TypeId, pointer_size: u32) -> Result<String> {
    let (_, t) = resolve(src, id)?;
    let mut out = String::new();
    match t {
        Type::Composite(c) => {
            let title = format!("{} {}", c.kind, c.name.as_deref().unwrap_or("<anonymous>"));
            let _ = writeln!(out, "{title} {{");
            body(src, &c, 0, 1, pointer_size, &mut out)?;
            let _ = writeln!(out, "}};  /* size: {} */", c.size);
        }
        _ => {
            let _ = writeln!(out, "{} is not a struct or union", type_name(src, id));
        }
    }
    Ok(out)
}

const NAME_COL: usize = 44;

fn body(
    src: &dyn TypeSource,
    c: &Composite,
    base_bits: u64,
    depth: usize,
    psize: u32,
    out: &mut String,
) -> Result<()> {
    let indent = "    ".repeat(depth);
    for m in &c.members {
        let bits = base_bits + m.bit_offset;
        let size = size_of(src, m.ty, psize)?.unwrap_or(0);
        match (&m.name, strip_qualifiers(src, m.ty)?) {
            // Anonymous types are expanded where they are used, named
            // member or not (`struct { ... } lru_gen;`), as pahole does.
            (name, Type::Composite(inner)) if inner.name.is_none() => {
                let _ = writeln!(out, "{indent}{} {{", inner.kind);
                body(src, &inner, bits, depth + 1, psize, out)?;
                let line = match name {
                    Some(n) => format!("{indent}}} {n};"),
                    None => format!("{indent}}};"),
                };
                let _ = writeln!(out, "{line:<NAME_COL$}/* {:5} {:5} */", bits / 8, size);
            }
            (name, _) => {
                let name = name.as_deref().unwrap_or("");
                let decl = declaration(src, m.ty, name);
                match m.bitfield_size {
                    Some(w) => {
                        // Like pahole (and ftrace's b<w>@<bit>/<container>):
                        // the offset of the storage unit of the bitfield's
                        // type, and the bit within that unit.
                        let unit = size.max(1) * 8;
                        let start = bits / unit * unit;
                        let line = format!("{indent}{decl}:{w};");
                        let _ = writeln!(
                            out,
                            "{line:<NAME_COL$}/* {:5}:{:2} {:3} */",
                            start / 8,
                            bits - start,
                            size
                        );
                    }
                    None => {
                        let line = format!("{indent}{decl};");
                        let _ = writeln!(out, "{line:<NAME_COL$}/* {:5} {:5} */", bits / 8, size);
                    }
                }
            }
        }
    }
    Ok(())
}

/// The type under const/volatile, but not under a typedef: a typedef'd
/// anonymous struct (`atomic_t`) is shown by its name, not expanded.
fn strip_qualifiers(src: &dyn TypeSource, mut id: TypeId) -> Result<Type> {
    for _ in 0..16 {
        match src.get(id)? {
            Type::Qualified { target, .. } => id = target,
            t => return Ok(t),
        }
    }
    Err(super::TypeError::Loop(id.0))
}

/// `char comm[16]`, `struct mm_struct * mm`: arrays put the count after the name.
fn declaration(src: &dyn TypeSource, ty: TypeId, name: &str) -> String {
    let mut dims = String::new();
    let mut cur = ty;
    for _ in 0..8 {
        match src.get(cur) {
            Ok(Type::Array { elem, len }) => {
                let _ = write!(dims, "[{len}]");
                cur = elem;
            }
            // `const` on an array is `const` on its elements, which
            // carry it themselves: skip it here.
            Ok(Type::Qualified { target, .. })
                if matches!(src.get(target), Ok(Type::Array { .. })) =>
            {
                cur = target
            }
            _ => break,
        }
    }
    format!("{} {name}{dims}", type_name(src, cur))
}
