//! One value, as text or as JSON, by the plan's Display or the field's type.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::compile::plan::Display;
use crate::ring::Value;
use crate::tracefs::format::{Field, Natural};

/// "00" "01" ... "99": two digits per division.
pub const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

pub fn push_u64(b: &mut Vec<u8>, v: u64) {
    if v < 100_000_000 {
        push_digits(b, v, dec_len_u64(v));
    } else {
        // Up to 20 digits: the high part, then eight at a time.
        let lo = v % 100_000_000;
        push_u64(b, v / 100_000_000);
        push_digits(b, lo, 8);
    }
}

/// `v` (below 10^8) in `n` digits (1..=8), leading zeros as needed. The
/// digits are gathered in a register and stored at once: a value is
/// written per event field, and byte stores read back as one wider load
/// (or a memcpy call of a run-time length) cost more than the digits.
#[inline]
fn push_digits(b: &mut Vec<u8>, mut v: u64, n: usize) {
    let mut w = 0u64;
    for i in (0..n).rev() {
        w |= (b'0' as u64 + v % 10) << (8 * i);
        v /= 10;
    }
    let at = b.len();
    b.extend_from_slice(&w.to_le_bytes());
    b.truncate(at + n);
}

/// Decimal digits of `v`.
fn dec_len_u64(v: u64) -> usize {
    let mut n = 1;
    let mut p = 10u64;
    while n < 20 && v >= p {
        n += 1;
        p = p.wrapping_mul(10);
    }
    n
}

pub fn push_i64(b: &mut Vec<u8>, v: i64) {
    if v < 0 {
        b.push(b'-');
    }
    push_u64(b, v.unsigned_abs());
}

pub fn dec_len(v: i64) -> usize {
    let mut n = if v < 0 { 2 } else { 1 };
    let mut u = v.unsigned_abs();
    while u >= 10 {
        u /= 10;
        n += 1;
    }
    n
}

pub fn push_hex(b: &mut Vec<u8>, v: u64) {
    const H: &[u8; 16] = b"0123456789abcdef";
    b.extend_from_slice(b"0x");
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        b.push(H[((v >> (i * 4)) & 0xf) as usize]);
    }
}

/// A JSON string literal. Invalid UTF-8 bytes are kept as `\u00XX`.
pub fn push_json_str(b: &mut Vec<u8>, s: &[u8]) {
    b.push(b'"');
    let mut rest = s;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(v) => (v, None),
            Err(e) => {
                let (v, r) = rest.split_at(e.valid_up_to());
                // SAFETY-free: valid_up_to guarantees UTF-8.
                (std::str::from_utf8(v).unwrap_or(""), r.first().copied())
            }
        };
        for &c in valid.as_bytes() {
            match c {
                b'"' => b.extend_from_slice(b"\\\""),
                b'\\' => b.extend_from_slice(b"\\\\"),
                b'\n' => b.extend_from_slice(b"\\n"),
                b'\t' => b.extend_from_slice(b"\\t"),
                b'\r' => b.extend_from_slice(b"\\r"),
                c if c < 0x20 => push_u00(b, c),
                c => b.push(c),
            }
        }
        let used = valid.len();
        match bad {
            Some(c) => {
                push_u00(b, c);
                rest = &rest[used + 1..];
            }
            None => rest = &rest[used..],
        }
    }
    b.push(b'"');
}

fn push_u00(b: &mut Vec<u8>, c: u8) {
    const H: &[u8; 16] = b"0123456789abcdef";
    b.extend_from_slice(b"\\u00");
    b.push(H[(c >> 4) as usize]);
    b.push(H[(c & 0xf) as usize]);
}

/// A string in text output: quoted, non-printables as `\xNN`.
fn push_text_str(b: &mut Vec<u8>, s: &[u8]) {
    b.push(b'"');
    push_escaped(b, s, b'"');
    b.push(b'"');
}

/// Bytes for text output with every control byte, DEL and non-ASCII byte
/// as `\xNN` (and `\\`, and `quote` escaped): a process name or a string
/// read from a traced process can neither break a line nor send the
/// terminal an escape sequence.
pub fn push_escaped(b: &mut Vec<u8>, s: &[u8], quote: u8) {
    const H: &[u8; 16] = b"0123456789abcdef";
    for &c in s {
        match c {
            b'\\' => b.extend_from_slice(b"\\\\"),
            c if quote != 0 && c == quote => {
                b.push(b'\\');
                b.push(c);
            }
            0x20..=0x7e => b.push(c),
            _ => {
                b.extend_from_slice(b"\\x");
                b.push(H[(c >> 4) as usize]);
                b.push(H[(c & 0xf) as usize]);
            }
        }
    }
}

/// Length of [`push_escaped`]'s output.
pub fn escaped_len(s: &[u8], quote: u8) -> usize {
    s.iter()
        .map(|&c| match c {
            b'\\' => 2,
            c if quote != 0 && c == quote => 2,
            0x20..=0x7e => 1,
            _ => 4,
        })
        .sum()
}

/// What a scalar becomes under a display.
enum Shown {
    Hex(u64),
    Signed(i64),
    Unsigned(u64),
    Ip4([u8; 4]),
    /// Nanoseconds.
    Duration(u64),
}

/// Nanoseconds with a unit: `850ns`, `12.345us`, `1.052ms`, `2.000s`.
pub fn push_duration(b: &mut Vec<u8>, ns: u64) {
    let (div, unit): (u64, &[u8]) = match ns {
        0..=999 => (1, b"ns"),
        1_000..=999_999 => (1_000, b"us"),
        1_000_000..=999_999_999 => (1_000_000, b"ms"),
        _ => (1_000_000_000, b"s"),
    };
    push_u64(b, ns / div);
    if div > 1 {
        // Three decimals of the unit.
        let frac = ns % div / (div / 1000);
        b.push(b'.');
        b.push(b'0' + (frac / 100) as u8);
        b.push(b'0' + (frac / 10 % 10) as u8);
        b.push(b'0' + (frac % 10) as u8);
    }
    b.extend_from_slice(unit);
}

fn scalar(f: &Field, v: Value<'_>, disp: Display) -> Option<Shown> {
    let size = f.size.clamp(1, 8) as u32;
    let mask = if size == 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    };
    let raw = match v {
        Value::Unsigned(u) => u,
        Value::Signed(i) => i as u64,
        _ => return None,
    } & mask;
    let signed = |u: u64| {
        let sh = 64 - size * 8;
        ((u << sh) as i64) >> sh
    };
    Some(match disp {
        Display::Hex | Display::String => Shown::Hex(raw),
        Display::Signed => Shown::Signed(signed(raw)),
        Display::Unsigned => Shown::Unsigned(raw),
        Display::Duration => Shown::Duration(raw),
        Display::Ip => {
            // The field holds the bytes as they were in memory (network order).
            let bytes = raw.to_ne_bytes();
            let four = if cfg!(target_endian = "little") {
                [bytes[0], bytes[1], bytes[2], bytes[3]]
            } else {
                [bytes[4], bytes[5], bytes[6], bytes[7]]
            };
            Shown::Ip4(four)
        }
        Display::Swapped { bits, hex } => {
            let s = match bits {
                16 => (raw as u16).swap_bytes() as u64,
                32 => (raw as u32).swap_bytes() as u64,
                _ => raw.swap_bytes(),
            };
            if hex {
                Shown::Hex(s)
            } else {
                Shown::Unsigned(s)
            }
        }
        Display::Default => match f.natural {
            Natural::Hex | Natural::String => Shown::Hex(raw),
            Natural::Signed => Shown::Signed(signed(raw)),
            Natural::Unsigned => Shown::Unsigned(raw),
        },
    })
}

/// An array or byte run shown as an address, when it is one's size.
fn ip_of(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()),
        16 => {
            let a: [u8; 16] = bytes.try_into().ok()?;
            Some(Ipv6Addr::from(a).to_string())
        }
        _ => None,
    }
}

fn elems(elem: u8, signed: bool, bytes: &[u8]) -> impl Iterator<Item = Value<'_>> {
    let e = elem.clamp(1, 8) as usize;
    bytes.chunks_exact(e).map(move |c| {
        let mut v = [0u8; 8];
        v[..e].copy_from_slice(c);
        let u = u64::from_ne_bytes(v);
        if signed {
            let sh = 64 - 8 * e as u32;
            Value::Signed(((u << sh) as i64) >> sh)
        } else {
            Value::Unsigned(u)
        }
    })
}

fn elem_field(f: &Field, elem: u8) -> Field {
    let mut ef = f.clone();
    ef.size = elem.clamp(1, 8) as usize;
    ef
}

pub fn push_text(b: &mut Vec<u8>, f: &Field, v: Option<Value<'_>>, disp: Display) {
    let Some(v) = v else {
        b.extend_from_slice(b"<truncated>");
        return;
    };
    match v {
        Value::Str(s) => push_text_str(b, s),
        // As the kernel's own trace output shows it; never `""`.
        Value::Fault => b.extend_from_slice(b"(fault)"),
        Value::Unsigned(_) | Value::Signed(_) => match scalar(f, v, disp) {
            Some(Shown::Hex(u)) => push_hex(b, u),
            Some(Shown::Signed(i)) => push_i64(b, i),
            Some(Shown::Unsigned(u)) => push_u64(b, u),
            Some(Shown::Ip4(a)) => b.extend_from_slice(Ipv4Addr::from(a).to_string().as_bytes()),
            Some(Shown::Duration(ns)) => push_duration(b, ns),
            None => {}
        },
        Value::Array {
            elem,
            signed,
            bytes,
        } => {
            if disp == Display::Ip {
                if let Some(s) = ip_of(bytes) {
                    b.extend_from_slice(s.as_bytes());
                    return;
                }
            }
            let ef = elem_field(f, elem);
            b.push(b'{');
            for (i, e) in elems(elem, signed, bytes).enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                push_text(b, &ef, Some(e), disp);
            }
            b.push(b'}');
        }
        Value::Bytes(bytes) => {
            if disp == Display::Ip {
                if let Some(s) = ip_of(bytes) {
                    b.extend_from_slice(s.as_bytes());
                    return;
                }
            }
            for c in bytes {
                b.extend_from_slice(format!("{c:02x}").as_bytes());
            }
        }
    }
}

/// JSON: numbers as numbers, hex as `"0x..."` strings (exact beyond 2^53),
/// addresses as strings, arrays as arrays.
pub fn push_json(b: &mut Vec<u8>, f: &Field, v: Option<Value<'_>>, disp: Display) {
    let Some(v) = v else {
        b.extend_from_slice(b"null");
        return;
    };
    match v {
        Value::Str(s) => push_json_str(b, s),
        // The renderer says why beside the args (`faults`).
        Value::Fault => b.extend_from_slice(b"null"),
        Value::Unsigned(_) | Value::Signed(_) => match scalar(f, v, disp) {
            Some(Shown::Hex(u)) => {
                b.push(b'"');
                push_hex(b, u);
                b.push(b'"');
            }
            Some(Shown::Signed(i)) => push_i64(b, i),
            // JSON carries the nanoseconds.
            Some(Shown::Unsigned(u)) | Some(Shown::Duration(u)) => push_u64(b, u),
            Some(Shown::Ip4(a)) => push_json_str(b, Ipv4Addr::from(a).to_string().as_bytes()),
            None => b.extend_from_slice(b"null"),
        },
        Value::Array {
            elem,
            signed,
            bytes,
        } => {
            if disp == Display::Ip {
                if let Some(s) = ip_of(bytes) {
                    push_json_str(b, s.as_bytes());
                    return;
                }
            }
            let ef = elem_field(f, elem);
            b.push(b'[');
            for (i, e) in elems(elem, signed, bytes).enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                push_json(b, &ef, Some(e), disp);
            }
            b.push(b']');
        }
        Value::Bytes(bytes) => {
            if disp == Display::Ip {
                if let Some(s) = ip_of(bytes) {
                    push_json_str(b, s.as_bytes());
                    return;
                }
            }
            let mut t = Vec::new();
            push_text(&mut t, f, Some(v), disp);
            push_json_str(b, &t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracefs::format::FieldKind;

    fn field(size: usize, signed: bool, natural: Natural, kind: FieldKind) -> Field {
        Field {
            name: "v".into(),
            type_text: String::new(),
            offset: 0,
            size,
            signed,
            kind,
            natural,
        }
    }

    #[test]
    fn decimals_of_every_length() {
        let mut v = 0u64;
        let mut edges = vec![0, u64::MAX, u64::MAX - 1];
        for _ in 0..20 {
            edges.extend([v.saturating_sub(1), v, v + 1]);
            v = if v == 0 { 10 } else { v.saturating_mul(10) };
        }
        for v in edges {
            let mut b = b"x".to_vec();
            push_u64(&mut b, v);
            assert_eq!(b, format!("x{v}").as_bytes());
            let mut b = Vec::new();
            push_i64(&mut b, -(v as i64));
            assert_eq!(b, format!("{}", -(v as i64)).as_bytes());
        }
    }

    #[test]
    fn durations() {
        let d = |ns| {
            let mut b = Vec::new();
            push_duration(&mut b, ns);
            String::from_utf8(b).unwrap()
        };
        assert_eq!(d(0), "0ns");
        assert_eq!(d(999), "999ns");
        assert_eq!(d(1000), "1.000us");
        assert_eq!(d(12_345), "12.345us");
        assert_eq!(d(1_052_999), "1.052ms");
        assert_eq!(d(50_407_763), "50.407ms");
        assert_eq!(d(2_000_000_000), "2.000s");
        let f = field(8, false, Natural::Unsigned, FieldKind::Int);
        assert_eq!(
            text(&f, Value::Unsigned(12_345), Display::Duration),
            "12.345us"
        );
        assert_eq!(
            json(&f, Value::Unsigned(12_345), Display::Duration),
            "12345"
        );
    }

    fn text(f: &Field, v: Value<'_>, d: Display) -> String {
        let mut b = Vec::new();
        push_text(&mut b, f, Some(v), d);
        String::from_utf8(b).unwrap()
    }

    fn json(f: &Field, v: Value<'_>, d: Display) -> String {
        let mut b = Vec::new();
        push_json(&mut b, f, Some(v), d);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn scalars_by_display() {
        let u32f = field(4, false, Natural::Hex, FieldKind::Int);
        let v = Value::Unsigned(0xffff_fffe);
        assert_eq!(text(&u32f, v, Display::Default), "0xfffffffe");
        assert_eq!(text(&u32f, v, Display::Signed), "-2");
        assert_eq!(text(&u32f, v, Display::Unsigned), "4294967294");
        assert_eq!(json(&u32f, v, Display::Signed), "-2");
        assert_eq!(json(&u32f, v, Display::Default), "\"0xfffffffe\"");
        let s = field(4, true, Natural::Signed, FieldKind::Int);
        assert_eq!(text(&s, Value::Signed(-7), Display::Default), "-7");
        assert_eq!(text(&s, Value::Signed(0), Display::Hex), "0x0");
    }

    #[test]
    fn ip_and_swaps() {
        let f = field(4, false, Natural::Hex, FieldKind::Int);
        // 127.0.0.1 in memory is 7f 00 00 01: as a little-endian u32 0x0100007f.
        let v = Value::Unsigned(u32::from_ne_bytes([127, 0, 0, 1]) as u64);
        assert_eq!(text(&f, v, Display::Ip), "127.0.0.1");
        assert_eq!(json(&f, v, Display::Ip), "\"127.0.0.1\"");
        let p = field(2, false, Natural::Hex, FieldKind::Int);
        let port = Value::Unsigned(u16::from_ne_bytes([0x1f, 0x90]) as u64);
        assert_eq!(
            text(
                &p,
                port,
                Display::Swapped {
                    bits: 16,
                    hex: false
                }
            ),
            "8080"
        );
        assert_eq!(
            text(
                &p,
                port,
                Display::Swapped {
                    bits: 16,
                    hex: true
                }
            ),
            "0x1f90"
        );
        let a = field(16, false, Natural::Hex, FieldKind::Array { elem: 1 });
        let mut six = [0u8; 16];
        six[15] = 1;
        let v6 = Value::Array {
            elem: 1,
            signed: false,
            bytes: &six,
        };
        assert_eq!(text(&a, v6, Display::Ip), "::1");
        assert_eq!(json(&a, v6, Display::Ip), "\"::1\"");
    }

    #[test]
    fn strings() {
        let f = field(4, false, Natural::String, FieldKind::DataLocString);
        assert_eq!(
            text(&f, Value::Str(b"a\"b\x01"), Display::Default),
            "\"a\\\"b\\x01\""
        );
        assert_eq!(
            json(&f, Value::Str(b"a\"\xff\n"), Display::Default),
            "\"a\\\"\\u00ff\\n\""
        );
        let j = json(&f, Value::Str("é\u{1}".as_bytes()), Display::Default);
        assert_eq!(serde_json::from_str::<String>(&j).unwrap(), "é\u{1}");
        assert_eq!(text(&f, Value::Fault, Display::Default), "(fault)");
        assert_eq!(text(&f, Value::Str(b""), Display::Default), "\"\"");
        assert_eq!(json(&f, Value::Fault, Display::Default), "null");
        let mut b = Vec::new();
        push_escaped(&mut b, b"a\n\x1b[31mb\\ c", 0);
        assert_eq!(b, b"a\\x0a\\x1b[31mb\\\\ c");
        assert_eq!(escaped_len(b"a\n\x1b[31mb\\ c", 0), b.len());
    }

    #[test]
    fn numbers() {
        for v in [0u64, 7, 10, 99, 100, 101, 999, 1000, 123456789, u64::MAX] {
            let mut b = Vec::new();
            push_u64(&mut b, v);
            assert_eq!(b, v.to_string().as_bytes());
        }
        let mut b = Vec::new();
        push_u64(&mut b, 0);
        b.push(b' ');
        push_i64(&mut b, i64::MIN);
        b.push(b' ');
        push_hex(&mut b, 0);
        b.push(b' ');
        push_hex(&mut b, u64::MAX);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "0 -9223372036854775808 0x0 0xffffffffffffffff"
        );
        assert_eq!(dec_len(-10), 3);
        assert_eq!(dec_len(9), 1);
    }
}
