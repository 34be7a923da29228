//! Event `format` files: where each field of a record lies and what it is.
//!
//! The kernel describes every event's binary layout in
//! `events/<system>/<event>/format`; the decoder is driven by that text
//! alone, so new kernels and new fetch types need no code here.

use super::TracefsError;

/// What a field holds, as far as decoding is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A fixed-size integer (1, 2, 4 or 8 bytes).
    Int,
    /// `char name[N]`: a NUL-terminated string inside the record.
    CharArray,
    /// `__data_loc char[] name`: a u32 `len << 16 | offset` to a string.
    DataLocString,
    /// `__data_loc T[] name`: a u32 locating an array of T elsewhere in the record.
    DataLocArray {
        elem: u8,
    },
    /// `__rel_loc`: like `__data_loc`, offset relative to the field's end.
    RelLocString,
    RelLocArray {
        elem: u8,
    },
    /// `T name[N]` of integers.
    Array {
        elem: u8,
    },
    /// Anything else: shown as raw bytes in hex.
    Bytes,
}

/// How a field is shown when the plan leaves it to the format file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Natural {
    Hex,
    Signed,
    Unsigned,
    String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// The C (or fetch) type as written, e.g. `unsigned long`, `x32`, `__data_loc char[]`.
    pub type_text: String,
    pub offset: usize,
    pub size: usize,
    pub signed: bool,
    pub kind: FieldKind,
    pub natural: Natural,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFormat {
    pub name: String,
    pub id: u16,
    /// The `common_*` fields first, then the event's own, in file order.
    pub fields: Vec<Field>,
    /// The `print fmt:` line: how the kernel's own text output shows the
    /// event (see [`super::printfmt`]).
    pub print_fmt: Option<String>,
}

impl EventFormat {
    /// Parse the text of a `format` file.
    pub fn parse(text: &str) -> Result<EventFormat, TracefsError> {
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        let mut print_fmt = None;
        for line in text.lines() {
            let t = line.trim();
            if let Some(v) = t.strip_prefix("print fmt:") {
                print_fmt = Some(v.trim());
                continue;
            }
            if let Some(v) = t.strip_prefix("name:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = t.strip_prefix("ID:") {
                id = Some(v.trim().parse::<u16>().map_err(|_| TracefsError::Format {
                    what: format!("bad ID line `{t}`"),
                })?);
            } else if t.starts_with("field:") {
                fields.push(parse_field(t)?);
            }
        }
        if let Some(pf) = print_fmt {
            apply_print_fmt(pf, &mut fields);
        }
        Ok(EventFormat {
            name: name.ok_or_else(|| TracefsError::Format {
                what: "no `name:` line".into(),
            })?,
            id: id.ok_or_else(|| TracefsError::Format {
                what: "no `ID:` line".into(),
            })?,
            fields,
            print_fmt: print_fmt.map(str::to_string),
        })
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The event's own fields (not `common_*`).
    pub fn own_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields
            .iter()
            .filter(|f| !f.name.starts_with("common_"))
    }
}

/// `field:unsigned long caller[8]; offset:16; size:64; signed:0;`
fn parse_field(line: &str) -> Result<Field, TracefsError> {
    let bad = || TracefsError::Format {
        what: format!("malformed field line `{line}`"),
    };
    let mut decl = None;
    let mut offset = None;
    let mut size = None;
    let mut signed = false;
    for part in line.split(';') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("field:") {
            decl = Some(v.trim());
        } else if let Some(v) = part.strip_prefix("offset:") {
            offset = v.trim().parse::<usize>().ok();
        } else if let Some(v) = part.strip_prefix("size:") {
            size = v.trim().parse::<usize>().ok();
        } else if let Some(v) = part.strip_prefix("signed:") {
            signed = v.trim() == "1";
        }
    }
    let decl = decl.ok_or_else(bad)?;
    let (offset, size) = (offset.ok_or_else(bad)?, size.ok_or_else(bad)?);
    // The name is the last identifier; an array suffix `[N]` follows it.
    let (head, array) = match decl.rfind('[') {
        Some(i) if decl.ends_with(']') && !decl[..i].ends_with(' ') => {
            (&decl[..i], Some(&decl[i + 1..decl.len() - 1]))
        }
        _ => (decl, None),
    };
    let split = head.rfind([' ', '*']).ok_or_else(bad)?;
    let name = head[split + 1..].trim().to_string();
    if name.is_empty() {
        return Err(bad());
    }
    let type_text = head[..split + 1].trim().to_string();
    let base = type_text
        .trim_start_matches("__data_loc ")
        .trim_start_matches("__rel_loc ")
        .trim_end_matches("[]")
        .trim();
    let is_char = matches!(base, "char" | "unsigned char" | "signed char" | "u8" | "s8");
    let data_loc = type_text.starts_with("__data_loc");
    let rel_loc = type_text.starts_with("__rel_loc");
    let elem = elem_size(base);
    let kind = if data_loc || rel_loc {
        match (is_char && base.contains("char"), data_loc) {
            (true, true) => FieldKind::DataLocString,
            (true, false) => FieldKind::RelLocString,
            (false, true) => FieldKind::DataLocArray { elem },
            (false, false) => FieldKind::RelLocArray { elem },
        }
    } else if let Some(n) = array {
        // A probe's array fetch type (`x8[6]`) is `u8 name[]`, its length
        // only in `size:`.
        let fits = match n {
            "" => elem > 0 && size % elem as usize == 0,
            n => n.parse::<usize>().is_ok_and(|n| n * elem as usize == size),
        };
        if base.contains("char") {
            FieldKind::CharArray
        } else if elem > 0 && fits {
            FieldKind::Array { elem }
        } else {
            FieldKind::Bytes
        }
    } else if matches!(size, 1 | 2 | 4 | 8) {
        FieldKind::Int
    } else {
        FieldKind::Bytes
    };
    let natural = natural(&type_text, signed, kind);
    Ok(Field {
        name,
        type_text,
        offset,
        size,
        signed,
        kind,
        natural,
    })
}

/// Dynamic events (kprobes, uprobes) record `x32` as a plain `u32` field;
/// only their print format says hex: `"(%lx) a=%Ld b=0x%Lx bx=0x%x"`.
/// Take `name=<conversion>` pairs from it where they are that simple.
fn apply_print_fmt(pf: &str, fields: &mut [Field]) {
    let Some(q) = pf.strip_prefix('"') else {
        return;
    };
    let Some(end) = q.find('"') else { return };
    for tok in q[..end].split(' ') {
        let Some((name, conv)) = tok.split_once('=') else {
            continue;
        };
        let natural = if conv.starts_with("0x%") {
            Natural::Hex
        } else if conv.starts_with('%') && (conv.ends_with('d') || conv.ends_with('i')) {
            Natural::Signed
        } else if conv.starts_with('%') && conv.ends_with('u') {
            Natural::Unsigned
        } else {
            continue;
        };
        if let Some(f) = fields
            .iter_mut()
            .find(|f| f.name == name && f.kind == FieldKind::Int)
        {
            f.natural = natural;
        }
    }
}

/// Element size of an array's base type, from the fetch-type or C name
/// (`x8`, `u32`, `__u8`, `__be32`, `unsigned long`).
fn elem_size(base: &str) -> u8 {
    let t = base.trim_start_matches('_');
    let t = t
        .strip_prefix("be")
        .or_else(|| t.strip_prefix("le"))
        .map_or(t, |r| {
            if r.starts_with(|c: char| c.is_ascii_digit()) {
                r
            } else {
                t
            }
        });
    let digits: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
    let fixed = t.starts_with(['u', 's', 'x']) && t.len() == 1 + digits.len();
    let be = t.len() == digits.len() && t != base;
    if (fixed || be) && !digits.is_empty() {
        return match digits.parse::<u16>() {
            Ok(b @ (8 | 16 | 32 | 64)) => (b / 8) as u8,
            _ => 0,
        };
    }
    match base {
        "char" | "unsigned char" | "signed char" | "bool" => 1,
        "short" | "unsigned short" => 2,
        "int" | "unsigned int" | "unsigned" | "pid_t" => 4,
        "long" | "unsigned long" | "long long" | "unsigned long long" => 8,
        _ if base.ends_with('*') => 8,
        _ => 0,
    }
}

/// The display a field's own type implies: fetch types `x32`/`s16`/`u8`
/// say it outright; C types go by pointer-ness and the signed flag.
fn natural(type_text: &str, signed: bool, kind: FieldKind) -> Natural {
    match kind {
        FieldKind::CharArray | FieldKind::DataLocString | FieldKind::RelLocString => {
            return Natural::String
        }
        _ => {}
    }
    let t = type_text.trim();
    if t == "symbol" || t.ends_with('*') || t.starts_with('x') {
        return Natural::Hex;
    }
    if signed {
        Natural::Signed
    } else {
        Natural::Unsigned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK: &str = "name: kernel_stack
ID: 4
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int size;\toffset:8;\tsize:4;\tsigned:1;
\tfield:unsigned long caller[8];\toffset:16;\tsize:64;\tsigned:0;

print fmt: \"\\t=> %ps\\n\"
";

    #[test]
    fn kernel_stack_format() {
        let f = EventFormat::parse(STACK).unwrap();
        assert_eq!(f.id, 4);
        assert_eq!(f.name, "kernel_stack");
        let pid = f.field("common_pid").unwrap();
        assert_eq!((pid.offset, pid.size, pid.signed), (4, 4, true));
        assert_eq!(pid.natural, Natural::Signed);
        let c = f.field("caller").unwrap();
        assert_eq!(c.kind, FieldKind::Array { elem: 8 });
        assert_eq!((c.offset, c.size), (16, 64));
        assert_eq!(f.own_fields().count(), 2);
    }

    #[test]
    fn uprobe_print_fmt_decides_hex() {
        let f = EventFormat::parse(
            "name: x\nID: 2326\nformat:\n\
             \tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n\
             \tfield:s64 a;\toffset:16;\tsize:8;\tsigned:1;\n\
             \tfield:u64 b;\toffset:24;\tsize:8;\tsigned:0;\n\
             \tfield:u32 bx;\toffset:32;\tsize:4;\tsigned:0;\n\
             \tfield:u32 bu;\toffset:36;\tsize:4;\tsigned:0;\n\
             \nprint fmt: \"(%lx) a=%Ld b=0x%Lx bx=0x%x bu=%u\", REC->__probe_ip, REC->a\n",
        )
        .unwrap();
        let n = |x: &str| f.field(x).unwrap().natural;
        assert_eq!(n("a"), Natural::Signed);
        assert_eq!(n("b"), Natural::Hex);
        assert_eq!(n("bx"), Natural::Hex);
        assert_eq!(n("bu"), Natural::Unsigned);
    }

    #[test]
    fn probe_fields() {
        let f =
            parse_field("field:__data_loc char[] comm;\toffset:16;\tsize:4;\tsigned:1;").unwrap();
        assert_eq!(f.kind, FieldKind::DataLocString);
        assert_eq!(f.name, "comm");
        let f = parse_field("field:x32 flags;\toffset:24;\tsize:4;\tsigned:0;").unwrap();
        assert_eq!((f.kind, f.natural), (FieldKind::Int, Natural::Hex));
        let f = parse_field("field:s64 a;\toffset:16;\tsize:8;\tsigned:1;").unwrap();
        assert_eq!(f.natural, Natural::Signed);
        let f =
            parse_field("field:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;").unwrap();
        assert_eq!(
            (f.name.as_str(), f.natural),
            ("__probe_ip", Natural::Unsigned)
        );
        let f = parse_field("field:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;").unwrap();
        assert_eq!(f.kind, FieldKind::CharArray);
        let f = parse_field("field:const char * name;\toffset:8;\tsize:8;\tsigned:0;").unwrap();
        assert_eq!((f.name.as_str(), f.natural), ("name", Natural::Hex));
        // A probe's array fetch types (`x8[6]`, `s32[3]`), as this
        // machine's 6.18 kernel writes their format.
        let f = parse_field("field:u8 a[];\toffset:16;\tsize:6;\tsigned:0;").unwrap();
        assert_eq!(
            (f.name.as_str(), f.kind),
            ("a", FieldKind::Array { elem: 1 })
        );
        let f = parse_field("field:s32 d[];\toffset:26;\tsize:12;\tsigned:1;").unwrap();
        assert_eq!((f.kind, f.signed), (FieldKind::Array { elem: 4 }, true));
        // A tracepoint's kernel types (sock:inet_sock_set_state).
        let f = parse_field("field:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;").unwrap();
        assert_eq!(f.kind, FieldKind::Array { elem: 1 });
        let f = parse_field("field:__be32 a[2];\toffset:32;\tsize:8;\tsigned:0;").unwrap();
        assert_eq!(f.kind, FieldKind::Array { elem: 4 });
        let f = parse_field("field:__data_loc u32[] ids;\toffset:8;\tsize:4;\tsigned:0;").unwrap();
        assert_eq!(f.kind, FieldKind::DataLocArray { elem: 4 });
        assert!(parse_field("field:;offset:1;").is_err());
    }
}
