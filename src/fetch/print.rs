//! The fetch IR as the kernel's text: the one place a fetcharg is
//! written (Documentation/trace/kprobetrace.rst, "Synopsis of
//! kprobe_events"; uprobes take the same subset).

use std::fmt;

use super::{Fetch, FetchArg, FetchType, IntKind, Radix};

impl fmt::Display for Fetch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fetch::Reg(r) => write!(f, "%{r}"),
            Fetch::ArgN(n) => write!(f, "$arg{}", u64::from(*n) + 1),
            Fetch::Retval => f.write_str("$retval"),
            Fetch::StackAddr => f.write_str("$stack"),
            Fetch::Stack(n) => write!(f, "$stack{n}"),
            Fetch::Comm => f.write_str("$comm"),
            Fetch::Symbol { name, off } => match off {
                0 => write!(f, "@{name}"),
                o if *o < 0 => write!(f, "@{name}-{}", o.unsigned_abs()),
                o => write!(f, "@{name}+{o}"),
            },
            Fetch::Addr(a) => write!(f, "@{a:#x}"),
            Fetch::FileOffset(o) => write!(f, "@+{o:#x}"),
            Fetch::Imm(i) => write!(f, "\\{i}"),
            Fetch::Deref {
                base,
                off,
                user,
                radix,
            } => {
                let sign = if *off < 0 { '-' } else { '+' };
                let u = if *user { "u" } else { "" };
                let n = off.unsigned_abs();
                match radix {
                    Radix::Hex if n == 0 => write!(f, "{sign}{u}0({base})"),
                    Radix::Hex => write!(f, "{sign}{u}{n:#x}({base})"),
                    Radix::Dec => write!(f, "{sign}{u}{n}({base})"),
                }
            }
            Fetch::Verbatim(t) => f.write_str(t),
        }
    }
}

impl fmt::Display for FetchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchType::Int { kind, bytes } => {
                let letter = match kind {
                    IntKind::Unsigned => 'u',
                    IntKind::Signed => 's',
                    IntKind::Hex => 'x',
                };
                write!(f, "{letter}{}", bytes * 8)
            }
            FetchType::String => f.write_str("string"),
            FetchType::UString => f.write_str("ustring"),
            FetchType::Symbol => f.write_str("symbol"),
            FetchType::Bitfield {
                width,
                bit,
                container,
            } => write!(f, "b{width}@{bit}/{container}"),
            FetchType::Array { elem, len } => write!(f, "{elem}[{len}]"),
        }
    }
}

/// `NAME=FETCHARG[:TYPE]`, as a probe definition lists it.
impl fmt::Display for FetchArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)?;
        match &self.ty {
            // A verbatim fetcharg carries its own type, if any.
            Some(t) if !matches!(self.value, Fetch::Verbatim(_)) => write!(f, ":{t}"),
            _ => Ok(()),
        }
    }
}

impl FetchArg {
    /// `FETCHARG[:TYPE]` alone, without the name.
    pub fn fetch_text(&self) -> String {
        let s = self.to_string();
        s[self.name.len() + 1..].to_string()
    }
}
