//! The type model: one view of C types, whatever file they came from.
//!
//! A [`TypeSource`] answers the few questions the compiler asks (find a
//! struct by name, describe a type by id, find a function's prototype).
//! BTF ([`btf`]) and DWARF ([`dwarf`]) both implement it, so the
//! compiler never knows which one it is talking to. Sources are lazy:
//! describing a type allocates only that type, never the whole graph.

pub mod archive;
pub mod btf;
pub mod btf_source;
pub mod dwarf;
pub mod layout;
pub mod load;
pub mod proto;
pub mod target;

use std::fmt;

/// Opaque identity of a type inside one source (a BTF id, a DWARF offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u64);

/// `struct` or `union`: the two kinds a cast may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompositeKind {
    Struct,
    Union,
}

impl fmt::Display for CompositeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompositeKind::Struct => "struct",
            CompositeKind::Union => "union",
        })
    }
}

/// One described type. Names are owned: only the handful of types a probe
/// touches are ever described, so the copies are cheap.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Void,
    Int(IntType),
    Float {
        name: String,
        size: u32,
    },
    /// `user` is set where the source marks the pointee as user memory
    /// (BTF type tag `user`, i.e. `__user`).
    Pointer {
        target: TypeId,
        user: bool,
    },
    Array {
        elem: TypeId,
        len: u64,
    },
    Composite(Composite),
    Enum {
        name: Option<String>,
        size: u32,
        signed: bool,
        values: Vec<Enumerator>,
    },
    /// A forward declaration: the body lives elsewhere (or nowhere).
    Fwd {
        name: String,
        kind: CompositeKind,
    },
    Typedef {
        name: String,
        target: TypeId,
    },
    /// const / volatile / restrict / type tags: transparent for layout.
    Qualified {
        qualifier: Qualifier,
        target: TypeId,
    },
    Func {
        name: String,
        proto: TypeId,
    },
    FuncProto {
        ret: TypeId,
        params: Vec<Param>,
        variadic: bool,
    },
    /// Kinds that never appear in a member walk (VAR, DATASEC, DECL_TAG).
    Other {
        what: &'static str,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct IntType {
    pub name: String,
    pub size: u32,
    pub signed: bool,
    pub is_char: bool,
    pub is_bool: bool,
}

/// One enumerator: its name and value, as the bits of a 64-bit integer
/// (a negative value of a signed enum sign-extended).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enumerator {
    pub name: String,
    pub value: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Qualifier {
    Const,
    Volatile,
    Restrict,
    /// BTF_KIND_TYPE_TAG, e.g. `user`, `percpu`, `rcu`.
    Tag(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Composite {
    pub kind: CompositeKind,
    pub name: Option<String>,
    pub size: u64,
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// None for an anonymous struct/union member.
    pub name: Option<String>,
    pub ty: TypeId,
    /// Offset from the start of the containing object, in bits.
    pub bit_offset: u64,
    /// Width in bits for a bitfield member, None otherwise.
    pub bitfield_size: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Option<String>,
    pub ty: TypeId,
}

/// Errors of the type stage: the file is not what it claims to be, or a
/// lookup walked off the graph.
#[derive(Debug, thiserror::Error)]
pub enum TypeError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("malformed BTF{}: {msg}", at_offset(*offset))]
    BadBtf { offset: Option<usize>, msg: String },
    #[error("malformed ELF {path}: {msg}")]
    BadElf { path: String, msg: String },
    #[error("malformed DWARF{}: {msg}", at_offset(*offset))]
    BadDwarf { offset: Option<usize>, msg: String },
    #[error("malformed archive {path}: {msg}")]
    BadArchive { path: String, msg: String },
    #[error("{path} has neither a .BTF section nor DWARF type information")]
    NoTypes { path: String },
    #[error("{path} holds no kernel's types (BTF files, vmlinux files, .btf.tar.xz or .btf.xz archives)")]
    NoKernels { path: String },
    /// The running kernel has no BTF and no debuginfo vmlinux of its build.
    #[error("{0}")]
    NoKernelTypes(Box<NoKernelTypes>),
    #[error("type id {0} does not exist")]
    NoSuchType(u64),
    #[error("type chain starting at id {0} loops or is too deep")]
    Loop(u64),
}

/// Where the running kernel's types were looked for, in vain.
#[derive(Debug)]
pub struct NoKernelTypes {
    /// `/sys/kernel/btf/vmlinux`.
    pub btf: String,
    pub release: String,
    pub build_id: Option<String>,
    /// Where its debuginfo vmlinux was looked for, in order.
    pub looked: Vec<String>,
    /// Files found there that belong to another build.
    pub other_builds: Vec<String>,
    /// What to install, when the kernel says who built it.
    pub package: Option<String>,
}

impl std::fmt::Display for NoKernelTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let places = match self.looked.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
        };
        write!(
            f,
            "the running kernel ({}) has no BTF ({} does not exist) and no debuginfo vmlinux",
            self.release, self.btf
        )?;
        if !self.other_builds.is_empty() {
            f.write_str(" of its build")?;
            if let Some(id) = &self.build_id {
                write!(f, " (build-id {id})")?;
            }
        }
        write!(f, " at {places}")?;
        if !self.other_builds.is_empty() {
            write!(
                f,
                ": {} is another build's",
                self.other_builds.join(" and ")
            )?;
        }
        match &self.package {
            Some(p) => write!(f, "\nhelp: install {p}, this build's debuginfo")?,
            None => f.write_str(
                "\nhelp: install this kernel build's debuginfo (a vmlinux with DWARF) at one of those places",
            )?,
        }
        f.write_str(", or name a vmlinux or BTF file with -v")
    }
}

fn at_offset(offset: Option<usize>) -> String {
    offset
        .map(|o| format!(" at byte {o:#x}"))
        .unwrap_or_default()
}

pub type Result<T, E = TypeError> = std::result::Result<T, E>;

/// What every type source answers.
pub trait TypeSource {
    /// Human-readable origin, for messages ("BTF of /sys/kernel/btf/vmlinux").
    fn describe(&self) -> String;

    /// The struct or union with this name that has a body (forward
    /// declarations are skipped when a full definition exists).
    fn find_composite(&self, kind: CompositeKind, name: &str) -> Result<Option<TypeId>>;

    /// Describe one type.
    fn get(&self, id: TypeId) -> Result<Type>;

    /// A function's FUNC entry (name + prototype), for typed arguments.
    fn find_func(&self, name: &str) -> Result<Option<TypeId>>;

    /// All names of structs (or unions) that have a body. Only called to
    /// suggest near names after a failed lookup, so it may be slow.
    fn composite_names(&self, kind: CompositeKind) -> Result<Vec<String>>;

    /// Names of all functions with a prototype (for search and suggestions).
    fn func_names(&self) -> Result<Vec<String>>;

    /// Say which functions and composites will be looked up, so that a
    /// source that scans for names can find them all in one pass (a
    /// fleet's kernels are each opened for a few lookups). Only a hint.
    fn prefetch(&self, _funcs: &[&str], _composites: &[(CompositeKind, &str)]) {}

    /// An enum with an enumerator of this name: how an anonymous enum
    /// (`enum { TCP_ESTABLISHED = 1, ... }`) is found. None where the
    /// source cannot tell.
    fn find_enumerator(&self, _name: &str) -> Result<Option<TypeId>> {
        Ok(None)
    }
}

/// Longest typedef/qualifier chain we follow before calling it a loop.
const MAX_CHAIN: usize = 64;

/// Strip typedefs and qualifiers; returns the underlying id and type.
pub fn resolve(src: &dyn TypeSource, id: TypeId) -> Result<(TypeId, Type)> {
    let mut cur = id;
    for _ in 0..MAX_CHAIN {
        match src.get(cur)? {
            Type::Typedef { target, .. } | Type::Qualified { target, .. } => cur = target,
            t => return Ok((cur, t)),
        }
    }
    Err(TypeError::Loop(id.0))
}

/// Size in bytes of a type (None for void, functions, forward decls).
pub fn size_of(src: &dyn TypeSource, id: TypeId, pointer_size: u32) -> Result<Option<u64>> {
    let mut id = id;
    let mut mult: u64 = 1;
    for _ in 0..MAX_CHAIN {
        let (_, t) = resolve(src, id)?;
        return Ok(match t {
            Type::Int(i) => Some(i.size as u64 * mult),
            Type::Float { size, .. } | Type::Enum { size, .. } => Some(size as u64 * mult),
            Type::Pointer { .. } => Some(pointer_size as u64 * mult),
            Type::Composite(c) => Some(c.size * mult),
            Type::Array { elem, len } => {
                mult = mult.saturating_mul(len);
                id = elem;
                continue;
            }
            _ => None,
        });
    }
    Err(TypeError::Loop(id.0))
}

/// A C spelling of a type for messages: `struct sk_buff **`, `char[16]`.
pub fn type_name(src: &dyn TypeSource, id: TypeId) -> String {
    fn go(src: &dyn TypeSource, id: TypeId, depth: usize) -> String {
        if depth > MAX_CHAIN {
            return "<loop>".into();
        }
        match src.get(id) {
            Err(_) => format!("<bad type {}>", id.0),
            Ok(t) => match t {
                Type::Void => "void".into(),
                Type::Int(i) => i.name,
                Type::Float { name, .. } => name,
                Type::Pointer { target, user } => {
                    let inner = go(src, target, depth + 1);
                    let sep = if inner.ends_with('*') { "" } else { " " };
                    let user = if user { " __user" } else { "" };
                    format!("{inner}{user}{sep}*")
                }
                Type::Array { elem, len } => format!("{}[{len}]", go(src, elem, depth + 1)),
                Type::Composite(c) => match c.name {
                    Some(n) => format!("{} {n}", c.kind),
                    None => format!("{} <anonymous>", c.kind),
                },
                Type::Enum { name, .. } => {
                    format!("enum {}", name.as_deref().unwrap_or("<anonymous>"))
                }
                Type::Fwd { name, kind } => format!("{kind} {name}"),
                Type::Typedef { name, .. } => name,
                Type::Qualified { qualifier, target } => {
                    let inner = go(src, target, depth + 1);
                    match qualifier {
                        Qualifier::Const => format!("const {inner}"),
                        Qualifier::Volatile => format!("volatile {inner}"),
                        Qualifier::Restrict => inner,
                        Qualifier::Tag(_) => inner,
                    }
                }
                Type::Func { name, .. } => format!("function {name}"),
                Type::FuncProto { .. } => "function prototype".into(),
                Type::Other { what } => what.into(),
            },
        }
    }
    go(src, id, 0)
}
