//! A lazy, zero-copy reader of BTF (the kernel's BPF Type Format).
//!
//! Why by hand: resolving one probe must cost a few milliseconds on a
//! 5.5 MB vmlinux BTF, and the crates that exist parse every type into
//! owned objects on load (tens of milliseconds). Like gimli over DWARF, this
//! reader keeps the file's bytes as they are: opening validates the header
//! and records where each type starts (one pass, four bytes per type);
//! a type is decoded only when asked for, and names are compared in place.
//!
//! Layout (include/uapi/linux/btf.h): a header, a type section of
//! variable-length records (`btf_type` + kind-specific tail), and a string
//! section of NUL-terminated names. Type id 0 is `void`; ids count from 1.
//! Split BTF (kernel modules) continues the ids and string offsets of its
//! base (vmlinux).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::{
    Composite, CompositeKind, Enumerator, IntType, Member, Param, Qualifier, Result, Type,
    TypeError, TypeId,
};

pub const BTF_MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

const INT_SIGNED: u32 = 1;
const INT_CHAR: u32 = 2;
const INT_BOOL: u32 = 4;

/// Size of `struct btf_type`: name_off, info, size/type.
const TYPE_HEAD: usize = 12;

/// The bytes a BTF blob lives in: read into memory, or mapped from a file.
pub enum Backing {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl Backing {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Backing::Owned(v) => v,
            Backing::Mapped(m) => m,
        }
    }
}

/// One BTF blob (vmlinux, or a module's split BTF on top of its base).
pub struct Btf {
    backing: Arc<Backing>,
    /// Where the blob sits inside the backing (an ELF's .BTF section).
    blob: Range<usize>,
    big_endian: bool,
    /// Absolute ranges (into the backing) of the type and string sections.
    types: Range<usize>,
    strings: Range<usize>,
    /// Start of each type record, relative to `types`; index 0 is id `first_id`.
    offsets: Vec<u32>,
    /// First id of this blob (1 for a base, base's next id for split BTF).
    first_id: u32,
    /// String offsets below this belong to the base.
    first_str: u32,
    base: Option<Arc<Btf>>,
}

/// A decoded `btf_type` head, borrowed: no allocation.
#[derive(Clone, Copy, Debug)]
struct RawType {
    name_off: u32,
    kind: u32,
    vlen: usize,
    kind_flag: bool,
    size_or_type: u32,
    /// Absolute offset of the kind-specific tail.
    tail: usize,
}

fn bad(offset: Option<usize>, msg: impl Into<String>) -> TypeError {
    TypeError::BadBtf {
        offset,
        msg: msg.into(),
    }
}

/// Bytes that follow `btf_type` for a kind with `vlen` entries.
fn tail_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        KIND_INT => 4,
        KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
        | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION => 12 * vlen,
        KIND_ENUM => 8 * vlen,
        KIND_FUNC_PROTO => 8 * vlen,
        KIND_VAR => 4,
        KIND_DATASEC => 12 * vlen,
        KIND_DECL_TAG => 4,
        KIND_ENUM64 => 12 * vlen,
        _ => return None,
    })
}

impl Btf {
    /// Parse a base BTF blob (`blob` is the range of the backing it occupies).
    pub fn parse(backing: Arc<Backing>, blob: Range<usize>) -> Result<Btf> {
        Btf::parse_inner(backing, blob, None)
    }

    /// Parse split BTF (a module's) on top of `base`.
    pub fn parse_split(backing: Arc<Backing>, blob: Range<usize>, base: Arc<Btf>) -> Result<Btf> {
        Btf::parse_inner(backing, blob, Some(base))
    }

    /// Parse a whole byte vector as a base blob.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Btf> {
        let len = bytes.len();
        Btf::parse(Arc::new(Backing::Owned(bytes)), 0..len)
    }

    fn parse_inner(
        backing: Arc<Backing>,
        blob: Range<usize>,
        base: Option<Arc<Btf>>,
    ) -> Result<Btf> {
        let all = backing.bytes();
        let data = all
            .get(blob.clone())
            .ok_or_else(|| bad(None, "section lies outside the file"))?;
        if data.len() < 24 {
            return Err(bad(
                Some(0),
                format!("{} bytes is too short for a BTF header", data.len()),
            ));
        }
        let big_endian = match [data[0], data[1]] {
            [0x9f, 0xeb] => false,
            [0xeb, 0x9f] => true,
            m => {
                return Err(bad(
                    Some(0),
                    format!("bad magic {:02x}{:02x} (want eb9f)", m[0], m[1]),
                ))
            }
        };
        if data[2] != 1 {
            return Err(bad(Some(2), format!("unsupported BTF version {}", data[2])));
        }
        let rd = |o: usize| -> u32 {
            let b = [data[o], data[o + 1], data[o + 2], data[o + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let hdr_len = rd(4) as usize;
        if hdr_len < 24 || hdr_len > data.len() {
            return Err(bad(
                Some(4),
                format!("header length {hdr_len} out of range"),
            ));
        }
        let (type_off, type_len, str_off, str_len) = (rd(8), rd(12), rd(16), rd(20));
        let section = |off: u32, len: u32, what: &str| -> Result<Range<usize>> {
            let start = hdr_len
                .checked_add(off as usize)
                .ok_or_else(|| bad(Some(8), format!("{what} section offset overflows")))?;
            let end = start
                .checked_add(len as usize)
                .ok_or_else(|| bad(Some(8), format!("{what} section length overflows")))?;
            if end > data.len() {
                return Err(bad(
                    Some(start),
                    format!(
                        "{what} section ({start:#x}..{end:#x}) runs past the end ({:#x})",
                        data.len()
                    ),
                ));
            }
            Ok(blob.start + start..blob.start + end)
        };
        let types = section(type_off, type_len, "type")?;
        let strings = section(str_off, str_len, "string")?;
        if base.is_none() && str_len > 0 && all[strings.start] != 0 {
            return Err(bad(
                Some(strings.start - blob.start),
                "string section does not start with an empty string",
            ));
        }
        if strings.end > strings.start && all[strings.end - 1] != 0 {
            return Err(bad(
                Some(strings.end - blob.start - 1),
                "string section is not NUL-terminated",
            ));
        }
        let (first_id, first_str) = match &base {
            Some(b) => (b.next_id(), b.first_str + (b.strings.len() as u32)),
            None => (1, 0),
        };

        // One pass to learn where each type record starts.
        let mut offsets = Vec::with_capacity(type_len as usize / 24);
        let mut pos = types.start;
        while pos < types.end {
            if types.end - pos < TYPE_HEAD {
                return Err(bad(Some(pos - blob.start), "truncated type record"));
            }
            let info = read_u32(all, pos + 4, big_endian);
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let tail = tail_len(kind, vlen).ok_or_else(|| {
                bad(
                    Some(pos - blob.start),
                    format!(
                        "unknown type kind {kind} (id {})",
                        first_id as usize + offsets.len()
                    ),
                )
            })?;
            let next = pos + TYPE_HEAD + tail;
            if next > types.end {
                return Err(bad(
                    Some(pos - blob.start),
                    "type record runs past the type section",
                ));
            }
            offsets.push((pos - types.start) as u32);
            pos = next;
        }
        if (first_id as u64) + (offsets.len() as u64) > u32::MAX as u64 {
            return Err(bad(None, "too many types"));
        }
        Ok(Btf {
            backing,
            blob,
            big_endian,
            types,
            strings,
            offsets,
            first_id,
            first_str,
            base,
        })
    }

    fn bytes(&self) -> &[u8] {
        self.backing.bytes()
    }

    /// One past the last id of this blob (the first id of split BTF on top).
    pub fn next_id(&self) -> u32 {
        self.first_id + self.offsets.len() as u32
    }

    /// Number of types, including those of the base.
    pub fn type_count(&self) -> usize {
        self.next_id() as usize - 1
    }

    fn u32_at(&self, abs: usize) -> u32 {
        read_u32(self.bytes(), abs, self.big_endian)
    }

    /// The blob that holds `id` (self or a base).
    fn owner(&self, id: u32) -> Option<&Btf> {
        if id >= self.first_id {
            (id < self.next_id()).then_some(self)
        } else {
            self.base.as_deref().and_then(|b| b.owner(id))
        }
    }

    fn raw(&self, id: u32) -> Result<(&Btf, RawType)> {
        let owner = self.owner(id).ok_or(TypeError::NoSuchType(id as u64))?;
        let start = owner.types.start + owner.offsets[(id - owner.first_id) as usize] as usize;
        let info = owner.u32_at(start + 4);
        Ok((
            owner,
            RawType {
                name_off: owner.u32_at(start),
                kind: (info >> 24) & 0x1f,
                vlen: (info & 0xffff) as usize,
                kind_flag: info >> 31 != 0,
                size_or_type: owner.u32_at(start + 8),
                tail: start + TYPE_HEAD,
            },
        ))
    }

    /// The NUL-terminated name at a string offset, borrowed from the file.
    pub fn name_bytes(&self, off: u32) -> Result<&[u8]> {
        if off < self.first_str {
            return match &self.base {
                Some(b) => b.name_bytes(off),
                None => Err(bad(None, format!("string offset {off} out of range"))),
            };
        }
        let start = self.strings.start + (off - self.first_str) as usize;
        if start >= self.strings.end {
            return Err(bad(None, format!("string offset {off} out of range")));
        }
        let s = &self.bytes()[start..self.strings.end];
        // The section ends in NUL (checked on parse), so this always finds one.
        let len = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        Ok(&s[..len])
    }

    /// Whether the name at `off` is `want`: compares in place, without
    /// first measuring the name (a lookup compares tens of thousands).
    fn name_is(&self, off: u32, want: &[u8]) -> bool {
        if off < self.first_str {
            return self.base.as_ref().is_some_and(|b| b.name_is(off, want));
        }
        let start = self.strings.start + (off - self.first_str) as usize;
        let end = start + want.len();
        // `end < strings.end`: the NUL after the name is inside the section.
        end < self.strings.end && {
            let b = self.bytes();
            // The NUL first: it rules out most names without a memcmp.
            b[end] == 0 && &b[start..end] == want
        }
    }

    fn name(&self, off: u32) -> Result<String> {
        let b = self.name_bytes(off)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| bad(None, format!("string at offset {off} is not UTF-8")))
    }

    fn opt_name(&self, off: u32) -> Result<Option<String>> {
        Ok(if off == 0 {
            None
        } else {
            Some(self.name(off)?)
        })
    }

    /// Check that a referenced id exists, so callers never hold dangling ids.
    fn check_id(&self, id: u32) -> Result<TypeId> {
        if id == 0 || self.owner(id).is_some() {
            Ok(TypeId(id as u64))
        } else {
            Err(bad(
                None,
                format!("reference to type id {id}, which does not exist"),
            ))
        }
    }

    /// Describe type `id` in the model's terms.
    pub fn get(&self, id: u32) -> Result<Type> {
        if id == 0 {
            return Ok(Type::Void);
        }
        let (b, t) = self.raw(id)?;
        let this = self; // ids inside a split blob may point into the base: resolve through self
        Ok(match t.kind {
            KIND_INT => {
                let enc = b.u32_at(t.tail);
                let flags = (enc >> 24) & 0xf;
                Type::Int(IntType {
                    name: b.name(t.name_off)?,
                    size: t.size_or_type,
                    signed: flags & INT_SIGNED != 0,
                    is_char: flags & INT_CHAR != 0,
                    is_bool: flags & INT_BOOL != 0,
                })
            }
            KIND_PTR => {
                // `__user` is a TYPE_TAG between the pointer and its pointee.
                let target = this.check_id(t.size_or_type)?;
                let user = this.is_user_tagged(t.size_or_type);
                Type::Pointer { target, user }
            }
            KIND_ARRAY => Type::Array {
                elem: this.check_id(b.u32_at(t.tail))?,
                len: b.u32_at(t.tail + 8) as u64,
            },
            KIND_STRUCT | KIND_UNION => {
                let mut members = Vec::with_capacity(t.vlen);
                for i in 0..t.vlen {
                    let m = t.tail + 12 * i;
                    let off = b.u32_at(m + 8);
                    let (bit_offset, bitfield_size) = if t.kind_flag {
                        let size = off >> 24;
                        ((off & 0xff_ffff) as u64, (size != 0).then_some(size))
                    } else {
                        (off as u64, None)
                    };
                    members.push(Member {
                        name: b.opt_name(b.u32_at(m))?,
                        ty: this.check_id(b.u32_at(m + 4))?,
                        bit_offset,
                        bitfield_size,
                    });
                }
                Type::Composite(Composite {
                    kind: if t.kind == KIND_STRUCT {
                        CompositeKind::Struct
                    } else {
                        CompositeKind::Union
                    },
                    name: b.opt_name(t.name_off)?,
                    size: t.size_or_type as u64,
                    members,
                })
            }
            KIND_ENUM | KIND_ENUM64 => {
                // `struct btf_enum { name_off; s32 val }`, or
                // `struct btf_enum64 { name_off; lo32; hi32 }`; kind_flag:
                // the values are signed.
                let mut values = Vec::with_capacity(t.vlen);
                for i in 0..t.vlen {
                    let (e, value) = if t.kind == KIND_ENUM {
                        let e = t.tail + 8 * i;
                        let v = b.u32_at(e + 4);
                        let v = if t.kind_flag {
                            v as i32 as i64 as u64
                        } else {
                            v as u64
                        };
                        (e, v)
                    } else {
                        let e = t.tail + 12 * i;
                        (e, (b.u32_at(e + 8) as u64) << 32 | b.u32_at(e + 4) as u64)
                    };
                    values.push(Enumerator {
                        name: b.name(b.u32_at(e))?,
                        value,
                    });
                }
                Type::Enum {
                    name: b.opt_name(t.name_off)?,
                    size: t.size_or_type,
                    signed: t.kind_flag,
                    values,
                }
            }
            KIND_FWD => Type::Fwd {
                name: b.name(t.name_off)?,
                kind: if t.kind_flag {
                    CompositeKind::Union
                } else {
                    CompositeKind::Struct
                },
            },
            KIND_TYPEDEF => Type::Typedef {
                name: b.name(t.name_off)?,
                target: this.check_id(t.size_or_type)?,
            },
            KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => Type::Qualified {
                qualifier: match t.kind {
                    KIND_VOLATILE => Qualifier::Volatile,
                    KIND_CONST => Qualifier::Const,
                    KIND_RESTRICT => Qualifier::Restrict,
                    _ => Qualifier::Tag(b.name(t.name_off)?),
                },
                target: this.check_id(t.size_or_type)?,
            },
            KIND_FUNC => Type::Func {
                name: b.name(t.name_off)?,
                proto: this.check_id(t.size_or_type)?,
            },
            KIND_FUNC_PROTO => {
                let mut params = Vec::with_capacity(t.vlen);
                let mut variadic = false;
                for i in 0..t.vlen {
                    let p = t.tail + 8 * i;
                    let (name_off, ty) = (b.u32_at(p), b.u32_at(p + 4));
                    if ty == 0 && name_off == 0 && i + 1 == t.vlen {
                        variadic = true;
                        continue;
                    }
                    params.push(Param {
                        name: b.opt_name(name_off)?,
                        ty: this.check_id(ty)?,
                    });
                }
                Type::FuncProto {
                    ret: this.check_id(t.size_or_type)?,
                    params,
                    variadic,
                }
            }
            KIND_FLOAT => Type::Float {
                name: b.name(t.name_off)?,
                size: t.size_or_type,
            },
            KIND_VAR => Type::Other { what: "variable" },
            KIND_DATASEC => Type::Other {
                what: "data section",
            },
            KIND_DECL_TAG => Type::Other {
                what: "declaration tag",
            },
            other => return Err(bad(None, format!("unknown type kind {other}"))),
        })
    }

    /// Does a chain of type tags / qualifiers at `id` carry the `user` tag?
    fn is_user_tagged(&self, mut id: u32) -> bool {
        for _ in 0..16 {
            let Ok((b, t)) = self.raw(id) else {
                return false;
            };
            match t.kind {
                KIND_TYPE_TAG => {
                    if b.name_bytes(t.name_off).is_ok_and(|n| n == b"user") {
                        return true;
                    }
                }
                KIND_CONST | KIND_VOLATILE | KIND_RESTRICT => {}
                _ => return false,
            }
            id = t.size_or_type;
        }
        false
    }

    /// Ids of this blob only (not the base), with their raw heads.
    fn own_types(&self) -> impl Iterator<Item = (u32, RawType)> + '_ {
        (self.first_id..self.next_id())
            .filter_map(move |id| self.raw(id).ok().map(|(_, t)| (id, t)))
    }

    /// Find named types in this blob (not the base), each of one kind,
    /// in one pass, comparing names in place. Among struct/union
    /// candidates the first with members wins over an empty (opaque) one.
    fn find_own(&self, wanted: &[(u32, &[u8])]) -> Vec<Option<u32>> {
        let mut found: Vec<Option<u32>> = vec![None; wanted.len()];
        // Found with members (done), as opposed to an opaque fallback.
        let mut done = vec![false; wanted.len()];
        let mut left = wanted.len();
        // The kinds asked for as bits, and the first bytes of the names:
        // most records are ruled out by these two before any comparison
        // (a fleet's lookups pass over some 100k records per kernel).
        let kinds = wanted.iter().fold(0u32, |m, &(k, _)| m | 1 << (k & 0x1f));
        let mut firsts = [false; 256];
        for (_, n) in wanted {
            firsts[usize::from(n.first().copied().unwrap_or(0))] = true;
        }
        let bytes = self.bytes();
        // A tight pass over the record heads (offsets were validated on
        // parse): kind first, the name only for the kinds asked for.
        for (i, &off) in self.offsets.iter().enumerate() {
            if left == 0 {
                break;
            }
            let start = self.types.start + off as usize;
            let kind = (read_u32(bytes, start + 4, self.big_endian) >> 24) & 0x1f;
            if kinds & (1 << kind) == 0 {
                continue;
            }
            let name_off = read_u32(bytes, start, self.big_endian);
            if name_off == 0 {
                continue;
            }
            let Some(name) = self.name_tail(name_off) else {
                continue;
            };
            if !firsts[usize::from(name.first().copied().unwrap_or(0))] {
                continue;
            }
            for (w, &(k, want)) in wanted.iter().enumerate() {
                // The NUL after `want` first: it rules out most names
                // without a memcmp. The section ends in NUL (checked on
                // parse), so a match is never cut off.
                if done[w]
                    || k != kind
                    || name.get(want.len()) != Some(&0)
                    || &name[..want.len()] != want
                {
                    continue;
                }
                let id = self.first_id + i as u32;
                let Ok((_, t)) = self.raw(id) else { continue };
                if (t.kind == KIND_STRUCT || t.kind == KIND_UNION)
                    && t.vlen == 0
                    && t.size_or_type == 0
                {
                    found[w].get_or_insert(id);
                    continue;
                }
                found[w] = Some(id);
                done[w] = true;
                left -= 1;
            }
        }
        found
    }

    /// The string section from a name's first byte to its end (the name
    /// and what follows it), borrowed from the file.
    fn name_tail(&self, off: u32) -> Option<&[u8]> {
        if off < self.first_str {
            return self.base.as_ref()?.name_tail(off);
        }
        let start = self.strings.start + (off - self.first_str) as usize;
        self.bytes().get(start..self.strings.end)
    }

    fn kind_of(kind: CompositeKind) -> u32 {
        match kind {
            CompositeKind::Struct => KIND_STRUCT,
            CompositeKind::Union => KIND_UNION,
        }
    }

    pub fn find_composite(&self, kind: CompositeKind, name: &str) -> Option<u32> {
        self.find_own(&[(Btf::kind_of(kind), name.as_bytes())])[0]
    }

    pub fn find_func(&self, name: &str) -> Option<u32> {
        self.find_own(&[(KIND_FUNC, name.as_bytes())])[0]
    }

    /// [`Self::find_func`] and [`Self::find_composite`] of several names
    /// at once, in one pass over the types: functions, then composites.
    pub fn find_all(
        &self,
        funcs: &[&str],
        composites: &[(CompositeKind, &str)],
    ) -> Vec<Option<u32>> {
        let wanted: Vec<(u32, &[u8])> = funcs
            .iter()
            .map(|f| (KIND_FUNC, f.as_bytes()))
            .chain(
                composites
                    .iter()
                    .map(|(k, n)| (Btf::kind_of(*k), n.as_bytes())),
            )
            .collect();
        self.find_own(&wanted)
    }

    /// The first enum of this blob with an enumerator called `name` (an
    /// anonymous enum such as the TCP states is found by its names).
    pub fn find_enumerator(&self, name: &str) -> Option<u32> {
        let want = name.as_bytes();
        self.own_types()
            .find(|(_, t)| {
                let width = match t.kind {
                    KIND_ENUM => 8,
                    KIND_ENUM64 => 12,
                    _ => return false,
                };
                (0..t.vlen).any(|i| self.name_is(self.u32_at(t.tail + width * i), want))
            })
            .map(|(id, _)| id)
    }

    /// Names of the structs (or unions) of this blob that have a body.
    pub fn composite_names(&self, kind: CompositeKind) -> Vec<String> {
        let k = match kind {
            CompositeKind::Struct => KIND_STRUCT,
            CompositeKind::Union => KIND_UNION,
        };
        self.own_types()
            .filter(|(_, t)| t.kind == k && t.name_off != 0)
            .filter_map(|(_, t)| self.name(t.name_off).ok())
            .collect()
    }

    /// Names of the functions (FUNC entries) of this blob.
    pub fn func_names(&self) -> Vec<String> {
        self.own_types()
            .filter(|(_, t)| t.kind == KIND_FUNC && t.name_off != 0)
            .filter_map(|(_, t)| self.name(t.name_off).ok())
            .collect()
    }

    /// Number of bytes this blob occupies (for messages).
    pub fn blob_len(&self) -> usize {
        self.blob.len()
    }
}

fn read_u32(b: &[u8], at: usize, big_endian: bool) -> u32 {
    // Callers only pass offsets validated against the section bounds.
    let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// Map a file read-only, or read it when it cannot be mapped.
///
/// The mapping is private (copy-on-write, never written): since 6.16,
/// /sys/kernel/btf/vmlinux can be mapped, but only that way (a shared
/// mapping is refused with EACCES). Reading it instead costs ~7 ms, since
/// sysfs hands it out a page per read call.
pub fn map_or_read(path: &Path) -> Result<Backing> {
    let io = |e| TypeError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > 0 {
        // SAFETY: the file is opened read-only and never written by us;
        // kernel BTF and vmlinux images do not change under a run.
        if let Ok(m) = unsafe { memmap2::MmapOptions::new().map_copy_read_only(&file) } {
            if m.len() as u64 == len {
                return Ok(Backing::Mapped(m));
            }
        }
    }
    // Not mappable, or no size (a device, a pipe, /proc): read, up to a
    // limit well above a kernel's BTF (~6 MB; files with a size, such as
    // an ELF vmlinux, are mapped), so that `-v /dev/zero` is an error,
    // not a process growing until it is killed.
    use std::io::Read;
    let mut bytes = Vec::new();
    file.take(READ_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > READ_LIMIT {
        return Err(io(std::io::Error::other(format!(
            "more than {} MiB without a file size (a device or a pipe?)",
            READ_LIMIT >> 20
        ))));
    }
    Ok(Backing::Owned(bytes))
}

/// Most bytes read from a type file that cannot be mapped.
const READ_LIMIT: u64 = 64 << 20;

/// Is this the start of a BTF blob (either byte order)?
pub fn has_btf_magic(bytes: &[u8]) -> bool {
    matches!(bytes.get(..2), Some([0x9f, 0xeb]) | Some([0xeb, 0x9f]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF blob built by hand: int, struct with a bitfield, pointer.
    fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        v.push(1);
        v.push(0);
        v.extend_from_slice(&24u32.to_le_bytes());
        let tlen = (types.len() * 4) as u32;
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&tlen.to_le_bytes());
        v.extend_from_slice(&tlen.to_le_bytes());
        v.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        for t in types {
            v.extend_from_slice(&t.to_le_bytes());
        }
        v.extend_from_slice(strings);
        v
    }

    const STRS: &[u8] = b"\0int\0foo\0a\0b\0";

    fn sample() -> Vec<u8> {
        let info = |kind: u32, vlen: u32, kf: bool| (kind << 24) | vlen | ((kf as u32) << 31);
        blob(
            &[
                // [1] int, 4 bytes, signed, 32 bits
                1,
                info(KIND_INT, 0, false),
                4,
                (INT_SIGNED << 24) | 32,
                // [2] struct foo { int a; int b:3 @ bit 35 } size 8, kind_flag
                5,
                info(KIND_STRUCT, 2, true),
                8,
                9,
                1,
                0,
                11,
                1,
                (3 << 24) | 35,
                // [3] pointer to struct foo
                0,
                info(KIND_PTR, 0, false),
                2,
            ],
            STRS,
        )
    }

    #[test]
    fn reads_types() {
        let btf = Btf::from_bytes(sample()).unwrap();
        assert_eq!(btf.type_count(), 3);
        let Type::Int(i) = btf.get(1).unwrap() else {
            panic!()
        };
        assert_eq!((i.name.as_str(), i.size, i.signed), ("int", 4, true));
        let Type::Composite(c) = btf.get(2).unwrap() else {
            panic!()
        };
        assert_eq!(c.name.as_deref(), Some("foo"));
        assert_eq!(c.members[1].bit_offset, 35);
        assert_eq!(c.members[1].bitfield_size, Some(3));
        assert_eq!(
            btf.get(3).unwrap(),
            Type::Pointer {
                target: TypeId(2),
                user: false
            }
        );
        assert_eq!(btf.find_composite(CompositeKind::Struct, "foo"), Some(2));
        assert_eq!(btf.find_composite(CompositeKind::Union, "foo"), None);
        assert!(matches!(btf.get(4), Err(TypeError::NoSuchType(4))));
    }

    #[test]
    fn rejects_malformed() {
        let good = sample();
        // Every truncation is an error, never a panic.
        for n in 0..good.len() {
            let _ = Btf::from_bytes(good[..n].to_vec());
        }
        let mut bad_magic = good.clone();
        bad_magic[0] = 0;
        assert!(Btf::from_bytes(bad_magic).is_err());
        // A member pointing at a type that does not exist.
        let mut dangling = good.clone();
        let at = 24 + 4 * 8; // first member's type field
        dangling[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
        let btf = Btf::from_bytes(dangling).unwrap();
        assert!(btf.get(2).is_err());
        // A name offset past the string section.
        let mut bad_name = good;
        bad_name[24..28].copy_from_slice(&1000u32.to_le_bytes());
        let btf = Btf::from_bytes(bad_name).unwrap();
        assert!(btf.get(1).is_err());
    }
}
