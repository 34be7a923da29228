//! Names for numbers, decided from a value's C type (README, "Values by
//! name"): an enum's enumerators, `true`/`false` for a `bool`, a kernel
//! function's name for a code pointer, `-ENOENT` for a kernel
//! function's error return, and the few flag words whose names the
//! kernel's headers give but BTF does not ([`super::known`]). The number
//! stays the value's raw form: a letter (`%0X~...`) or `--raw` asks for
//! it alone.

use std::sync::Arc;

use crate::types::{resolve, type_name, Type, TypeId, TypeSource};

use super::plan::{Display, NameEntry, NameTable, Names};
use super::Result;

/// The names a value of C type `ty` gets; `member` is `(struct, member)`
/// when the value is a struct member (a few are known by name); `kernel`:
/// the types are the kernel's (code pointers are kernel functions, the
/// kernel's headers apply), not a user binary's.
pub(super) fn of_type(
    src: &dyn TypeSource,
    ty: TypeId,
    member: Option<(&str, &str)>,
    kernel: bool,
    known: &super::known::Known,
) -> Result<Option<Names>> {
    if kernel {
        if let Some(n) = known.for_value(src, ty, member)? {
            return Ok(Some(n));
        }
    }
    let (_, t) = resolve(src, ty)?;
    Ok(match t {
        Type::Enum { size, values, .. } if !values.is_empty() => Some(Names::Table(Arc::new(
            enum_table(type_name(src, ty), size, &values),
        ))),
        Type::Int(i) if i.is_bool => Some(Names::Bool),
        Type::Pointer { target, .. } if kernel => {
            matches!(resolve(src, target)?.1, Type::FuncProto { .. }).then_some(Names::Symbol)
        }
        _ => None,
    })
}

/// An enum's names. One whose values are all powers of two (and zero),
/// three or more of them, is a word of flags: a value that is none of
/// them is spelled as the flags it holds, `A|B`.
pub(crate) fn enum_table(
    what: String,
    size: u32,
    values: &[crate::types::Enumerator],
) -> NameTable {
    let full = mask(size);
    let bits = values
        .iter()
        .filter(|e| e.value & full != 0)
        .map(|e| e.value & full);
    let flags = bits.clone().all(|v| v.is_power_of_two())
        && bits.collect::<std::collections::BTreeSet<_>>().len() >= 3;
    NameTable {
        what,
        size,
        flags,
        entries: values
            .iter()
            .map(|e| {
                let value = e.value & full;
                NameEntry {
                    mask: if flags && value != 0 { value } else { full },
                    value,
                    name: e.name.clone(),
                }
            })
            .collect(),
    }
}

/// All ones in `size` bytes.
pub(crate) fn mask(size: u32) -> u64 {
    match size {
        0 => 0,
        s if s >= 8 => u64::MAX,
        s => (1u64 << (s * 8)) - 1,
    }
}

/// Whether a function returning `ty` returns a negative errno on
/// failure, as the kernel's functions returning `int` or `long` do
/// (include/linux/err.h): a signed integer of 4 or 8 bytes that is not
/// a `bool` or a character.
pub(super) fn returns_errno(src: &dyn TypeSource, ty: TypeId) -> Result<bool> {
    Ok(matches!(resolve(src, ty)?.1,
        Type::Int(i) if i.signed && !i.is_bool && !i.is_char && matches!(i.size, 4 | 8)))
}

/// How the number of a named value is shown (its raw form, beside the
/// name in JSON): flags and addresses in hex, other numbers in decimal
/// with their C type's sign.
pub(super) fn raw_display(src: &dyn TypeSource, ty: TypeId, names: &Names) -> Result<Display> {
    Ok(match names {
        Names::Table(t) if t.flags => Display::Hex,
        Names::Symbol | Names::Print(_) => Display::Hex,
        _ => match resolve(src, ty)?.1 {
            Type::Int(i) if i.signed => Display::Signed,
            Type::Enum { signed: true, .. } => Display::Signed,
            _ => Display::Unsigned,
        },
    })
}
