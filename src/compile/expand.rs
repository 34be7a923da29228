//! Whole structs (README, "Whole structs"): an expression that ends on a
//! struct or union is read member by member, one fetcharg per scalar
//! leaf, through nested structs, unions (every member, as a debugger shows
//! them) and arrays of structs. Each leaf is what the single-member rules
//! would make of it: integers, enums, bools and bitfields as themselves,
//! pointers as addresses (shown, never followed), `char` arrays as
//! strings, integer arrays with the kernel's array fetch type. What cannot
//! be read is said, never guessed.

use crate::arch::Arch;
use crate::fetch::{Fetch, FetchType};
use crate::spec::Format;
use crate::types::{resolve, size_of, type_name, Composite, Type, TypeId, TypeSource};

use super::plan::PathPart;
use super::walk::{self, Leaf, LeafKind};
use super::Result;

/// More leaves than any probe can take (the kernel's 128 values): the
/// walk of a huge struct stops here.
const MAX_LEAVES: usize = 1024;
/// Nesting followed through members and array elements.
const MAX_DEPTH: usize = 24;

/// A struct read member by member.
#[derive(Clone, Debug, PartialEq)]
pub struct Expansion {
    /// `struct sock_common`.
    pub what: String,
    /// Each leaf with its member path from the struct (`skc_bind_node`,
    /// `next`), in memory order as C declares them.
    pub leaves: Vec<(Vec<PathPart>, Leaf)>,
    /// Members that cannot be read, and why.
    pub unread: Vec<(String, String)>,
    /// The walk stopped at `MAX_LEAVES` (1024) leaves.
    pub more: bool,
}

/// Read the `id` at `off` bytes from the address `base` holds (`user`:
/// in the traced process's memory) member by member. `explicit`: the
/// user's letter, for every integer; without one, each takes its C
/// type's sign, as a C initializer shows it.
pub(super) fn expand(
    src: &dyn TypeSource,
    arch: Arch,
    base: &Fetch,
    off: u64,
    user: bool,
    id: TypeId,
    explicit: Option<Format>,
) -> Result<Expansion> {
    let mut w = Walker {
        src,
        arch,
        base,
        user,
        explicit,
        path: Vec::new(),
        out: Expansion {
            what: type_name(src, id),
            leaves: Vec::new(),
            unread: Vec::new(),
            more: false,
        },
    };
    let (_, t) = resolve(src, id)?;
    if let Type::Composite(c) = t {
        w.composite(off * 8, &c, c.name.as_deref(), 0)?;
    }
    Ok(w.out)
}

/// The user's letter, for every integer; without one, each takes its C
/// type's sign, as a C initializer shows it.
fn c_letter(explicit: Option<Format>, t: &Type) -> Option<Format> {
    match (explicit, t) {
        (Some(f), _) => Some(f),
        (None, Type::Int(i)) if i.signed => Some(Format::Signed),
        (None, Type::Enum { signed: true, .. }) => Some(Format::Signed),
        (None, Type::Int(_) | Type::Enum { .. }) => Some(Format::Unsigned),
        _ => None,
    }
}

struct Walker<'a> {
    src: &'a dyn TypeSource,
    arch: Arch,
    base: &'a Fetch,
    user: bool,
    explicit: Option<Format>,
    path: Vec<PathPart>,
    out: Expansion,
}

impl Walker<'_> {
    fn letter(&self, t: &Type) -> Option<Format> {
        c_letter(self.explicit, t)
    }

    fn unread(&mut self, why: String) {
        let at = path_text(&self.path);
        self.out.unread.push((at, why));
    }

    fn push(&mut self, leaf: Leaf) {
        self.out.leaves.push((self.path.clone(), leaf));
    }

    /// The members of `c` at bit `bits`; anonymous members are `c`'s own,
    /// as in C. `owner`: the named struct the members are of (names).
    fn composite(
        &mut self,
        bits: u64,
        c: &Composite,
        owner: Option<&str>,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            self.unread("nested too deeply".into());
            return Ok(());
        }
        for m in &c.members {
            let at = bits + m.bit_offset;
            match &m.name {
                None => {
                    if let (_, Type::Composite(inner)) = resolve(self.src, m.ty)? {
                        self.composite(at, &inner, owner, depth + 1)?;
                    }
                }
                Some(n) => {
                    self.path.push(PathPart::Member(n.clone()));
                    self.member(at, m.ty, m.bitfield_size, owner, n, depth + 1)?;
                    self.path.pop();
                }
            }
        }
        Ok(())
    }

    /// One member (or array element) of type `ty` at bit `bits`.
    fn member(
        &mut self,
        bits: u64,
        ty: TypeId,
        bitfield: Option<u32>,
        owner: Option<&str>,
        name: &str,
        depth: usize,
    ) -> Result<()> {
        if self.out.leaves.len() >= MAX_LEAVES {
            self.out.more = true;
            return Ok(());
        }
        let (_, t) = resolve(self.src, ty)?;
        let letter = self.letter(&t);
        let named = |mut l: Leaf| {
            l.ctype = Some(ty);
            l.member = owner.map(|o| (o.to_string(), name.to_string()));
            l
        };
        let off = bits / 8;
        let at = walk::mem(self.base, off, self.user);
        let psize = self.arch.pointer_size();
        let scalar = |size: u32, letter: Option<Format>| Leaf {
            value: at.clone(),
            ty: walk::scalar_type(letter, size),
            kind: LeafKind::Scalar { size },
            letter,
            ctype: None,
            member: None,
        };
        match t {
            Type::Int(_) | Type::Enum { .. } => {
                let size = match t {
                    Type::Int(ref i) => i.size,
                    Type::Enum { size, .. } => size,
                    _ => 0,
                };
                if let Some(width) = bitfield {
                    let l = walk::bitfield_leaf(self.base, bits, width, size, self.user, letter);
                    self.push(named(l));
                } else if matches!(size, 1 | 2 | 4 | 8) {
                    self.push(named(scalar(size, letter)));
                } else {
                    self.unread(format!("a {size}-byte integer"));
                }
            }
            // Shown, not followed: an address, whatever it points at.
            Type::Pointer { .. } => self.push(named(scalar(psize, self.explicit))),
            Type::Array { elem, len } => {
                if len == 0 {
                    // A flexible array: nothing of it is inside the struct.
                    return Ok(());
                }
                if self.explicit.is_none() && walk::is_char(self.src, elem)? {
                    let l = Leaf {
                        value: walk::mem(self.base, off, false),
                        ty: if self.user {
                            FetchType::UString
                        } else {
                            FetchType::String
                        },
                        kind: LeafKind::String,
                        letter: None,
                        ctype: None,
                        member: None,
                    };
                    self.push(named(l));
                    return Ok(());
                }
                if let (_, Type::Composite(_)) = resolve(self.src, elem)? {
                    let esize = size_of(self.src, elem, psize)?.unwrap_or(0);
                    for i in 0..len {
                        if self.out.leaves.len() >= MAX_LEAVES {
                            self.out.more = true;
                            break;
                        }
                        self.path.push(PathPart::Index(i as u32));
                        self.member(bits + i * esize * 8, elem, None, owner, name, depth + 1)?;
                        self.path.pop();
                    }
                    return Ok(());
                }
                let explicit = self.explicit;
                let elem_letter = |t: &Type| c_letter(explicit, t);
                match walk::array_leaf(self.src, self.arch, at, elem, len, &elem_letter)? {
                    Ok(l) => self.push(named(l)),
                    Err(why) => self.unread(why),
                }
            }
            Type::Composite(c) => {
                // A struct around one value (atomic_t, refcount_t) is that
                // value, as a single value is.
                if let Some((inner, ty)) = one_value(self.src, &c)? {
                    return self.member(bits + inner, ty, None, owner, name, depth + 1);
                }
                let owner = c.name.as_deref().or(owner);
                self.composite(bits, &c, owner, depth + 1)?;
            }
            Type::Float { name, .. } => self.unread(format!(
                "a floating-point `{name}`, which ftrace cannot fetch"
            )),
            Type::Fwd { name, kind } => self.unread(format!("`{kind} {name}`, only declared")),
            _ => self.unread("not a value".into()),
        }
        Ok(())
    }
}

/// A whole struct's values, ready for the probe: what each leaf fetches,
/// how it is shown, what a filter compares.
pub(super) struct Lowered {
    /// The expression's name (`sk`).
    pub name: String,
    pub span: crate::spec::Span,
    pub what: String,
    pub leaves: Vec<LoweredLeaf>,
    pub unread: Vec<(String, String)>,
    pub more: bool,
}

pub(super) struct LoweredLeaf {
    /// The member path from the struct, `skc_bind_node.next`.
    pub path: String,
    pub fetch: crate::fetch::FetchArg,
    pub field: super::plan::FieldPlan,
    pub filter: super::filter::FilterField,
}

/// The fetchargs of `e`, named provisionally (the probe names them once
/// it knows which it keeps, see [`name_leaf`]).
pub(super) fn lower(
    a: &crate::spec::Arg,
    t: &crate::spec::TypedExpr,
    e: Expansion,
    p: &crate::spec::Probe,
    cx: &super::Context<'_>,
) -> Result<Lowered> {
    use super::plan::{Display, FieldPlan, Names};
    let name = &a.name.node;
    let kernel = matches!(p.place.node, crate::spec::Place::Kernel { .. });
    let mut leaves = Vec::with_capacity(e.leaves.len());
    let mut unread = e.unread;
    for (path, mut leaf) in e.leaves {
        let path_text = path_text(&path);
        let names = if t.format.is_none() {
            super::leaf_names(&leaf, t, p, cx, false)?
        } else {
            None
        };
        // `--raw`: numbers only; a filter still takes the names.
        let shown = names.clone().filter(|_| !cx.raw);
        if shown == Some(Names::Symbol) && kernel {
            leaf.ty = FetchType::Symbol;
        }
        let display = match (&shown, cx.types, leaf.ctype) {
            (Some(n), Some(types), Some(ty)) => super::names::raw_display(types, ty, n)?,
            _ => leaf.display(),
        };
        let size = match leaf.kind {
            LeafKind::Scalar { size } => Some(size),
            LeafKind::Array { elem, len } => Some(elem * len),
            _ => None,
        };
        let signed_bits = leaf.signed_bits();
        let fetch = leaf.fetcharg(name);
        if fetch.fetch_text().len() > super::checks::MAX_FETCHARG_LEN {
            unread.push((
                path_text,
                format!(
                    "its fetcharg is longer than the kernel's {} characters",
                    super::checks::MAX_FETCHARG_LEN
                ),
            ));
            continue;
        }
        let mut full = vec![PathPart::Member(name.clone())];
        full.extend(path);
        let ty = super::filter::FieldType::of(&fetch, cx.arch.pointer_size());
        let dotted = format!("{name}.{path_text}");
        leaves.push(LoweredLeaf {
            path: path_text,
            field: FieldPlan {
                name: name.clone(),
                display,
                width: None,
                names: shown,
                path: full,
                cut: 0,
                signed_bits,
            },
            filter: super::filter::FilterField {
                name: name.clone(),
                display: if display == Display::Default {
                    Display::Hex
                } else {
                    display
                },
                size,
                ty,
                path: Some(dotted),
                names,
            },
            fetch,
        });
    }
    Ok(Lowered {
        name: name.clone(),
        span: a.span,
        what: e.what,
        leaves,
        unread,
        more: e.more,
    })
}

/// `skc_bind_node.next`, `path[1].x`.
pub(super) fn path_text(path: &[PathPart]) -> String {
    let mut s = String::new();
    for p in path {
        match p {
            PathPart::Member(m) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(m);
            }
            PathPart::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// A leaf's field name: the kernel takes C identifiers of at most 32
/// characters (README, "Whole structs"): the expression's name and each
/// member (or index) after a `_`, `sk_skc_num` for `sk.skc_num`; where
/// that is too long or taken, `sk_7` for the seventh leaf.
pub(super) fn name_leaf(
    arg: &str,
    path: &[PathPart],
    index: usize,
    taken: &mut std::collections::HashSet<String>,
) -> String {
    let mut spelled = arg.to_string();
    for p in path {
        spelled.push('_');
        match p {
            PathPart::Member(m) => spelled.push_str(m),
            PathPart::Index(i) => spelled.push_str(&i.to_string()),
        }
    }
    let ok = |n: &str, taken: &std::collections::HashSet<String>| {
        n.len() <= super::checks::MAX_NAME_LEN
            && !taken.contains(n)
            && !n.starts_with("common_")
            && !n.starts_with("__probe_")
    };
    let mut name = if ok(&spelled, taken) {
        spelled
    } else {
        format!("{arg}_{index}")
    };
    let mut n = 0;
    while !ok(&name, taken) {
        n += 1;
        name = format!("{}_{index}_{n}", &arg[..arg.len().min(16)]);
    }
    taken.insert(name.clone());
    name
}

/// A struct whose single members lead down to one value that is not a
/// struct (`refcount_t` = `{ atomic_t refs }` = `{ int counter }`): that
/// value's bit offset in it and its type.
pub(super) fn one_value(src: &dyn TypeSource, c: &Composite) -> Result<Option<(u64, TypeId)>> {
    let mut off = 0;
    let mut c = c.clone();
    for _ in 0..16 {
        let [m] = c.members.as_slice() else {
            return Ok(None);
        };
        if m.bitfield_size.is_some() {
            return Ok(None);
        }
        off += m.bit_offset;
        match resolve(src, m.ty)?.1 {
            Type::Composite(inner) => c = inner,
            // An array is several values (`struct { struct point p[70]; }`).
            Type::Array { .. } => return Ok(None),
            _ => return Ok(Some((off, m.ty))),
        }
    }
    Ok(None)
}
