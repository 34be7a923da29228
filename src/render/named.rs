//! A value's name under its plan (README, "Values by name"): an
//! enumerator, `A|B` flags, `-ENOENT`, `true`, `sock_def_readable+0x0`,
//! or the text the kernel's own print format makes of a tracepoint
//! field. The number stays the raw form: JSON carries it beside the name.

use crate::compile::plan::Names;
use crate::ring::Value;
use crate::tracefs::format::Field;
use crate::tracefs::printfmt::Val;

use super::names::Kallsyms;

/// What a name is, for JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Spelled {
    /// Text: a JSON string.
    Text,
    /// `true`/`false`: a JSON boolean, the number needs no repeating.
    Bool,
}

/// The integer in `v`, cut to the field's bytes and sign-extended when
/// the field is signed (as C reads it).
fn int(f: &Field, v: Value<'_>) -> Option<(u64, i64)> {
    let raw = match v {
        Value::Unsigned(u) => u,
        Value::Signed(i) => i as u64,
        _ => return None,
    };
    let bytes = f.size.clamp(1, 8) as u32;
    let sh = 64 - 8 * bytes;
    let u = (raw << sh) >> sh;
    Some((u, ((u << sh) as i64) >> sh))
}

/// Write `v`'s name to `out`; None (nothing written) when it has none.
pub(super) fn spell(
    names: &Names,
    f: &Field,
    v: Value<'_>,
    kallsyms: &mut Kallsyms,
    out: &mut Vec<u8>,
) -> Option<Spelled> {
    match names {
        Names::Print(p) => {
            let val = match v {
                Value::Str(s) => Val::Str(String::from_utf8_lossy(s).into_owned()),
                Value::Array { bytes, .. } | Value::Bytes(bytes) => Val::Bytes(bytes.to_vec()),
                _ => {
                    let (u, i) = int(f, v)?;
                    Val::Int(if f.signed { i as u64 } else { u })
                }
            };
            let text = p.eval(&|name| (name == p.field).then(|| val.clone()))?;
            out.extend_from_slice(text.as_bytes());
            Some(Spelled::Text)
        }
        Names::Table(t) => {
            let (u, _) = int(f, v)?;
            t.spell(u, out).then_some(Spelled::Text)
        }
        Names::Errno => {
            let (_, i) = int(f, v)?;
            let e = i
                .checked_neg()
                .filter(|&e| (1..=crate::kernel::errno::MAX_ERRNO as i64).contains(&e))?;
            let name = crate::kernel::errno::name(e as u64)?;
            out.push(b'-');
            out.extend_from_slice(name.as_bytes());
            Some(Spelled::Text)
        }
        Names::Bool => {
            let (u, _) = int(f, v)?;
            out.extend_from_slice(match u {
                0 => b"false",
                1 => b"true",
                _ => return None,
            });
            Some(Spelled::Bool)
        }
        Names::Symbol => {
            let (u, _) = int(f, v)?;
            let (name, off, _) = kallsyms.lookup(u)?;
            out.extend_from_slice(name.as_bytes());
            out.push(b'+');
            super::value::push_hex(out, off);
            Some(Spelled::Text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracefs::format::{FieldKind, Natural};

    fn field(size: usize, signed: bool) -> Field {
        Field {
            name: "v".into(),
            type_text: String::new(),
            offset: 0,
            size,
            signed,
            kind: FieldKind::Int,
            natural: Natural::Signed,
        }
    }

    fn spelled(n: &Names, f: &Field, v: Value<'_>) -> Option<String> {
        let mut k = Kallsyms::from_file("/nonexistent");
        let mut out = Vec::new();
        spell(n, f, v, &mut k, &mut out).map(|_| String::from_utf8(out).unwrap())
    }

    #[test]
    fn errno_bool() {
        // An `int` cut out of a 64-bit `$retval` (its low 4 bytes).
        let int = field(4, false);
        let e = |v| spelled(&Names::Errno, &int, Value::Unsigned(v));
        assert_eq!(e(0xffff_fffe).as_deref(), Some("-ENOENT"));
        assert_eq!(e(0xffff_ffff_ffff_fffe).as_deref(), Some("-ENOENT"));
        assert_eq!(e(3), None);
        // -4096 is no error; -517 is the kernel's own.
        assert_eq!(e((-4096i32) as u32 as u64), None);
        assert_eq!(e((-517i32) as u32 as u64).as_deref(), Some("-EPROBE_DEFER"));
        let long = field(8, true);
        assert_eq!(
            spelled(&Names::Errno, &long, Value::Signed(-22)).as_deref(),
            Some("-EINVAL")
        );
        let b = field(1, false);
        assert_eq!(
            spelled(&Names::Bool, &b, Value::Unsigned(1)).as_deref(),
            Some("true")
        );
        assert_eq!(
            spelled(&Names::Bool, &b, Value::Unsigned(0)).as_deref(),
            Some("false")
        );
        assert_eq!(spelled(&Names::Bool, &b, Value::Unsigned(2)), None);
        // No symbols known: the number, not a guess.
        assert_eq!(
            spelled(
                &Names::Symbol,
                &long,
                Value::Unsigned(0xffff_ffff_8100_0000)
            ),
            None
        );
    }
}
