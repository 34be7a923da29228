//! The member walk: `(struct T)->a->b.c[i]` → `+off(+off(%di))` and a
//! fetch type for the leaf.
//!
//! The state is where the current object is: either a value in hand (the
//! register, or a word already fetched) or memory at `+off(BASE)`, BASE
//! being a value. `->` turns memory holding a pointer into a value (one
//! more fetch level) and starts a new object there; `.` and `[i]` only add
//! to the offset.

use crate::arch::Arch;
use crate::fetch::{Fetch, FetchArg, FetchType, IntKind};
use crate::spec::{Cast, Format, Layer, Span, Spanned, Step, TypedExpr};
use crate::types::{
    resolve, size_of, type_name, Composite, CompositeKind, Member, Type, TypeId, TypeSource,
};

use super::plan::Display;
use super::{error, ErrorKind, Result};
use crate::diag::did_you_mean;

/// A compiled leaf: what to fetch, its fetch type, and what it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    pub value: Fetch,
    pub ty: FetchType,
    pub kind: LeafKind,
    /// The letter the fetch type was made with: the user's, or for forms
    /// typed by a prototype (no cast), the C type's signedness.
    pub letter: Option<Format>,
    /// The value's C type, where the walk reached one (names for its
    /// numbers come from it).
    pub ctype: Option<TypeId>,
    /// `(struct, member)` when the value is a member of a named struct.
    pub member: Option<(String, String)>,
}

/// What a typed expression reads: one value, or a whole struct member
/// by member.
#[derive(Clone, Debug, PartialEq)]
pub enum Walked {
    Leaf(Leaf),
    Struct(super::expand::Expansion),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LeafKind {
    /// An integer, enum, bool or pointer of this many bytes.
    Scalar {
        size: u32,
    },
    Bitfield {
        width: u32,
    },
    String,
    /// `len` integers of `elem` bytes, read with the kernel's array fetch
    /// type (`x8[6]`, `u32[4]`); an IPv6 address is `u8[16]`.
    Array {
        elem: u32,
        len: u32,
    },
}

impl Leaf {
    /// `%N` alone: the register as a pointer-sized word.
    pub fn register(reg: Fetch, arch: Arch, f: Option<Format>) -> Leaf {
        Leaf {
            value: reg,
            ty: scalar_type(f, arch.pointer_size()),
            kind: LeafKind::Scalar {
                size: arch.pointer_size(),
            },
            letter: f,
            ctype: None,
            member: None,
        }
    }

    /// A signed bitfield's width (see [`FieldPlan::signed_bits`]).
    ///
    /// [`FieldPlan::signed_bits`]: super::plan::FieldPlan::signed_bits
    pub fn signed_bits(&self) -> Option<u32> {
        match (self.kind, self.display()) {
            (LeafKind::Bitfield { width }, Display::Signed) => Some(width),
            _ => None,
        }
    }

    /// The fetcharg called `name` that reads it.
    pub fn fetcharg(self, name: &str) -> FetchArg {
        FetchArg::new(name, self.value, Some(self.ty))
    }

    /// How the value is shown when its name does not say (README, "Expressions": the
    /// letter, hex by default).
    pub fn display(&self) -> Display {
        match self.kind {
            LeafKind::String => Display::String,
            _ => match self.letter {
                Some(Format::Signed) => Display::Signed,
                Some(Format::Unsigned) => Display::Unsigned,
                Some(Format::Hex) | None => Display::Hex,
            },
        }
    }
}

/// Where the current object lives.
#[derive(Clone, Debug)]
pub(super) enum Loc {
    /// A word in hand (`%di`, `+0x8e0(%di)`); `add` is added to it
    /// before the next dereference (packet headers past `skb->data`).
    /// `user`: the word points into user memory.
    Value { value: Fetch, add: u64, user: bool },
    /// Memory at `off` bytes from the address `base` holds; `user` when
    /// that memory is the traced process's (fetched with `+u`).
    Mem { base: Fetch, off: u64, user: bool },
}

impl Loc {
    /// A word in hand, pointing into kernel memory (or not a pointer).
    pub(super) fn value(value: Fetch) -> Loc {
        Loc::Value {
            value,
            add: 0,
            user: false,
        }
    }
}

/// What the current object is.
#[derive(Clone, Debug)]
pub(super) enum Cur {
    /// A type of the source.
    Ty(TypeId),
    /// A pointer to this composite, made by the cast itself.
    PtrTo(TypeId),
    /// A payload unit of a packet (`sdata[i]`): an integer of this size.
    Unit(u32),
}

pub(super) struct State {
    loc: Loc,
    cur: Cur,
    /// `(bit offset from the object start, width)` for a bitfield member.
    bitfield: Option<(u64, u32)>,
    /// The expression so far, for messages.
    path: String,
    /// Set while the walk is on a packet header (pseudo-members allowed).
    packet_header: Option<(TypeId, Layer)>,
    /// No letter given and no cast written: integers take their C type's
    /// signedness (`s32` for `int`) rather than the hex default of the
    /// README's "Expressions".
    natural: bool,
    /// `(struct, member)` of the last member step, the struct named.
    member: Option<(String, String)>,
}

/// `+OFF(BASE)`, or `+uOFF(BASE)` for user memory: the kernel must use
/// the user-access path there, or the read faults and comes back empty.
pub(super) fn mem(base: &Fetch, off: u64, user: bool) -> Fetch {
    Fetch::deref(base.clone(), off, user)
}

/// Find a composite by name, or fail with the nearest names.
pub(super) fn find_composite(
    src: &dyn TypeSource,
    kind: CompositeKind,
    name: &Spanned<String>,
) -> Result<TypeId> {
    if let Some(id) = src.find_composite(kind, &name.node)? {
        return Ok(id);
    }
    let kname = match kind {
        CompositeKind::Struct => "struct",
        CompositeKind::Union => "union",
    };
    let mut err = error(
        name.span,
        ErrorKind::UnknownComposite {
            kind: kname,
            name: name.node.clone(),
        },
    );
    let names = src.composite_names(kind)?;
    let near = did_you_mean(
        &name.node,
        names.iter().map(String::as_str),
        &format!("{kname} "),
    );
    let other = match kind {
        CompositeKind::Struct => CompositeKind::Union,
        CompositeKind::Union => CompositeKind::Struct,
    };
    if src.find_composite(other, &name.node)?.is_some() {
        err = err.with_help(format!(
            "`{}` is a {other}: write `({other} {})`",
            name.node, name.node
        ));
    } else if let Some(near) = near {
        err = err.with_help(near);
    }
    Err(err)
}

/// The member called `name`, searched through anonymous struct/union
/// members as C does: `(offset in bits from the start of c, member)`.
fn find_member(
    src: &dyn TypeSource,
    c: &Composite,
    name: &str,
    depth: usize,
) -> Result<Option<(u64, Member)>> {
    if depth > 32 {
        return Ok(None);
    }
    for m in &c.members {
        match &m.name {
            Some(n) if n == name => return Ok(Some((m.bit_offset, m.clone()))),
            None => {
                if let (_, Type::Composite(inner)) = resolve(src, m.ty)? {
                    if let Some((off, found)) = find_member(src, &inner, name, depth + 1)? {
                        return Ok(Some((m.bit_offset + off, found)));
                    }
                }
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// [`find_member`] for the rest of the compiler.
pub(super) fn find_member_pub(
    src: &dyn TypeSource,
    c: &Composite,
    name: &str,
) -> Result<Option<(u64, Member)>> {
    find_member(src, c, name, 0)
}

/// Every member name reachable from `c` without a `.` (anonymous members
/// flattened), for suggestions.
fn member_names(src: &dyn TypeSource, c: &Composite, out: &mut Vec<String>, depth: usize) {
    if depth > 32 {
        return;
    }
    for m in &c.members {
        match &m.name {
            Some(n) => out.push(n.clone()),
            None => {
                if let Ok((_, Type::Composite(inner))) = resolve(src, m.ty) {
                    member_names(src, &inner, out, depth + 1);
                }
            }
        }
    }
}

/// The fixed size of the headers between two layers (README, "Packet tracing"): eth 14,
/// and an l4 header reached from below l3 is taken to follow a plain IPv4
/// header (20; IP options are not followed).
fn layer_gap(from: Layer, to: Layer) -> u64 {
    let mut gap = 0;
    if from == Layer::L2 && to >= Layer::L3 {
        gap += 14;
    }
    if from <= Layer::L3 && to == Layer::L4 {
        gap += 20;
    }
    gap
}

/// The packet headers a `$(struct H)` cast may name, with their layer.
pub const PACKET_HEADERS: &[(&str, Layer)] = &[
    ("ethhdr", Layer::L2),
    ("iphdr", Layer::L3),
    ("ipv6hdr", Layer::L3),
    ("icmphdr", Layer::L4),
    ("icmp6hdr", Layer::L4),
    ("tcphdr", Layer::L4),
    ("udphdr", Layer::L4),
];

/// `cdata`/`sdata`/`ldata`/`qdata`: payload after an l4 header.
fn payload_unit(name: &str) -> Option<u32> {
    match name {
        "cdata" => Some(1),
        "sdata" => Some(2),
        "ldata" => Some(4),
        "qdata" => Some(8),
        _ => None,
    }
}

pub(super) fn walk(
    src: &dyn TypeSource,
    arch: Arch,
    reg: Fetch,
    t: &TypedExpr,
    cast: &Spanned<Cast>,
    ip: bool,
) -> Result<Walked> {
    walk_typed_cast(src, arch, Loc::value(reg), t, cast, ip)
}

/// A cast walk from a word already in hand (a syscall argument read out
/// of `struct pt_regs`, which may point into user memory).
pub(super) fn walk_typed_cast(
    src: &dyn TypeSource,
    arch: Arch,
    start: Loc,
    t: &TypedExpr,
    cast: &Spanned<Cast>,
    ip: bool,
) -> Result<Walked> {
    let reg = match &start {
        Loc::Value { value, .. } | Loc::Mem { base: value, .. } => value.clone(),
    };
    let c = &cast.node;
    let target = find_composite(src, c.kind, &c.name)?;
    let st = match c.packet {
        None => State {
            loc: start,
            cur: Cur::PtrTo(target),
            bitfield: None,
            path: format!("{}~({} {})", arg_no(t), c.kind, c.name.node),
            packet_header: None,
            natural: false,
            member: None,
        },
        Some(pk) => {
            let Some(&(_, layer)) = PACKET_HEADERS.iter().find(|(n, _)| *n == c.name.node) else {
                let names: Vec<String> = PACKET_HEADERS
                    .iter()
                    .map(|(n, l)| format!("{n} ({l})"))
                    .collect();
                return Err(error(
                    c.name.span,
                    ErrorKind::Packet(format!(
                        "`struct {}` is not a packet header coolkprobe knows",
                        c.name.node
                    )),
                )
                .with_help(format!("packet headers are {}", names.join(", "))));
            };
            if c.kind != CompositeKind::Struct {
                return Err(error(
                    cast.span,
                    ErrorKind::Packet(format!(
                        "`{}` is a struct: write `$(struct {})`",
                        c.name.node, c.name.node
                    )),
                ));
            }
            let marker = pk.layer.map_or(Layer::L3, |l| l.node);
            if layer < marker {
                let span = pk.layer.map_or(cast.span, |l| l.span);
                return Err(error(
                    span,
                    ErrorKind::Packet(format!(
                        "`struct {}` is an {layer} header, but the marker says skb->data points at {marker}",
                        c.name.node
                    )),
                )
                .with_help(format!(
                    "a header below the marker's layer has already been passed; use `{layer}` if skb->data points at the {} here",
                    c.name.node
                )));
            }
            let skb = src
                .find_composite(CompositeKind::Struct, "sk_buff")?
                .ok_or_else(|| {
                    error(
                        cast.span,
                        ErrorKind::Packet(format!("{} has no `struct sk_buff`", src.describe())),
                    )
                })?;
            let Type::Composite(skb_c) = resolve(src, skb)?.1 else {
                return Err(error(
                    cast.span,
                    ErrorKind::Packet("`struct sk_buff` is not a struct".into()),
                ));
            };
            let Some((data_bits, _)) = find_member(src, &skb_c, "data", 0)? else {
                return Err(error(
                    cast.span,
                    ErrorKind::Packet("`struct sk_buff` has no member `data`".into()),
                ));
            };
            State {
                loc: Loc::Value {
                    value: mem(&reg, data_bits / 8, false),
                    add: layer_gap(marker, layer),
                    user: false,
                },
                cur: Cur::PtrTo(target),
                bitfield: None,
                path: format!("{}~$(struct {}){marker}", arg_no(t), c.name.node),
                packet_header: Some((target, layer)),
                natural: false,
                member: None,
            }
        }
    };

    steps(src, arch, st, t, ip)
}

/// The walk from a value whose C type is known without a cast: a
/// parameter or `%N` typed by the prototype, `$retval` by the return type,
/// a syscall argument read out of `struct pt_regs`. `path` names it in
/// messages.
pub(super) fn walk_typed(
    src: &dyn TypeSource,
    arch: Arch,
    loc: Loc,
    cur: Cur,
    path: String,
    t: &TypedExpr,
    ip: bool,
) -> Result<Walked> {
    let st = State {
        loc,
        cur,
        bitfield: None,
        path,
        packet_header: None,
        natural: t.format.is_none(),
        member: None,
    };
    steps(src, arch, st, t, ip)
}

fn steps(
    src: &dyn TypeSource,
    arch: Arch,
    mut st: State,
    t: &TypedExpr,
    ip: bool,
) -> Result<Walked> {
    let psize = arch.pointer_size();
    let mut steps = t.steps.iter().peekable();
    while let Some(step) = steps.next() {
        match &step.node {
            Step::Arrow(name) => {
                // Packet payload units: `->sdata[i]` past an l4 header.
                if let (Some((hdr, Layer::L4)), Some(unit), Cur::PtrTo(_)) =
                    (st.packet_header, payload_unit(name), &st.cur)
                {
                    let hsize = size_of(src, hdr, psize)?.unwrap_or(0);
                    let (index, span) = match steps.peek() {
                        Some(Spanned {
                            node: Step::Index(i),
                            span,
                        }) => (*i, step.span.to(*span)),
                        _ => {
                            return Err(error(
                                step.span,
                                ErrorKind::Packet(format!("`{name}` needs an index: `{name}[0]`")),
                            ))
                        }
                    };
                    steps.next();
                    let Loc::Value { value, add, .. } = &st.loc else {
                        unreachable_state(step.span)?
                    };
                    let off = index
                        .checked_mul(unit as u64)
                        .and_then(|o| o.checked_add(add + hsize))
                        .ok_or_else(|| {
                            error(span, ErrorKind::Packet("payload index too large".into()))
                        })?;
                    st.loc = Loc::Mem {
                        base: value.clone(),
                        off,
                        user: false,
                    };
                    st.cur = Cur::Unit(unit);
                    st.path.push_str(&format!("->{name}[{index}]"));
                    continue;
                }
                let member_span = Span::new(step.span.start + 2, step.span.end);
                let (base, add, user) = match (&st.cur, &st.loc) {
                    (Cur::PtrTo(_), Loc::Value { value, add, user }) => {
                        (value.clone(), *add, *user)
                    }
                    (Cur::Ty(id), loc) if matches!(resolve(src, *id)?.1, Type::Pointer { .. }) => {
                        if st.bitfield.is_some() {
                            unreachable_state(step.span)?
                        }
                        let tagged =
                            matches!(resolve(src, *id)?.1, Type::Pointer { user: true, .. });
                        match loc {
                            Loc::Value { value, add, user } => {
                                (value.clone(), *add, *user || tagged)
                            }
                            // A pointer read from user memory points into user memory.
                            Loc::Mem { base, off, user } => {
                                (mem(base, *off, *user), 0, *user || tagged)
                            }
                        }
                    }
                    _ => {
                        let ty = cur_name(src, &st.cur);
                        let mut e = error(
                            step.span,
                            ErrorKind::ArrowOnNonPointer {
                                member: name.clone(),
                                path: st.path.clone(),
                                ty,
                            },
                        );
                        if cur_composite(src, &st.cur)?.is_some() {
                            e = e.with_help(format!(
                                "`{}` is a struct or union in place: use `.{name}`",
                                st.path
                            ));
                        }
                        return Err(e);
                    }
                };
                let pointee = match &st.cur {
                    Cur::PtrTo(id) => *id,
                    Cur::Ty(id) => match resolve(src, *id)?.1 {
                        Type::Pointer { target, .. } => target,
                        _ => unreachable_state(step.span)?,
                    },
                    Cur::Unit(_) => unreachable_state(step.span)?,
                };
                let resolved = match resolve(src, pointee)? {
                    // A pointer to a forward declaration: the body, if the
                    // types have one under that name (it often is elsewhere).
                    (_, Type::Fwd { name: fname, kind }) => {
                        match src.find_composite(kind, &fname)? {
                            Some(id) => (id, resolve(src, id)?.1),
                            None => (pointee, Type::Fwd { name: fname, kind }),
                        }
                    }
                    other => other,
                };
                let (pointee, comp) = match resolved {
                    (id, Type::Composite(c)) => (id, c),
                    _ => {
                        return Err(error(
                            step.span,
                            ErrorKind::Unsupported(format!(
                                "`->{name}` needs a pointer to a struct or union, but `{}` is `{}`",
                                st.path,
                                cur_name(src, &st.cur)
                            )),
                        ))
                    }
                };
                let (bits, m) = member_of(src, &comp, pointee, name, member_span)?;
                st.loc = Loc::Mem {
                    base,
                    off: add + bits / 8,
                    user,
                };
                st.set_member(bits, &m);
                st.member = comp.name.clone().map(|c| (c, name.clone()));
                st.path.push_str(&format!("->{name}"));
                if !matches!(st.cur, Cur::Ty(_)) {
                    unreachable_state(step.span)?
                }
            }
            Step::Dot(name) => {
                let member_span = Span::new(step.span.start + 1, step.span.end);
                let is_ptr = match &st.cur {
                    Cur::PtrTo(_) => true,
                    Cur::Ty(id) => matches!(resolve(src, *id)?.1, Type::Pointer { .. }),
                    Cur::Unit(_) => false,
                };
                if is_ptr {
                    return Err(error(
                        step.span,
                        ErrorKind::DotOnPointer {
                            member: name.clone(),
                            path: st.path.clone(),
                            ty: cur_name(src, &st.cur),
                        },
                    )
                    .with_help(format!("use `->{name}`")));
                }
                let (Some((cid, comp)), Loc::Mem { base, off, user }) =
                    (cur_composite(src, &st.cur)?, &st.loc)
                else {
                    return Err(error(
                        step.span,
                        ErrorKind::DotOnNonComposite {
                            member: name.clone(),
                            path: st.path.clone(),
                            ty: cur_name(src, &st.cur),
                        },
                    ));
                };
                let (bits, m) = member_of(src, &comp, cid, name, member_span)?;
                st.loc = Loc::Mem {
                    base: base.clone(),
                    off: off + bits / 8,
                    user: *user,
                };
                st.set_member(bits, &m);
                st.member = comp.name.clone().map(|c| (c, name.clone()));
                st.path.push_str(&format!(".{name}"));
            }
            Step::Index(i) => {
                let arr = match &st.cur {
                    Cur::Ty(id) => match resolve(src, *id)?.1 {
                        Type::Array { elem, len } => Some((elem, len)),
                        _ => None,
                    },
                    _ => None,
                };
                let (Some((elem, len)), Loc::Mem { base, off, user }) = (arr, &st.loc) else {
                    let ty = cur_name(src, &st.cur);
                    let mut e = error(
                        step.span,
                        ErrorKind::IndexOnNonArray {
                            path: st.path.clone(),
                            ty: ty.clone(),
                        },
                    );
                    if ty.ends_with('*') {
                        e = e.with_help("indexing through a pointer is not supported; only array members can be indexed");
                    }
                    return Err(e);
                };
                // A zero-length array is a flexible array member: no bound.
                if len != 0 && *i >= len {
                    return Err(error(
                        step.span,
                        ErrorKind::IndexOutOfBounds {
                            index: *i,
                            path: st.path.clone(),
                            ty: cur_name(src, &st.cur),
                            len,
                        },
                    )
                    .with_help(format!("valid indexes are 0..={}", len - 1)));
                }
                let esize = size_of(src, elem, psize)?.unwrap_or(0);
                let add = i
                    .checked_mul(esize)
                    .and_then(|a| a.checked_add(*off))
                    .ok_or_else(|| {
                        error(
                            step.span,
                            ErrorKind::IndexOutOfBounds {
                                index: *i,
                                path: st.path.clone(),
                                ty: cur_name(src, &st.cur),
                                len,
                            },
                        )
                    })?;
                st.loc = Loc::Mem {
                    base: base.clone(),
                    off: add,
                    user: *user,
                };
                st.cur = Cur::Ty(elem);
                st.member = None;
                st.path.push_str(&format!("[{i}]"));
            }
        }
    }
    if let Some(star) = t.deref {
        st = deref(src, st, star)?;
    }
    leaf(src, arch, st, t, ip)
}

/// `*`: the object the pointer in hand points at.
fn deref(src: &dyn TypeSource, mut st: State, star: Span) -> Result<State> {
    let not_pointer = |st: &State| {
        error(
            star,
            ErrorKind::Unsupported(format!(
                "`*` needs a pointer, but `{}` is `{}`",
                st.path,
                cur_name(src, &st.cur)
            )),
        )
    };
    let (base, add, user, pointee) = match (&st.cur, &st.loc) {
        (Cur::PtrTo(id), Loc::Value { value, add, user }) => (value.clone(), *add, *user, *id),
        (Cur::Ty(id), loc) if st.bitfield.is_none() => match resolve(src, *id)?.1 {
            Type::Pointer {
                target,
                user: tagged,
            } => match loc {
                Loc::Value { value, add, user } => (value.clone(), *add, *user || tagged, target),
                Loc::Mem { base, off, user } => {
                    (mem(base, *off, *user), 0, *user || tagged, target)
                }
            },
            _ => return Err(not_pointer(&st)),
        },
        _ => return Err(not_pointer(&st)),
    };
    // A pointer to a declaration: the body, where the types have it.
    let pointee = match resolve(src, pointee)? {
        (_, Type::Fwd { name, kind }) => src.find_composite(kind, &name)?.unwrap_or(pointee),
        _ => pointee,
    };
    if matches!(resolve(src, pointee)?.1, Type::Void) {
        return Err(error(
            star,
            ErrorKind::Unsupported(format!(
                "`{}` points at `void`: cast it to what it points at (`*%N~(struct T)`)",
                st.path
            )),
        ));
    }
    st.loc = Loc::Mem {
        base,
        off: add,
        user,
    };
    st.cur = Cur::Ty(pointee);
    st.path = format!("*{}", st.path);
    Ok(st)
}

impl State {
    fn set_member(&mut self, bits: u64, m: &Member) {
        self.cur = Cur::Ty(m.ty);
        // The bit position inside the object whose byte offset was just
        // added; leaf() rounds it to the bitfield's storage unit.
        self.bitfield = m.bitfield_size.map(|w| (bits % 8, w));
    }
}

pub(super) fn arg_no(t: &TypedExpr) -> String {
    match &t.base.node {
        crate::spec::Base::Arg(n) => format!("%{n}"),
        crate::spec::Base::Param(p) => p.clone(),
        crate::spec::Base::Retval => "$retval".into(),
    }
}

fn unreachable_state<T>(span: Span) -> Result<T> {
    Err(error(
        span,
        ErrorKind::Unsupported("internal: inconsistent walk state".into()),
    ))
}

fn member_of(
    src: &dyn TypeSource,
    comp: &Composite,
    comp_id: TypeId,
    name: &str,
    span: Span,
) -> Result<(u64, Member)> {
    if let Some(found) = find_member(src, comp, name, 0)? {
        return Ok(found);
    }
    let mut names = Vec::new();
    member_names(src, comp, &mut names, 0);
    let near = did_you_mean(name, names.iter().map(String::as_str), "");
    Err(error(
        span,
        ErrorKind::UnknownMember {
            ty: type_name(src, comp_id),
            member: name.to_string(),
        },
    )
    .with_help_opt(near))
}

fn cur_name(src: &dyn TypeSource, c: &Cur) -> String {
    match c {
        Cur::Ty(id) => type_name(src, *id),
        Cur::PtrTo(id) => format!("{} *", type_name(src, *id)),
        Cur::Unit(n) => format!("u{}", n * 8),
    }
}

fn cur_composite(src: &dyn TypeSource, c: &Cur) -> Result<Option<(TypeId, Composite)>> {
    Ok(match c {
        Cur::Ty(id) => match resolve(src, *id)? {
            (rid, Type::Composite(comp)) => Some((rid, comp)),
            _ => None,
        },
        _ => None,
    })
}

/// Whether an element type reads as text: `char`, `signed char`,
/// `unsigned char` named as such (not through a typedef such as `u8`).
pub(super) fn is_char(src: &dyn TypeSource, id: TypeId) -> Result<bool> {
    let mut cur = id;
    for _ in 0..16 {
        match src.get(cur)? {
            Type::Qualified { target, .. } => cur = target,
            Type::Int(i) => return Ok(i.size == 1 && (i.is_char || i.name.contains("char"))),
            _ => return Ok(false),
        }
    }
    Ok(false)
}

/// `x64`, `s32`, `u8`: the letter's kind (hex by default), `size` bytes.
pub(super) fn scalar_type(f: Option<Format>, size: u32) -> FetchType {
    let kind = match f {
        Some(Format::Signed) => IntKind::Signed,
        Some(Format::Unsigned) => IntKind::Unsigned,
        Some(Format::Hex) | None => IntKind::Hex,
    };
    FetchType::int(kind, size)
}

/// A struct or union in memory, unless single members lead down to one
/// value (`atomic_t`, which is that value) or an `ip_` name wants its 16
/// bytes: read member by member.
fn whole_struct(
    src: &dyn TypeSource,
    arch: Arch,
    st: &State,
    t: &TypedExpr,
    ip: bool,
) -> Result<Option<Walked>> {
    let (Cur::Ty(id), None) = (&st.cur, st.bitfield) else {
        return Ok(None);
    };
    match resolve(src, *id)?.1 {
        Type::Composite(c) if super::expand::one_value(src, &c)?.is_none() => {}
        _ => return Ok(None),
    }
    if ip && size_of(src, *id, arch.pointer_size())? == Some(16) {
        return Ok(None);
    }
    let Loc::Mem { base, off, user } = &st.loc else {
        return Err(error(
            t.span,
            ErrorKind::Unsupported(format!(
                "`{}` is a `{}` in a register: only a struct in memory can be read member by member",
                st.path,
                type_name(src, *id)
            )),
        ));
    };
    let e = super::expand::expand(src, arch, base, *off, *user, *id, t.format.map(|f| f.node))?;
    if e.leaves.is_empty() {
        return Err(error(
            t.span,
            ErrorKind::Unfetchable {
                path: st.path.clone(),
                what: format!("`{}`, which has no member that can be read", e.what),
            },
        ));
    }
    Ok(Some(Walked::Struct(e)))
}

fn leaf(src: &dyn TypeSource, arch: Arch, st: State, t: &TypedExpr, ip: bool) -> Result<Walked> {
    if let Some(w) = whole_struct(src, arch, &st, t, ip)? {
        return Ok(w);
    }
    let letter = |ty: &Type| match (t.format, st.natural, ty) {
        (Some(f), _, _) => Some(f.node),
        (None, true, Type::Int(i)) if i.signed => Some(Format::Signed),
        (None, true, Type::Enum { signed: true, .. }) => Some(Format::Signed),
        (None, true, Type::Int(_) | Type::Enum { .. }) => Some(Format::Unsigned),
        _ => None,
    };
    let mut l = leaf_of(src, arch, &st, t, ip, letter)?;
    if l.letter.is_none() {
        l.letter = t.format.map(|f| f.node);
    }
    l.member = st.member;
    Ok(Walked::Leaf(l))
}

fn leaf_of(
    src: &dyn TypeSource,
    arch: Arch,
    st: &State,
    t: &TypedExpr,
    ip: bool,
    letter: impl Fn(&Type) -> Option<Format>,
) -> Result<Leaf> {
    let f = t.format.map(|f| f.node);
    let explicit = f;
    let psize = arch.pointer_size();
    let at = |loc: &Loc| match loc {
        Loc::Value { value, .. } => value.clone(),
        Loc::Mem { base, off, user } => mem(base, *off, *user),
    };
    // Whether the object at `loc` (for a pointer: what it points at) is
    // user memory, and the string type that reads it.
    let in_user = |loc: &Loc| match loc {
        Loc::Value { user, .. } | Loc::Mem { user, .. } => *user,
    };
    let string = |user: bool| {
        if user {
            FetchType::UString
        } else {
            FetchType::String
        }
    };
    let unfetchable = |what: String, help: Option<String>| {
        let e = error(
            t.span,
            ErrorKind::Unfetchable {
                path: st.path.clone(),
                what,
            },
        );
        Err(match help {
            Some(h) => e.with_help(h),
            None => e,
        })
    };
    let mut id = match st.cur {
        Cur::PtrTo(_) => {
            return Ok(Leaf {
                value: at(&st.loc),
                ty: scalar_type(f, psize),
                kind: LeafKind::Scalar { size: psize },
                letter: f,
                ctype: None,
                member: None,
            })
        }
        Cur::Unit(n) => {
            return Ok(Leaf {
                value: at(&st.loc),
                ty: scalar_type(f, n),
                kind: LeafKind::Scalar { size: n },
                letter: f,
                ctype: None,
                member: None,
            })
        }
        Cur::Ty(id) => id,
    };
    let mut loc = st.loc.clone();
    // An `ip_` name on 16 bytes (struct in6_addr, u8[16]): an IPv6
    // address, fetched as bytes for the renderer to spell.
    if ip && st.bitfield.is_none() {
        let (_, ty) = resolve(src, id)?;
        let sixteen = matches!(ty, Type::Composite(_) | Type::Array { .. })
            && size_of(src, id, psize)? == Some(16);
        if sixteen {
            return Ok(Leaf {
                value: at(&loc),
                ty: FetchType::Array {
                    elem: Box::new(FetchType::int(IntKind::Unsigned, 1)),
                    len: 16,
                },
                kind: LeafKind::Array { elem: 1, len: 16 },
                letter: f,
                ctype: None,
                member: None,
            });
        }
    }
    // Single-member structs (atomic_t, refcount_t = { atomic_t refs }) are
    // their member: descend until something else is reached.
    for _ in 0..16 {
        let (rid, ty) = resolve(src, id)?;
        let f = letter(&ty);
        let size = |n: u32| -> Result<Leaf> {
            if let Some((bit, width)) = st.bitfield {
                let Loc::Mem { base, off, user } = &loc else {
                    return unreachable_state(t.span);
                };
                return Ok(bitfield_leaf(base, off * 8 + bit, width, n, *user, f));
            }
            if !matches!(n, 1 | 2 | 4 | 8) {
                return unfetchable(
                    format!("a {}-byte integer (`{}`)", n, type_name(src, rid)),
                    None,
                );
            }
            Ok(Leaf {
                value: at(&loc),
                ty: scalar_type(f, n),
                kind: LeafKind::Scalar { size: n },
                letter: f,
                ctype: None,
                member: None,
            })
        };
        let value_type = id;
        let found = match ty {
            Type::Int(i) => size(i.size),
            Type::Enum { size: n, .. } => size(n),
            Type::Pointer { target, user } => {
                // A `char`-family pointer without a letter is a string
                // (README, "Bytes and strings"); with one, the pointer.
                if explicit.is_none() && is_char(src, target)? {
                    // The string's own address is not a dereference: plain
                    // `+0(...)`, with `ustring` saying where it lives.
                    // A word in hand marked user points there; a pointer
                    // stored in user memory points into user memory too.
                    let user = user || in_user(&loc);
                    Ok(Leaf {
                        value: mem(&at(&loc), 0, false),
                        ty: string(user),
                        kind: LeafKind::String,
                        letter: f,
                        ctype: None,
                        member: None,
                    })
                } else {
                    size(psize)
                }
            }
            Type::Array { elem, len } => {
                let Loc::Mem { base, off, user } = &loc else {
                    return unreachable_state(t.span);
                };
                if explicit.is_none() && is_char(src, elem)? {
                    return Ok(Leaf {
                        value: mem(base, *off, false),
                        ty: string(*user),
                        kind: LeafKind::String,
                        letter: f,
                        ctype: None,
                        member: None,
                    });
                }
                match array_leaf(src, arch, mem(base, *off, *user), elem, len, &letter)? {
                    Ok(l) => Ok(l),
                    Err(why) => unfetchable(why, Some(format!("index it: `{}[0]`", st.path))),
                }
            }
            Type::Composite(c) => {
                if c.members.len() == 1 && c.members[0].bitfield_size.is_none() {
                    let m = &c.members[0];
                    if let Loc::Mem { off, .. } = &mut loc {
                        *off += m.bit_offset / 8;
                    }
                    id = m.ty;
                    continue;
                }
                let mut names = Vec::new();
                member_names(src, &c, &mut names, 0);
                let shown: Vec<String> = names.iter().take(8).map(|n| format!("`.{n}`")).collect();
                let more = if names.len() > 8 {
                    format!(" (and {} more)", names.len() - 8)
                } else {
                    String::new()
                };
                unfetchable(
                    format!(
                        "`{}`, a {} with {} members",
                        type_name(src, rid),
                        c.kind,
                        c.members.len()
                    ),
                    Some(format!("pick a member: {}{more}", shown.join(", "))),
                )
            }
            Type::Float { name, .. } => unfetchable(
                format!("a floating-point `{name}`, which ftrace cannot fetch"),
                None,
            ),
            Type::Fwd { name, kind } => unfetchable(
                format!("`{kind} {name}`, which is only declared here (no body in the types)"),
                None,
            ),
            Type::Void => unfetchable("`void`".into(), None),
            other => unfetchable(format!("a {}", kind_word(&other)), None),
        };
        return found.map(|l| Leaf {
            ctype: Some(value_type),
            ..l
        });
    }
    Err(error(
        t.span,
        ErrorKind::Unsupported(format!(
            "`{}` nests single-member structs too deeply",
            st.path
        )),
    ))
}

/// A bitfield of `width` bits at bit `abs` of the object `base` points
/// at, its type `n` bytes: read in that storage unit, as ftrace's
/// `b<width>@<bit>/<container>` wants it, grown if the field straddles it.
pub(super) fn bitfield_leaf(
    base: &Fetch,
    abs: u64,
    width: u32,
    n: u32,
    user: bool,
    letter: Option<Format>,
) -> Leaf {
    let mut unit = (n.max(1) as u64).saturating_mul(8);
    let (mut start, mut inbit);
    loop {
        start = abs / unit * unit;
        inbit = abs - start;
        if inbit + width as u64 <= unit || unit >= 64 {
            break;
        }
        unit *= 2;
    }
    Leaf {
        value: mem(base, start / 8, user),
        ty: FetchType::Bitfield {
            width,
            bit: inbit as u32,
            container: unit as u32,
        },
        kind: LeafKind::Bitfield { width },
        letter,
        ctype: None,
        member: None,
    }
}

/// The kernel's limit on an array fetch type's length
/// (kernel/trace/trace_probe.h, `MAX_ARRAY_LEN`).
pub const MAX_ARRAY_LEN: u64 = 64;

/// A whole array of integers (or pointers) at `at`, read with the
/// kernel's array fetch type (`x8[6]`); `Err` says why it cannot be.
/// Arrays of arrays are read flat, in memory order.
pub(super) fn array_leaf(
    src: &dyn TypeSource,
    arch: Arch,
    at: Fetch,
    elem: TypeId,
    len: u64,
    letter: &impl Fn(&Type) -> Option<Format>,
) -> Result<std::result::Result<Leaf, String>> {
    let mut id = elem;
    let mut count = len;
    let described = || format!("an array of {len} `{}`", type_name(src, elem));
    for _ in 0..16 {
        let (_, ty) = resolve(src, id)?;
        let size = match &ty {
            Type::Int(i) => i.size,
            Type::Enum { size, .. } => *size,
            Type::Pointer { .. } => arch.pointer_size(),
            Type::Array {
                elem: inner,
                len: n,
            } => {
                count = count.saturating_mul(*n);
                id = *inner;
                continue;
            }
            _ => return Ok(Err(described())),
        };
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Ok(Err(described()));
        }
        if count == 0 {
            return Ok(Err(format!(
                "{}: a flexible array, of no fixed length",
                described()
            )));
        }
        if count > MAX_ARRAY_LEN {
            return Ok(Err(format!(
                "{}, and the kernel reads at most {MAX_ARRAY_LEN} elements at once",
                described()
            )));
        }
        let l = letter(&ty);
        return Ok(Ok(Leaf {
            value: at,
            ty: FetchType::Array {
                elem: Box::new(scalar_type(l, size)),
                len: count as u32,
            },
            kind: LeafKind::Array {
                elem: size,
                len: count as u32,
            },
            letter: l,
            ctype: None,
            member: None,
        }));
    }
    Ok(Err(described()))
}

fn kind_word(t: &Type) -> &'static str {
    match t {
        Type::Func { .. } => "function",
        Type::FuncProto { .. } => "function prototype",
        Type::Other { what } => what,
        _ => "type that cannot be fetched",
    }
}
