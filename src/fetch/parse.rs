//! The user's raw fetchargs (`%di`, `+8(%si):u32`, `$stack3`, `@jiffies`,
//! `$comm`, `$arg2`, `$retval`) into the fetch IR. A raw fetcharg passes
//! to the kernel unchanged (README, "Expressions"), so text is taken into
//! the IR only when the IR prints it back exactly; anything else is kept
//! [`Fetch::Verbatim`] for the kernel to judge.

use super::{Fetch, FetchType, IntKind, Radix};

/// `FETCHARG[:TYPE]` as the user wrote it.
pub fn fetcharg(text: &str) -> (Fetch, Option<FetchType>) {
    if let Some((value, ty)) = strict(text) {
        let printed = match &ty {
            Some(t) => format!("{value}:{t}"),
            None => value.to_string(),
        };
        if printed == text {
            return (value, ty);
        }
    }
    (Fetch::Verbatim(text.to_string()), None)
}

/// The IR of `text`, if it is in the syntax the IR covers.
fn strict(text: &str) -> Option<(Fetch, Option<FetchType>)> {
    // A type follows the last `:` outside parentheses.
    let (value, ty) = match type_colon(text) {
        Some(i) => (&text[..i], Some(fetch_type(&text[i + 1..])?)),
        None => (text, None),
    };
    Some((fetch(value)?, ty))
}

fn type_colon(text: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut at = None;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ':' if depth == 0 => at = Some(i),
            _ => {}
        }
    }
    at
}

fn fetch(t: &str) -> Option<Fetch> {
    if let Some(r) = t.strip_prefix('%') {
        let ok = !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        return ok.then(|| Fetch::Reg(r.to_string()));
    }
    if let Some(rest) = t.strip_prefix('$') {
        return match rest {
            "retval" => Some(Fetch::Retval),
            "comm" => Some(Fetch::Comm),
            "stack" => Some(Fetch::StackAddr),
            _ => {
                if let Some(n) = rest.strip_prefix("stack") {
                    Some(Fetch::Stack(n.parse().ok()?))
                } else {
                    let n: u32 = rest.strip_prefix("arg")?.parse().ok()?;
                    Some(Fetch::ArgN(n.checked_sub(1)?))
                }
            }
        };
    }
    if let Some(rest) = t.strip_prefix("@+") {
        return Some(Fetch::FileOffset(hex(rest)?));
    }
    if let Some(rest) = t.strip_prefix('@') {
        if rest.starts_with("0x") {
            return Some(Fetch::Addr(hex(rest)?));
        }
        let (name, off) = match rest.find(['+', '-']) {
            Some(i) => {
                let n: i64 = rest[i + 1..].parse().ok()?;
                (&rest[..i], if &rest[i..=i] == "-" { -n } else { n })
            }
            None => (rest, 0),
        };
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        return ok.then(|| Fetch::Symbol {
            name: name.to_string(),
            off,
        });
    }
    if let Some(imm) = t.strip_prefix('\\') {
        return (!imm.is_empty()).then(|| Fetch::Imm(imm.to_string()));
    }
    // `+|-[u]OFF(BASE)`
    let sign = t.chars().next().filter(|c| *c == '+' || *c == '-')?;
    let rest = &t[1..];
    let (user, rest) = match rest.strip_prefix('u') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let open = rest.find('(')?;
    let inner = rest[open + 1..].strip_suffix(')')?;
    let num = &rest[..open];
    let (n, radix) = match num.strip_prefix("0x") {
        Some(h) => (u64::from_str_radix(h, 16).ok()?, Radix::Hex),
        None if num == "0" => (0, Radix::Hex),
        None => (num.parse().ok()?, Radix::Dec),
    };
    let off = i64::try_from(n).ok()?;
    Some(Fetch::Deref {
        base: Box::new(fetch(inner)?),
        off: if sign == '-' { -off } else { off },
        user,
        radix,
    })
}

fn hex(t: &str) -> Option<u64> {
    u64::from_str_radix(t.strip_prefix("0x")?, 16).ok()
}

fn fetch_type(t: &str) -> Option<FetchType> {
    if let Some(open) = t.find('[') {
        let len = t[open + 1..].strip_suffix(']')?.parse().ok()?;
        let elem = fetch_type(&t[..open])?;
        return Some(FetchType::Array {
            elem: Box::new(elem),
            len,
        });
    }
    match t {
        "string" => return Some(FetchType::String),
        "ustring" => return Some(FetchType::UString),
        "symbol" => return Some(FetchType::Symbol),
        _ => {}
    }
    if let Some(b) = t.strip_prefix('b') {
        let (width, rest) = b.split_once('@')?;
        let (bit, container) = rest.split_once('/')?;
        return Some(FetchType::Bitfield {
            width: width.parse().ok()?,
            bit: bit.parse().ok()?,
            container: container.parse().ok()?,
        });
    }
    let kind = match t.chars().next()? {
        'u' => IntKind::Unsigned,
        's' => IntKind::Signed,
        'x' => IntKind::Hex,
        _ => return None,
    };
    let bits: u32 = t[1..].parse().ok()?;
    matches!(bits, 8 | 16 | 32 | 64).then(|| FetchType::int(kind, bits / 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_fetchargs_round_trip_into_the_ir() {
        let cases: &[(&str, Fetch, Option<FetchType>)] = &[
            ("%r12", Fetch::reg("r12"), None),
            (
                "%di:s64",
                Fetch::reg("di"),
                Some(FetchType::int(IntKind::Signed, 8)),
            ),
            ("$retval", Fetch::Retval, None),
            (
                "$retval:s32",
                Fetch::Retval,
                Some(FetchType::int(IntKind::Signed, 4)),
            ),
            ("$comm", Fetch::Comm, None),
            ("$stack", Fetch::StackAddr, None),
            ("$stack3", Fetch::Stack(3), None),
            ("$arg1", Fetch::ArgN(0), None),
            (
                "@jiffies",
                Fetch::Symbol {
                    name: "jiffies".into(),
                    off: 0,
                },
                None,
            ),
            (
                "@jiffies+8",
                Fetch::Symbol {
                    name: "jiffies".into(),
                    off: 8,
                },
                None,
            ),
            ("@0xffffffff81000000", Fetch::Addr(0xffffffff81000000), None),
            ("@+0x1130", Fetch::FileOffset(0x1130), None),
            ("\\123", Fetch::Imm("123".into()), None),
            (
                "+8(%si):u32",
                Fetch::Deref {
                    base: Box::new(Fetch::reg("si")),
                    off: 8,
                    user: false,
                    radix: Radix::Dec,
                },
                Some(FetchType::int(IntKind::Unsigned, 4)),
            ),
            (
                "+0x54(+0x8e0(%di)):s32",
                Fetch::deref(Fetch::deref(Fetch::reg("di"), 0x8e0, false), 0x54, false),
                Some(FetchType::int(IntKind::Signed, 4)),
            ),
            (
                "+u0(+0x68(%di)):ustring",
                Fetch::deref(Fetch::deref(Fetch::reg("di"), 0x68, false), 0, true),
                Some(FetchType::UString),
            ),
            (
                "-8(%sp):x64",
                Fetch::Deref {
                    base: Box::new(Fetch::reg("sp")),
                    off: -8,
                    user: false,
                    radix: Radix::Dec,
                },
                Some(FetchType::int(IntKind::Hex, 8)),
            ),
            (
                "+0x928(%di):b1@3/32",
                Fetch::deref(Fetch::reg("di"), 0x928, false),
                Some(FetchType::Bitfield {
                    width: 1,
                    bit: 3,
                    container: 32,
                }),
            ),
            (
                "+0(%si):x8[6]",
                Fetch::deref(Fetch::reg("si"), 0, false),
                Some(FetchType::Array {
                    elem: Box::new(FetchType::int(IntKind::Hex, 1)),
                    len: 6,
                }),
            ),
        ];
        for (text, value, ty) in cases {
            let (v, t) = fetcharg(text);
            assert_eq!((&v, &t), (value, ty), "{text}");
            let printed = match &t {
                Some(t) => format!("{v}:{t}"),
                None => v.to_string(),
            };
            assert_eq!(&printed, text);
        }
    }

    /// What the IR would spell differently, or does not know, stays as
    /// written.
    #[test]
    fn other_text_passes_verbatim() {
        for text in [
            "+0x08(%si)",
            "+0X8(%si)",
            "$arg0",
            "%",
            "+8(%si):%pd",
            "file->f_inode",
            "$arg*",
            "+8(%si",
        ] {
            assert_eq!(
                fetcharg(text),
                (Fetch::Verbatim(text.into()), None),
                "{text}"
            );
        }
    }

    #[test]
    fn questions_the_ir_answers() {
        let (v, _) = fetcharg("+u0(+0x68(%di))");
        assert!(v.reads_arguments() && v.reads_user_memory());
        assert_eq!(v.registers().collect::<Vec<_>>(), ["di"]);
        assert_eq!(v.depth(), 2);
        let (r, _) = fetcharg("+0x4($retval)");
        assert!(r.reads_retval() && !r.reads_arguments());
        assert!(Fetch::ArgN(2).reads_arguments());
        let (_, ty) = fetcharg("+0(%si):x8[6]");
        assert_eq!(ty.as_ref().and_then(FetchType::size), Some(6));
        let (_, ty) = fetcharg("+0(%si):b3@2/32");
        assert_eq!(ty.as_ref().and_then(FetchType::size), Some(4));
        assert!(fetcharg("+0(%si):ustring").1.is_some_and(|t| t.is_string()));
        assert!(!Fetch::Verbatim("%di".into()).reads_arguments());
    }
}
