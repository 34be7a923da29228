//! Per-CPU `trace_pipe_raw` pages -> decoded events, driven by the
//! kernel's own `header_page`, `header_event` and event `format` files.
//!
//! `page` walks a sub-buffer's records; `tracefs::format` says where each field of
//! a record is; `reader` runs one thread per CPU; `merge` puts the CPUs'
//! streams back into one time order.

pub mod merge;
pub mod page;
pub mod reader;

use crate::tracefs::format::{EventFormat, Field, FieldKind};

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("format file: {what}")]
    Format { what: String },
    #[error("corrupt ring-buffer page: {what}")]
    Corrupt { what: String },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// A field's value, borrowed from the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Unsigned(u64),
    Signed(i64),
    /// String bytes up to (not including) the NUL.
    Str(&'a [u8]),
    /// A string the kernel could not fetch: a dynamic probe argument it
    /// failed to read (bad or paged-out address) is stored with a data
    /// location of length 0, while a real empty string has length 1 (its
    /// NUL); see store_trace_args() in kernel/trace/trace_probe_tmpl.h.
    /// The kernel's own trace output shows it as `(fault)`.
    Fault,
    /// An array of `elem`-byte integers.
    Array {
        elem: u8,
        signed: bool,
        bytes: &'a [u8],
    },
    Bytes(&'a [u8]),
}

impl Field {
    /// This field's value in `payload`, or None where the record is too
    /// short for it (a corrupt or truncated record).
    #[inline]
    pub fn value<'a>(&self, payload: &'a [u8]) -> Option<Value<'a>> {
        let raw = payload.get(self.offset..self.offset.checked_add(self.size)?)?;
        Some(match self.kind {
            FieldKind::Int => {
                // Each width read as itself: no copy of a run-time length
                // (a memcpy call per field was a tenth of a run's time).
                let (u, bits) = match *raw {
                    [a] => (a as u64, 8),
                    [a, b] => (u16::from_ne_bytes([a, b]) as u64, 16),
                    [a, b, c, d] => (u32::from_ne_bytes([a, b, c, d]) as u64, 32),
                    [a, b, c, d, e, f, g, h] => (u64::from_ne_bytes([a, b, c, d, e, f, g, h]), 64),
                    _ => {
                        let n = raw.len().min(8);
                        let mut v = [0u8; 8];
                        v[..n].copy_from_slice(&raw[..n]);
                        (u64::from_ne_bytes(v), 8 * n as u32)
                    }
                };
                if self.signed && bits > 0 {
                    let shift = 64 - bits;
                    Value::Signed(((u << shift) as i64) >> shift)
                } else {
                    Value::Unsigned(u)
                }
            }
            FieldKind::CharArray => Value::Str(until_nul(raw)),
            FieldKind::DataLocString | FieldKind::RelLocString => {
                match self.located(raw, payload)? {
                    [] => Value::Fault,
                    s => Value::Str(until_nul(s)),
                }
            }
            FieldKind::DataLocArray { elem } | FieldKind::RelLocArray { elem } => Value::Array {
                elem,
                signed: self.signed,
                bytes: self.located(raw, payload)?,
            },
            FieldKind::Array { elem } => Value::Array {
                elem,
                signed: self.signed,
                bytes: raw,
            },
            FieldKind::Bytes => Value::Bytes(raw),
        })
    }

    /// The bytes a `__data_loc`/`__rel_loc` word points at: u32
    /// `len << 16 | offset`, the offset from the record start (data_loc)
    /// or from the end of this field (rel_loc).
    fn located<'a>(&self, raw: &[u8], payload: &'a [u8]) -> Option<&'a [u8]> {
        let w = u32::from_ne_bytes(raw.get(..4)?.try_into().ok()?);
        let len = (w >> 16) as usize;
        let mut off = (w & 0xffff) as usize;
        if matches!(
            self.kind,
            FieldKind::RelLocString | FieldKind::RelLocArray { .. }
        ) {
            off += self.offset + self.size;
        }
        payload.get(off..off.checked_add(len)?)
    }
}

fn until_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// The `common_type` of a record: its event id.
pub fn common_type(payload: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(payload.get(..2)?.try_into().ok()?))
}

/// Event formats by id, for the few events of one run.
#[derive(Default)]
pub struct EventTable {
    by_id: Vec<Option<u32>>,
    pub formats: Vec<EventFormat>,
}

impl EventTable {
    pub fn insert(&mut self, f: EventFormat) -> usize {
        let id = f.id as usize;
        if self.by_id.len() <= id {
            self.by_id.resize(id + 1, None);
        }
        let i = self.formats.len();
        self.by_id[id] = Some(i as u32);
        self.formats.push(f);
        i
    }

    /// Index into `formats` for an event id.
    pub fn index(&self, id: u16) -> Option<usize> {
        self.by_id
            .get(id as usize)
            .copied()
            .flatten()
            .map(|i| i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let f = EventFormat::parse(
            "name: x\nID: 9\nformat:\n\
             \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
             \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
             \tfield:__data_loc char[] s;\toffset:8;\tsize:4;\tsigned:1;\n\
             \tfield:s16 n;\toffset:12;\tsize:2;\tsigned:1;\n\
             \tfield:__rel_loc char[] r;\toffset:14;\tsize:4;\tsigned:1;\n",
        )
        .unwrap();
        let mut p = vec![0u8; 32];
        p[0..2].copy_from_slice(&9u16.to_ne_bytes());
        p[4..8].copy_from_slice(&(-5i32).to_ne_bytes());
        p[8..12].copy_from_slice(&((4u32 << 16) | 20).to_ne_bytes());
        p[12..14].copy_from_slice(&(-2i16).to_ne_bytes());
        // rel_loc: offset 6 from the field's end (18) = 24.
        p[14..18].copy_from_slice(&((3u32 << 16) | 6).to_ne_bytes());
        p[20..24].copy_from_slice(b"abc\0");
        p[24..27].copy_from_slice(b"xyz");
        assert_eq!(common_type(&p), Some(9));
        let v = |n: &str| f.field(n).unwrap().value(&p).unwrap();
        assert_eq!(v("common_pid"), Value::Signed(-5));
        assert_eq!(v("s"), Value::Str(b"abc"));
        assert_eq!(v("n"), Value::Signed(-2));
        assert_eq!(v("r"), Value::Str(b"xyz"));
        // A fault is a location of length 0; an empty string holds its NUL.
        let s = f.field("s").unwrap();
        let mut q = p.clone();
        q[8..12].copy_from_slice(&(20u32).to_ne_bytes());
        assert_eq!(s.value(&q), Some(Value::Fault));
        q[8..12].copy_from_slice(&((1u32 << 16) | 23).to_ne_bytes());
        assert_eq!(s.value(&q), Some(Value::Str(b"")));
        // A location past the record is None, not a panic.
        p[8..12].copy_from_slice(&((40u32 << 16) | 20).to_ne_bytes());
        assert_eq!(f.field("s").unwrap().value(&p), None);
        assert_eq!(f.field("s").unwrap().value(&p[..4]), None);
    }
}
