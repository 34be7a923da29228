//! One DIE → one [`Type`]: the DWARF tags the type model needs, decoded
//! from the DIE a [`TypeId`] points at and, for aggregates, its direct
//! children.

#![allow(non_upper_case_globals)] // gimli's DW_* constants

use std::sync::Arc;

use gimli::constants::*;
use gimli::{Attribute, AttributeValue, DebugInfoOffset, DwTag, UnitHeader};

use super::index::{skip_children, Kind};
use super::{bad, gimli_err, DwarfSource, Result, DIM_SHIFT, OFFSET_BITS, PROTO_FLAG, R};
use crate::types::{
    Composite, CompositeKind, Enumerator, IntType, Member, Param, Qualifier, Type, TypeError,
    TypeId,
};

/// How many declaration → definition or abstract-origin hops we follow.
const MAX_HOPS: usize = 8;
/// Longest typedef/qualifier chain read while describing a type.
const MAX_CHAIN: usize = 64;

/// One unit, ready to read DIEs from.
struct UnitCx<'a> {
    dwarf: gimli::Dwarf<R<'a>>,
    header: UnitHeader<R<'a>>,
    abbrevs: Arc<gimli::Abbreviations>,
    start: u64,
    little_endian: bool,
}

/// A DIE with its attributes.
struct Node<'a> {
    off: u64,
    tag: DwTag,
    attrs: Vec<Attribute<R<'a>>>,
}

impl<'a> Node<'a> {
    fn value(&self, at: DwAt) -> Option<AttributeValue<R<'a>>> {
        self.attrs
            .iter()
            .find(|a| a.name() == at)
            .map(|a| a.value())
    }

    fn attr(&self, at: DwAt) -> Option<&Attribute<R<'a>>> {
        self.attrs.iter().find(|a| a.name() == at)
    }

    fn udata(&self, at: DwAt) -> Option<u64> {
        self.attr(at).and_then(|a| a.udata_value())
    }

    fn flag(&self, at: DwAt) -> bool {
        matches!(self.value(at), Some(AttributeValue::Flag(true)))
    }
}

impl<'a> UnitCx<'a> {
    fn new(src: &'a DwarfSource, off: u64) -> Result<UnitCx<'a>> {
        let start = src.unit_of(off)?;
        let dwarf = src.dwarf();
        let header = dwarf
            .debug_info
            .header_from_offset(DebugInfoOffset(start as usize))
            .map_err(|e| gimli_err(Some(start), e))?;
        let end = start + header.length_including_self() as u64;
        let first = start + header.header_size() as u64;
        if off < first || off >= end {
            return Err(bad(Some(off), "not the offset of a DIE"));
        }
        let abbrevs = src.abbreviations(&dwarf, &header)?;
        Ok(UnitCx {
            dwarf,
            header,
            abbrevs,
            start,
            little_endian: src.is_little_endian(),
        })
    }

    fn err(&self, off: u64) -> impl Fn(gimli::Error) -> TypeError {
        move |e| gimli_err(Some(off), e)
    }

    /// The DIE at `off` and, if `children`, its direct children (deeper
    /// DIEs are skipped).
    fn read(&self, off: u64, children: bool) -> Result<(Node<'a>, Vec<Node<'a>>)> {
        let err = self.err(off);
        let uoff = gimli::UnitOffset((off - self.start) as usize);
        let mut raw = self
            .header
            .entries_raw(&self.abbrevs, Some(uoff))
            .map_err(&err)?;
        let Some(ab) = raw.read_abbreviation().map_err(&err)? else {
            return Err(bad(Some(off), "null entry where a type was expected"));
        };
        let mut attrs = Vec::new();
        raw.read_attributes(ab.attributes(), &mut attrs)
            .map_err(&err)?;
        let node = Node {
            off,
            tag: ab.tag(),
            attrs,
        };
        let mut kids = Vec::new();
        if !(children && ab.has_children()) {
            return Ok((node, kids));
        }
        loop {
            if raw.is_empty() {
                return Err(bad(Some(off), "children run past the end of the unit"));
            }
            let koff = self.start + raw.next_offset().0 as u64;
            let Some(ab) = raw.read_abbreviation().map_err(&err)? else {
                break;
            };
            let mut attrs = Vec::new();
            raw.read_attributes(ab.attributes(), &mut attrs)
                .map_err(&err)?;
            let kid = Node {
                off: koff,
                tag: ab.tag(),
                attrs,
            };
            if ab.has_children() {
                match kid.value(DW_AT_sibling) {
                    Some(AttributeValue::UnitRef(s)) if s.0 as u64 + self.start > koff => {
                        raw = self
                            .header
                            .entries_raw(&self.abbrevs, Some(s))
                            .map_err(&err)?
                    }
                    _ => skip_children(&mut raw).map_err(&err)?,
                }
            }
            kids.push(kid);
        }
        Ok((node, kids))
    }

    fn string(&self, v: AttributeValue<R<'a>>, off: u64) -> Result<String> {
        let s = match v {
            AttributeValue::String(s) => s,
            AttributeValue::DebugStrRef(o) => {
                self.dwarf.debug_str.get_str(o).map_err(self.err(off))?
            }
            AttributeValue::DebugLineStrRef(o) => self
                .dwarf
                .debug_line_str
                .get_str(o)
                .map_err(self.err(off))?,
            AttributeValue::DebugStrOffsetsIndex(i) => {
                let base = self.str_offsets_base()?;
                let o = self
                    .dwarf
                    .debug_str_offsets
                    .get_str_offset(self.header.format(), base, i)
                    .map_err(self.err(off))?;
                self.dwarf.debug_str.get_str(o).map_err(self.err(off))?
            }
            _ => return Err(bad(Some(off), "name in an unsupported form")),
        };
        Ok(String::from_utf8_lossy(s.slice()).into_owned())
    }

    fn str_offsets_base(&self) -> Result<gimli::DebugStrOffsetsBase<usize>> {
        let root = self.start + self.header.header_size() as u64;
        let (node, _) = self.read(root, false)?;
        match node.value(DW_AT_str_offsets_base) {
            Some(AttributeValue::DebugStrOffsetsBase(b)) => Ok(b),
            _ => Ok(gimli::DebugStrOffsetsBase::default_for_encoding_and_file(
                self.header.encoding(),
                gimli::DwarfFileType::Main,
            )),
        }
    }

    fn name(&self, n: &Node<'a>) -> Result<Option<String>> {
        match n.value(DW_AT_name) {
            Some(v) => self.string(v, n.off).map(Some),
            None => Ok(None),
        }
    }

    /// A reference attribute as a `.debug_info` offset.
    fn reference(&self, n: &Node<'a>, at: DwAt) -> Result<Option<u64>> {
        let off = match n.value(at) {
            None => return Ok(None),
            Some(AttributeValue::UnitRef(u)) => self.start + u.0 as u64,
            Some(AttributeValue::DebugInfoRef(o)) => o.0 as u64,
            Some(AttributeValue::DebugTypesRef(_)) => {
                return Err(bad(
                    Some(n.off),
                    "type units (DW_FORM_ref_sig8) are not supported",
                ))
            }
            Some(_) => return Err(bad(Some(n.off), "reference in an unsupported form")),
        };
        if off == 0 || off > OFFSET_BITS {
            return Err(bad(Some(n.off), format!("reference to offset {off:#x}")));
        }
        Ok(Some(off))
    }

    /// DW_AT_type; absent means `void`.
    fn type_of(&self, n: &Node<'a>) -> Result<TypeId> {
        Ok(TypeId(self.reference(n, DW_AT_type)?.unwrap_or(0)))
    }
}

/// Is the DIE at `off` a `kind` called `name` (a definition, for structs
/// and unions)? Used to check what a cached index says.
pub(super) fn check_named(src: &DwarfSource, off: u64, kind: Kind, name: &str) -> Result<bool> {
    if off == 0 {
        return Ok(false);
    }
    let cx = match UnitCx::new(src, off) {
        Ok(cx) => cx,
        Err(_) => return Ok(false),
    };
    let Ok((n, _)) = cx.read(off, false) else {
        return Ok(false);
    };
    let tag_ok = match kind {
        Kind::Struct => matches!(n.tag, DW_TAG_structure_type | DW_TAG_class_type),
        Kind::Union => n.tag == DW_TAG_union_type,
        Kind::Func => n.tag == DW_TAG_subprogram,
        Kind::Enum => n.tag == DW_TAG_enumeration_type,
    };
    if !tag_ok || (kind != Kind::Func && n.flag(DW_AT_declaration)) {
        return Ok(false);
    }
    Ok(cx.name(&n).ok().flatten().as_deref() == Some(name))
}

pub(super) fn describe(src: &DwarfSource, id: TypeId) -> Result<Type> {
    describe_hops(src, id, 0)
}

fn describe_hops(src: &DwarfSource, id: TypeId, hops: usize) -> Result<Type> {
    if id.0 == 0 {
        return Ok(Type::Void);
    }
    if hops > MAX_HOPS {
        return Err(TypeError::Loop(id.0));
    }
    let off = id.0 & OFFSET_BITS;
    let dim = ((id.0 >> DIM_SHIFT) & 0xff) as usize;
    let proto = id.0 & PROTO_FLAG != 0;
    if id.0 & !(OFFSET_BITS | PROTO_FLAG | (0xff << DIM_SHIFT)) != 0 {
        return Err(TypeError::NoSuchType(id.0));
    }
    let cx = UnitCx::new(src, off).map_err(|_| TypeError::NoSuchType(id.0))?;
    let (n, kids) = cx.read(off, true)?;
    if dim != 0 && n.tag != DW_TAG_array_type {
        return Err(TypeError::NoSuchType(id.0));
    }
    if proto {
        if n.tag != DW_TAG_subprogram {
            return Err(TypeError::NoSuchType(id.0));
        }
        // An out-of-line copy points at its abstract instance, which holds
        // the parameter names and types.
        if let Some(origin) = origin_of(&cx, &n)? {
            return describe_hops(src, TypeId(origin | PROTO_FLAG), hops + 1);
        }
        return prototype(&cx, &n, &kids);
    }
    Ok(match n.tag {
        DW_TAG_base_type => base_type(&cx, &n)?,
        DW_TAG_pointer_type
        | DW_TAG_reference_type
        | DW_TAG_rvalue_reference_type
        | DW_TAG_ptr_to_member_type => Type::Pointer {
            target: cx.type_of(&n)?,
            user: false,
        },
        DW_TAG_array_type => array(&cx, &n, &kids, dim)?,
        DW_TAG_structure_type | DW_TAG_class_type | DW_TAG_union_type => {
            let kind = if n.tag == DW_TAG_union_type {
                CompositeKind::Union
            } else {
                CompositeKind::Struct
            };
            if n.flag(DW_AT_declaration) {
                // The body is in another unit, if anywhere.
                let name = cx.name(&n)?.unwrap_or_default();
                if !name.is_empty() {
                    if let Some(def) = src.definition_of(kind, &name)? {
                        if def != off {
                            return describe_hops(src, TypeId(def), hops + 1);
                        }
                    }
                }
                return Ok(Type::Fwd { name, kind });
            }
            composite(src, &cx, &n, &kids, kind)?
        }
        DW_TAG_enumeration_type => {
            if n.flag(DW_AT_declaration) {
                // `enum e;` in a prototype: the enumerators are where
                // another unit defines it.
                if let Some(name) = cx.name(&n)? {
                    if let Some(def) = src.enum_definition(&name)? {
                        if def != off {
                            return describe_hops(src, TypeId(def), hops + 1);
                        }
                    }
                }
            }
            enumeration(src, &cx, &n, &kids)?
        }
        DW_TAG_typedef => Type::Typedef {
            name: cx.name(&n)?.unwrap_or_default(),
            target: cx.type_of(&n)?,
        },
        DW_TAG_const_type | DW_TAG_volatile_type | DW_TAG_restrict_type | DW_TAG_atomic_type => {
            Type::Qualified {
                qualifier: match n.tag {
                    DW_TAG_const_type => Qualifier::Const,
                    DW_TAG_volatile_type => Qualifier::Volatile,
                    DW_TAG_restrict_type => Qualifier::Restrict,
                    _ => Qualifier::Tag("_Atomic".into()),
                },
                target: cx.type_of(&n)?,
            }
        }
        DW_TAG_subroutine_type => prototype(&cx, &n, &kids)?,
        DW_TAG_subprogram => {
            let name = match cx.name(&n)? {
                Some(name) => name,
                None => match origin_of(&cx, &n)? {
                    Some(o) => return describe_hops(src, TypeId(o), hops + 1),
                    None => String::new(),
                },
            };
            Type::Func {
                name,
                proto: TypeId(off | PROTO_FLAG),
            }
        }
        DW_TAG_unspecified_type => Type::Void,
        DW_TAG_variable => Type::Other { what: "variable" },
        DW_TAG_member => Type::Other { what: "member" },
        _ => Type::Other {
            what: "DWARF entry that is not a type",
        },
    })
}

/// The DIE under typedefs and qualifiers, read directly (not described:
/// used while describing a type, where describing again could recurse
/// forever on a malformed file).
fn peel(src: &DwarfSource, mut off: u64) -> Result<(UnitCx<'_>, Node<'_>)> {
    for _ in 0..MAX_CHAIN {
        let cx = UnitCx::new(src, off)?;
        let (n, _) = cx.read(off, false)?;
        match n.tag {
            DW_TAG_typedef | DW_TAG_const_type | DW_TAG_volatile_type | DW_TAG_restrict_type
            | DW_TAG_atomic_type => match cx.reference(&n, DW_AT_type)? {
                Some(t) => off = t,
                None => return Ok((cx, n)),
            },
            _ => return Ok((cx, n)),
        }
    }
    Err(TypeError::Loop(off))
}

/// Byte size of the storage unit of a DWARF 2/3 bitfield's type.
fn storage_size(src: &DwarfSource, off: u64) -> Result<Option<u64>> {
    if off == 0 {
        return Ok(None);
    }
    let (cx, n) = peel(src, off)?;
    Ok(match n.udata(DW_AT_byte_size) {
        Some(s) => Some(s),
        None if n.tag == DW_TAG_pointer_type => Some(cx.header.address_size() as u64),
        None => None,
    })
}

fn origin_of<'a>(cx: &UnitCx<'a>, n: &Node<'a>) -> Result<Option<u64>> {
    match cx.reference(n, DW_AT_abstract_origin)? {
        Some(o) => Ok(Some(o)),
        None => cx.reference(n, DW_AT_specification),
    }
}

fn base_type<'a>(cx: &UnitCx<'a>, n: &Node<'a>) -> Result<Type> {
    let name = cx.name(n)?.unwrap_or_default();
    let size = n
        .udata(DW_AT_byte_size)
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| bad(Some(n.off), "base type without a byte size"))?;
    let enc = match n.value(DW_AT_encoding) {
        Some(AttributeValue::Encoding(e)) => e,
        _ => return Err(bad(Some(n.off), "base type without an encoding")),
    };
    Ok(match enc {
        DW_ATE_float | DW_ATE_complex_float | DW_ATE_decimal_float | DW_ATE_imaginary_float => {
            Type::Float { name, size }
        }
        _ => Type::Int(IntType {
            name,
            size,
            signed: matches!(
                enc,
                DW_ATE_signed | DW_ATE_signed_char | DW_ATE_signed_fixed
            ),
            is_char: matches!(enc, DW_ATE_signed_char | DW_ATE_unsigned_char),
            is_bool: enc == DW_ATE_boolean,
        }),
    })
}

/// Element count of one array dimension; 0 for flexible and
/// variable-length arrays.
fn dimension<'a>(n: &Node<'a>) -> u64 {
    if let Some(c) = n.udata(DW_AT_count) {
        return c;
    }
    let lower = n.udata(DW_AT_lower_bound).unwrap_or(0);
    match n.value(DW_AT_upper_bound) {
        // `[-1]` upper bounds (flexible arrays in some producers) are signed.
        Some(AttributeValue::Sdata(v)) if v < 0 => 0,
        Some(_) => match n.udata(DW_AT_upper_bound) {
            Some(u) if u >= lower => u - lower + 1,
            _ => 0,
        },
        None => 0,
    }
}

fn array<'a>(cx: &UnitCx<'a>, n: &Node<'a>, kids: &[Node<'a>], dim: usize) -> Result<Type> {
    let dims: Vec<&Node<'a>> = kids
        .iter()
        .filter(|k| matches!(k.tag, DW_TAG_subrange_type | DW_TAG_enumeration_type))
        .collect();
    if dims.is_empty() {
        return Ok(Type::Array {
            elem: cx.type_of(n)?,
            len: 0,
        });
    }
    let Some(this) = dims.get(dim) else {
        return Err(TypeError::NoSuchType(n.off | ((dim as u64) << DIM_SHIFT)));
    };
    let elem = if dim + 1 < dims.len() {
        if dim + 1 > 0xff {
            return Err(bad(Some(n.off), "array of more than 255 dimensions"));
        }
        TypeId(n.off | ((dim as u64 + 1) << DIM_SHIFT))
    } else {
        cx.type_of(n)?
    };
    Ok(Type::Array {
        elem,
        len: dimension(this),
    })
}

/// `DW_AT_data_member_location`: a constant, or the expressions producers
/// emit for a constant (`DW_OP_plus_uconst N`, `DW_OP_constu N`).
fn member_location<'a>(cx: &UnitCx<'a>, m: &Node<'a>) -> Result<u64> {
    let Some(attr) = m.attr(DW_AT_data_member_location) else {
        return Ok(0);
    };
    if let Some(v) = attr.udata_value() {
        return Ok(v);
    }
    let AttributeValue::Exprloc(expr) = attr.value() else {
        return Err(bad(Some(m.off), "member location is not a constant"));
    };
    let mut ops = expr.operations(cx.header.encoding());
    let mut at: Option<u64> = None;
    while let Some(op) = ops.next().map_err(|e| gimli_err(Some(m.off), e))? {
        at = Some(match op {
            gimli::Operation::PlusConstant { value } => at.unwrap_or(0).wrapping_add(value),
            gimli::Operation::UnsignedConstant { value } if at.is_none() => value,
            _ => {
                return Err(bad(
                    Some(m.off),
                    "member location expression is not a constant offset",
                ))
            }
        });
    }
    Ok(at.unwrap_or(0))
}

fn composite<'a>(
    src: &DwarfSource,
    cx: &UnitCx<'a>,
    n: &Node<'a>,
    kids: &[Node<'a>],
    kind: CompositeKind,
) -> Result<Type> {
    let mut members = Vec::new();
    for m in kids {
        // C++ base classes behave like anonymous members; static data
        // members (declarations) take no room.
        if !matches!(m.tag, DW_TAG_member | DW_TAG_inheritance) || m.flag(DW_AT_declaration) {
            continue;
        }
        let ty = cx.type_of(m)?;
        let name = if m.tag == DW_TAG_member {
            cx.name(m)?
        } else {
            None
        };
        let bytes = member_location(cx, m)?;
        let bitfield_size = match m.udata(DW_AT_bit_size) {
            Some(w) => Some(u32::try_from(w).map_err(|_| bad(Some(m.off), "huge bitfield"))?),
            None => None,
        };
        let bit_offset = if let Some(b) = m.udata(DW_AT_data_bit_offset) {
            // DWARF 4+: bits from the start of the containing object.
            b
        } else if let (Some(attr), Some(width)) = (m.attr(DW_AT_bit_offset), bitfield_size) {
            // DWARF 2/3 style: counted from the most significant bit of a
            // storage unit of DW_AT_byte_size (or the member type's size)
            // placed at the member location.
            let from_msb = match attr.value() {
                AttributeValue::Sdata(v) => v,
                _ => attr
                    .udata_value()
                    .and_then(|v| i64::try_from(v).ok())
                    .ok_or_else(|| bad(Some(m.off), "bad DW_AT_bit_offset"))?,
            };
            let unit_bytes = match m.udata(DW_AT_byte_size) {
                Some(s) => s,
                None => storage_size(src, ty.0)?
                    .ok_or_else(|| bad(Some(m.off), "bitfield of a type without a size"))?,
            };
            let start = bytes as i64 * 8;
            let bit = if cx.little_endian {
                start + unit_bytes as i64 * 8 - from_msb - width as i64
            } else {
                start + from_msb
            };
            u64::try_from(bit).map_err(|_| bad(Some(m.off), "bitfield before its object"))?
        } else {
            bytes
                .checked_mul(8)
                .ok_or_else(|| bad(Some(m.off), "member offset overflows"))?
        };
        members.push(Member {
            name,
            ty,
            bit_offset,
            bitfield_size,
        });
    }
    Ok(Type::Composite(Composite {
        kind,
        name: cx.name(n)?,
        size: n.udata(DW_AT_byte_size).unwrap_or(0),
        members,
    }))
}

fn enumeration<'a>(
    src: &DwarfSource,
    cx: &UnitCx<'a>,
    n: &Node<'a>,
    kids: &[Node<'a>],
) -> Result<Type> {
    let size = n
        .udata(DW_AT_byte_size)
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(4);
    // The underlying type says it (DWARF 5 / recent GCC); else a negative
    // enumerator does.
    let signed = match cx.reference(n, DW_AT_type)? {
        Some(t) => {
            let (_, base) = peel(src, t)?;
            matches!(
                base.value(DW_AT_encoding),
                Some(AttributeValue::Encoding(DW_ATE_signed | DW_ATE_signed_char))
            )
        }
        None => kids.iter().any(|k| {
            k.tag == DW_TAG_enumerator
                && matches!(k.value(DW_AT_const_value), Some(AttributeValue::Sdata(v)) if v < 0)
        }),
    };
    let mut values = Vec::new();
    for k in kids.iter().filter(|k| k.tag == DW_TAG_enumerator) {
        let value = match k.value(DW_AT_const_value) {
            Some(AttributeValue::Sdata(v)) => v as u64,
            Some(AttributeValue::Udata(v)) => v,
            // Fixed-size forms hold the value's bits; a signed enum's
            // narrower ones are sign-extended, as BTF's are.
            Some(AttributeValue::Data1(v)) if signed => v as i8 as i64 as u64,
            Some(AttributeValue::Data2(v)) if signed => v as i16 as i64 as u64,
            Some(AttributeValue::Data4(v)) if signed => v as i32 as i64 as u64,
            Some(AttributeValue::Data1(v)) => v as u64,
            Some(AttributeValue::Data2(v)) => v as u64,
            Some(AttributeValue::Data4(v)) => v as u64,
            Some(AttributeValue::Data8(v)) => v,
            _ => continue,
        };
        if let Some(name) = cx.name(k)? {
            values.push(Enumerator { name, value });
        }
    }
    Ok(Type::Enum {
        name: cx.name(n)?,
        size,
        signed,
        values,
    })
}

fn prototype<'a>(cx: &UnitCx<'a>, n: &Node<'a>, kids: &[Node<'a>]) -> Result<Type> {
    let mut params = Vec::new();
    let mut variadic = false;
    for k in kids {
        match k.tag {
            DW_TAG_formal_parameter => params.push(Param {
                name: cx.name(k)?,
                ty: cx.type_of(k)?,
            }),
            DW_TAG_unspecified_parameters => variadic = true,
            _ => {}
        }
    }
    Ok(Type::FuncProto {
        ret: cx.type_of(n)?,
        params,
        variadic,
    })
}
