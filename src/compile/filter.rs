//! Filters: the text after `f:`, written to the event's `filter` file.
//!
//! The kernel compares raw field values, so literals written the way a
//! value is shown must become what the field holds (README, "Packet
//! tracing"): a dotted IPv4 address compared with an `ip_` field becomes the 32-bit word the
//! packet bytes make when read in the target's (little-endian) order, and
//! a value compared with a byte-swapped `B16_`/`b32_`... field is swapped.
//! Everything else passes through unchanged; a literal that should be
//! translated but cannot be is an error, never passed on.

use super::plan::Display;

/// What the translation needs to know of one named value.
#[derive(Clone, Debug)]
pub struct FilterField {
    pub name: String,
    pub display: Display,
    /// Width in bytes, where the compiler knows it (typed expressions).
    pub size: Option<u32>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct FilterError {
    /// Byte range inside the filter text.
    pub start: usize,
    pub end: usize,
    pub msg: String,
}

use crate::spec::filter::{tokens, Token as Tok};

/// The filter's tokens as (kind, start, end).
fn lexed(filter: &str) -> Vec<(Tok, usize, usize)> {
    tokens(filter)
        .into_iter()
        .map(|t| (t.kind, t.span.start, t.span.end))
        .collect()
}

/// A decimal or `0x` hex number.
fn number(t: &str) -> Option<u64> {
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

/// A time as nanoseconds: `1500` (ns), `1500ns`, `12us`, `1.5ms`, `2s`.
pub fn duration_ns(t: &str) -> Option<u64> {
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale: u64 = match unit {
        "" | "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => return None,
    };
    if num.is_empty() {
        return None;
    }
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if frac.contains('.') || frac.len() > 9 {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f: u64 = 0;
    let mut fscale = scale;
    for c in frac.chars() {
        fscale /= 10;
        f += c.to_digit(10)? as u64 * fscale;
        if fscale == 0 && c != '0' {
            // Finer than a nanosecond.
            return None;
        }
    }
    whole.checked_mul(scale)?.checked_add(f)
}

/// Whether the filter compares the field called `name`.
pub fn mentions(filter: &str, name: &str) -> bool {
    lexed(filter)
        .iter()
        .any(|&(t, s, e)| t == Tok::Ident && &filter[s..e] == name)
}

/// The filter text for the kernel.
pub fn translate(filter: &str, fields: &[FilterField]) -> Result<String, FilterError> {
    let toks = lexed(filter);
    let mut out = String::with_capacity(filter.len());
    let mut copied = 0;
    for w in toks.windows(3) {
        // The value may look like a name (`http`): for our fields it is
        // still the literal to translate (or reject).
        let [(Tok::Ident, fs, fe), (Tok::Op, os, oe), (Tok::Literal | Tok::Ident, ls, le)] = *w
        else {
            continue;
        };
        let name = &filter[fs..fe];
        let Some(field) = fields.iter().find(|f| f.name == name) else {
            continue;
        };
        let op = &filter[os..oe];
        let lit = &filter[ls..le];
        let err = |msg: String| FilterError {
            start: ls,
            end: le,
            msg,
        };
        let new = match field.display {
            Display::Ip => {
                if !matches!(op, "==" | "!=") {
                    return Err(FilterError {
                        start: os,
                        end: oe,
                        msg: format!("`{name}` is an address: only `==` and `!=` can compare it"),
                    });
                }
                if field.size == Some(16) {
                    return Err(err(format!(
                        "`{name}` is a 128-bit IPv6 address, which kernel filters cannot compare"
                    )));
                }
                if let Ok(a) = lit.parse::<std::net::Ipv4Addr>() {
                    format!("{:#x}", u32::from_le_bytes(a.octets()))
                } else if number(lit).is_some_and(|n| n <= u32::MAX as u64) {
                    // Already the raw word.
                    lit.to_string()
                } else {
                    return Err(err(format!(
                        "`{lit}` is not an IPv4 address (compare `{name}` with e.g. 127.0.0.1)"
                    )));
                }
            }
            Display::Swapped { bits, .. } => {
                if !matches!(op, "==" | "!=" | "&") {
                    return Err(FilterError {
                        start: os,
                        end: oe,
                        msg: format!(
                            "`{name}` is byte-swapped: only `==`, `!=` and `&` keep their meaning"
                        ),
                    });
                }
                let Some(v) = number(lit) else {
                    return Err(err(format!(
                        "`{lit}` is not a number (decimal or 0x hex) to compare with `{name}`"
                    )));
                };
                let swapped = match bits {
                    16 if v <= u16::MAX as u64 => (v as u16).swap_bytes() as u64,
                    32 if v <= u32::MAX as u64 => (v as u32).swap_bytes() as u64,
                    64 => v.swap_bytes(),
                    _ => {
                        return Err(err(format!(
                            "`{lit}` does not fit the {bits} bits of `{name}`"
                        )))
                    }
                };
                format!("{swapped:#x}")
            }
            Display::Duration => match duration_ns(lit) {
                Some(ns) => ns.to_string(),
                None => {
                    return Err(err(format!(
                        "`{lit}` is not a time to compare with `{name}` (e.g. 500us, 10ms, 1.5s; a bare number is nanoseconds)"
                    )))
                }
            },
            _ => continue,
        };
        out.push_str(&filter[copied..ls]);
        out.push_str(&new);
        copied = le;
    }
    out.push_str(&filter[copied..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ns("1500"), Some(1500));
        assert_eq!(duration_ns("1500ns"), Some(1500));
        assert_eq!(duration_ns("12us"), Some(12_000));
        assert_eq!(duration_ns("1.5ms"), Some(1_500_000));
        assert_eq!(duration_ns("2s"), Some(2_000_000_000));
        assert_eq!(duration_ns("0.000000001s"), Some(1));
        assert_eq!(duration_ns("1.5ns"), None);
        assert_eq!(duration_ns("10 ms"), None);
        assert_eq!(duration_ns("ms"), None);
        assert_eq!(duration_ns("10h"), None);
        let f = [FilterField {
            name: "lat".into(),
            display: Display::Duration,
            size: Some(8),
        }];
        assert_eq!(
            translate("lat>10ms && lat<=1s", &f).unwrap(),
            "lat>10000000 && lat<=1000000000"
        );
        let e = translate("lat>10h", &f).unwrap_err();
        assert_eq!((e.start, e.end), (4, 7));
    }

    fn fields() -> Vec<FilterField> {
        vec![
            FilterField {
                name: "ip_src".into(),
                display: Display::Ip,
                size: Some(4),
            },
            FilterField {
                name: "ip_v6".into(),
                display: Display::Ip,
                size: Some(16),
            },
            FilterField {
                name: "b16_dport".into(),
                display: Display::Swapped {
                    bits: 16,
                    hex: false,
                },
                size: Some(2),
            },
            FilterField {
                name: "B32_x".into(),
                display: Display::Swapped {
                    bits: 32,
                    hex: true,
                },
                size: Some(4),
            },
            FilterField {
                name: "proto".into(),
                display: Display::Hex,
                size: Some(1),
            },
        ]
    }

    #[test]
    fn readme_example() {
        assert_eq!(
            translate("ip_src==127.0.0.1", &fields()).unwrap(),
            "ip_src==0x100007f"
        );
    }

    #[test]
    fn mixed_expression_keeps_the_rest() {
        assert_eq!(
            translate(
                "(ip_src == 10.1.2.3 || ip_src!=192.168.0.1) && proto==1 && b16_dport == 80 && B32_x & 0xff && common_pid != 1",
                &fields()
            )
            .unwrap(),
            "(ip_src == 0x302010a || ip_src!=0x100a8c0) && proto==1 && b16_dport == 0x5000 && B32_x & 0xff000000 && common_pid != 1"
        );
    }

    #[test]
    fn untranslatable_literals_are_errors() {
        let f = fields();
        let e = translate("ip_src==300.1.1.1", &f).unwrap_err();
        assert_eq!((e.start, e.end), (8, 17));
        assert!(e.msg.contains("not an IPv4 address"));
        let e = translate("proto==1 && ip_src < 1.2.3.4", &f).unwrap_err();
        assert_eq!(&"proto==1 && ip_src < 1.2.3.4"[e.start..e.end], "<");
        let e = translate("b16_dport==70000", &f).unwrap_err();
        assert!(e.msg.contains("does not fit the 16 bits"));
        let e = translate("b16_dport==http", &f).unwrap_err();
        assert!(e.msg.contains("not a number"));
        let e = translate("ip_v6==::1", &f).unwrap_err();
        assert!(e.msg.contains("128-bit"));
    }

    #[test]
    fn strings_and_unknown_names_pass() {
        let s = r#"comm == "ip_src==1.2.3.4" && x==1.2.3.4"#;
        assert_eq!(translate(s, &fields()).unwrap(), s);
    }
}
