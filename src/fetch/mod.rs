//! The fetch IR: what a probe argument reads, as values. The compiler
//! lowers every `NAME=EXPR` into a [`FetchArg`] (a [`Fetch`] and a
//! [`FetchType`]); the user's raw fetchargs (`+8(%si):u32`, `$stack3`) are
//! parsed into the same values ([`mod@parse`]). They become the kernel's text
//! in one place, [`mod@print`], as Documentation/trace/kprobetrace.rst and
//! uprobetracer.rst spell FETCHARGS. Whatever needs to know what a probe
//! reads (entry or return values, user or kernel memory, which registers)
//! asks these values, never the text.

pub mod parse;
pub mod print;

/// Where a value comes from: the kernel's FETCHARG, without its type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Fetch {
    /// `%REG`: a register, by the name the kernel gives it on the target
    /// arch (`di`, `x0`, `r12`), without the `%`.
    Reg(String),
    /// `$argN`: argument `N` of the probed function, counted from 0 as
    /// `%N` counts (the kernel's `$arg1` is `ArgN(0)`).
    ArgN(u32),
    /// `$retval`: the return value (return probes).
    Retval,
    /// `$stack`: the stack address.
    StackAddr,
    /// `$stackN`: the Nth entry of the stack.
    Stack(u32),
    /// `$comm`: the current task's name.
    Comm,
    /// `@SYM[+|-OFF]`: memory at a kernel data symbol.
    Symbol { name: String, off: i64 },
    /// `@ADDR`: memory at a kernel address.
    Addr(u64),
    /// `@+OFF`: memory at a file offset of a uprobe's binary.
    FileOffset(u64),
    /// `\IMM`: an immediate, as written after the `\`.
    Imm(String),
    /// `+|-[u]OFF(BASE)`: memory at the address BASE holds, plus `off`;
    /// `user`: in the traced process's memory.
    Deref {
        base: Box<Fetch>,
        off: i64,
        user: bool,
        /// How `off` is written; raw fetchargs keep their spelling.
        radix: Radix,
    },
    /// Text beyond the syntax this IR knows (a newer kernel's, or a
    /// mistake): passed to the kernel unchanged, which judges it. Asked
    /// what it reads, it answers nothing.
    Verbatim(String),
}

/// How a number is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Radix {
    /// `0` or `0x1f`: what the compiler writes.
    #[default]
    Hex,
    /// `31`.
    Dec,
}

/// How a fetched value is stored in the event: the kernel's TYPE.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FetchType {
    /// `u8`..`u64`, `s8`..`s64`, `x8`..`x64`.
    Int { kind: IntKind, bytes: u32 },
    /// `string`: a NUL-terminated string in kernel memory.
    String,
    /// `ustring`: a NUL-terminated string in user memory.
    UString,
    /// `symbol`: an address, shown as `symbol+offset`.
    Symbol,
    /// `b<width>@<bit>/<container bits>`: a bitfield.
    Bitfield {
        width: u32,
        bit: u32,
        container: u32,
    },
    /// `T[N]`: N values of a type, e.g. `x8[6]`, `u8[16]`.
    Array { elem: Box<FetchType>, len: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntKind {
    Unsigned,
    Signed,
    Hex,
}

/// One `NAME=FETCHARG[:TYPE]` of a probe definition.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FetchArg {
    pub name: String,
    pub value: Fetch,
    /// None: the kernel's default for the fetch.
    pub ty: Option<FetchType>,
}

impl Fetch {
    /// `%REG`, from the arch's spelling with or without the `%`.
    pub fn reg(name: &str) -> Fetch {
        Fetch::Reg(name.trim_start_matches('%').to_string())
    }

    /// Memory at `off` from the address `base` holds, as the compiler
    /// writes it.
    pub fn deref(base: Fetch, off: u64, user: bool) -> Fetch {
        Fetch::Deref {
            base: Box::new(base),
            off: off as i64,
            user,
            radix: Radix::Hex,
        }
    }

    /// The value this one is read through, down to what is not memory.
    pub fn root(&self) -> &Fetch {
        match self {
            Fetch::Deref { base, .. } => base.root(),
            other => other,
        }
    }

    /// Every value this one reads, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = &Fetch> {
        std::iter::successors(Some(self), |f| match f {
            Fetch::Deref { base, .. } => Some(&**base),
            _ => None,
        })
    }

    /// The registers read (by their kernel names).
    pub fn registers(&self) -> impl Iterator<Item = &str> {
        self.chain().filter_map(|f| match f {
            Fetch::Reg(r) => Some(r.as_str()),
            _ => None,
        })
    }

    /// Whether it reads the probed function's arguments, by register or
    /// `$argN`: what only holds at a function's entry.
    pub fn reads_arguments(&self) -> bool {
        matches!(self.root(), Fetch::Reg(_) | Fetch::ArgN(_))
    }

    /// Whether it reads the return value (a return probe's).
    pub fn reads_retval(&self) -> bool {
        matches!(self.root(), Fetch::Retval)
    }

    /// Whether some read is of the traced process's memory.
    pub fn reads_user_memory(&self) -> bool {
        self.chain()
            .any(|f| matches!(f, Fetch::Deref { user: true, .. }))
    }

    /// How many memory reads it takes.
    pub fn depth(&self) -> usize {
        self.chain()
            .filter(|f| matches!(f, Fetch::Deref { .. }))
            .count()
    }
}

impl FetchType {
    /// An integer of `bytes` bytes shown as `kind`.
    pub fn int(kind: IntKind, bytes: u32) -> FetchType {
        FetchType::Int { kind, bytes }
    }

    /// Bytes in the event; None for strings, whose length varies.
    pub fn size(&self) -> Option<u32> {
        match self {
            FetchType::Int { bytes, .. } => Some(*bytes),
            FetchType::Bitfield { container, .. } => Some(container / 8),
            FetchType::Symbol => None,
            FetchType::String | FetchType::UString => None,
            FetchType::Array { elem, len } => elem.size().map(|s| s * len),
        }
    }

    /// Whether the value is text.
    pub fn is_string(&self) -> bool {
        matches!(self, FetchType::String | FetchType::UString)
    }
}

impl FetchArg {
    pub fn new(name: impl Into<String>, value: Fetch, ty: Option<FetchType>) -> FetchArg {
        FetchArg {
            name: name.into(),
            value,
            ty,
        }
    }

    /// A raw `FETCHARG[:TYPE]` as the user wrote it ([`parse::fetcharg`]).
    pub fn raw(name: impl Into<String>, text: &str) -> FetchArg {
        let (value, ty) = parse::fetcharg(text);
        FetchArg::new(name, value, ty)
    }

    /// Whether some read is of user memory (`+u`, `ustring`).
    pub fn reads_user_memory(&self) -> bool {
        self.value.reads_user_memory() || self.ty == Some(FetchType::UString)
    }
}
