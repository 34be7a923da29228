//! Where a probe's arguments are and what C type they have.
//!
//! `%N` is a register (or the kernel's `$argN`); with the types open, the
//! probed function's prototype also gives its C type and its name, so
//! `file->f_inode->i_ino` needs no cast and `$retval` knows it is an
//! `int`. Syscall wrappers (`__x64_sys_openat(const struct pt_regs *)`)
//! hide the real arguments one level down: they are read out of the
//! `struct pt_regs` the wrapper receives, from user memory where they
//! point.

use crate::fetch::{Fetch, FetchType};
use crate::spec::{Base, Place, Probe, ProbeKind, Span, TypedExpr};
use crate::types::proto::Signature;
use crate::types::{resolve, type_name, CompositeKind, Type, TypeId, TypeSource};

use super::syscall::{SysParam, SysType};
use super::walk::{self, Cur, Leaf, Loc, Walked};
use super::{error, Context, ErrorKind, Result, ReturnArgs};
use crate::diag::{did_you_mean, Code, Diagnostic, Level};

/// How `%N` is read at a function's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgAccess {
    /// The arch's argument registers (`%di`, `%x0`): every kernel has them.
    Registers,
    /// The kernel's own `$argN` fetcharg, which knows the calling
    /// convention itself. Only at a function's entry, only for kprobes.
    KernelArgs,
}

/// What is known of the probed function.
pub(super) struct Func {
    /// `vfs_read`, or `__x64_sys_openat`; None for tracepoints.
    pub symbol: Option<String>,
    pub ret: bool,
    /// The prototype, when the types have it.
    pub sig: Option<Signature>,
    /// For a syscall wrapper: the syscall and, from the running kernel's
    /// tracepoint, its arguments.
    pub syscall: Option<(String, Option<Vec<SysParam>>)>,
    /// `$argN` rather than registers for this probe.
    pub kernel_args: bool,
}

impl Func {
    /// `sigs` keeps the prototypes found so far in this run: several
    /// probes on one function look it up once.
    pub fn of(
        p: &Probe,
        cx: &Context<'_>,
        sigs: &mut std::collections::HashMap<String, Option<Signature>>,
    ) -> Func {
        let ret = p.kind.node == ProbeKind::Return;
        let (symbol, offset, kernel) = match &p.place.node {
            Place::Kernel { symbol, offset, .. } => (Some(symbol.clone()), *offset, true),
            Place::User {
                loc: crate::spec::UserLoc::Symbol { name, offset },
                ..
            } => (Some(name.clone()), *offset, false),
            _ => (None, 0, false),
        };
        // A compiler copy (`.isra.0`, `.constprop.0`) may have dropped or
        // reordered parameters: its prototype is not the source's.
        let sig = match (&symbol, cx.types) {
            (Some(s), Some(t)) if !s.contains('.') => {
                // Keyed by the types too: a uprobe's binary is another source.
                let key = format!("{}\0{s}", t.describe());
                sigs.entry(key)
                    .or_insert_with(|| Signature::of(t, s).ok().flatten())
                    .clone()
            }
            _ => None,
        };
        let syscall = match &symbol {
            Some(s) if kernel => cx.arch.wrapped_syscall(s).map(|name| {
                let params = cx.syscall_params.and_then(|f| f(name));
                (name.to_string(), params)
            }),
            _ => None,
        };
        // A return probe reads the arguments the kernel kept from the
        // entry, where it keeps them; at the return the registers hold
        // whatever the function left there.
        let kernel_args = kernel
            && offset == 0
            && if ret {
                cx.return_args == ReturnArgs::Kept
            } else {
                cx.arg_access == ArgAccess::KernelArgs
            };
        Func {
            kernel_args,
            symbol,
            ret,
            sig,
            syscall,
        }
    }

    pub fn name(&self) -> &str {
        self.symbol.as_deref().unwrap_or("the probed function")
    }

    /// What holds argument `n` at entry.
    fn arg(&self, cx: &Context<'_>, n: u32, span: Span) -> Result<Fetch> {
        let Some(reg) = cx.arch.arg_reg(n as usize) else {
            let regs = cx.arch.arg_regs();
            return Err(error(
                span,
                ErrorKind::ArgBeyondRegisters {
                    n,
                    arch: cx.arch,
                    last: regs.len() - 1,
                    regs: regs.join(" "),
                },
            ));
        };
        Ok(if self.kernel_args {
            Fetch::ArgN(n)
        } else {
            Fetch::reg(reg)
        })
    }

    /// `%N` beyond what the prototype takes is an error: the register
    /// holds whatever the caller left there.
    fn check_arity(&self, n: u32, span: Span) -> Result<()> {
        let Some(sig) = &self.sig else { return Ok(()) };
        if sig.variadic || (n as usize) < sig.params.len() || self.syscall.is_some() {
            return Ok(());
        }
        let names: Vec<String> = sig
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| format!("%{i} {}", p.name.as_deref().unwrap_or("?")))
            .collect();
        let kind = if sig.params.is_empty() {
            "no arguments".to_string()
        } else {
            format!(
                "{} argument{} ({})",
                sig.params.len(),
                if sig.params.len() == 1 { "" } else { "s" },
                names.join(", ")
            )
        };
        Err(error(
            span,
            ErrorKind::Unsupported(format!("`{}` takes {kind}: there is no %{n}", self.name())),
        )
        .with_code(Code::Prototype))
    }
}

/// Compile one typed expression. `None`: a bare `$retval` that stays the
/// raw fetcharg (an entry probe, or no prototype to type it by).
pub(super) fn typed(
    t: &TypedExpr,
    cx: &Context<'_>,
    func: &Func,
    ip: bool,
    notes: &mut Vec<Diagnostic>,
) -> Result<Option<Walked>> {
    let types = cx.types;
    match &t.base.node {
        Base::Retval => retval(t, cx, func, ip),
        Base::Arg(n) => {
            if let Some((name, params)) = &func.syscall {
                return syscall_arg(t, cx, func, name, params.as_deref(), *n, ip, notes).map(Some);
            }
            let reg = func.arg(cx, *n, t.base.span)?;
            func.check_arity(*n, t.base.span)?;
            let param = func.sig.as_ref().and_then(|s| s.params.get(*n as usize));
            if let Some(cast) = &t.cast {
                let types = types.ok_or_else(|| error(t.span, ErrorKind::NoTypes))?;
                if let Some(param) = param {
                    if let Some(note) = cast_disagrees(types, func, *n, param, t)? {
                        notes.push(note);
                    }
                }
                return walk::walk(types, cx.arch, reg, t, cast, ip).map(Some);
            }
            if t.steps.is_empty() {
                // `%N` alone: the register, as the old tool read it.
                let reg = Leaf::register(reg, cx.arch, t.format.map(|f| f.node));
                return Ok(Some(Walked::Leaf(reg)));
            }
            let types = types.ok_or_else(|| error(t.span, ErrorKind::NoTypes))?;
            let Some(param) = param else {
                return Err(no_prototype(func, types, t.span)
                    .with_help(format!("write a cast: `%{n}~(struct T)->member`")));
            };
            walk_value(types, cx, reg, param.ty, format!("%{n}"), t, ip).map(Some)
        }
        Base::Param(name) => {
            if let Some((sys, params)) = &func.syscall {
                let Some(params) = params else {
                    return Err(error(
                        t.base.span,
                        ErrorKind::Unsupported(format!(
                            "the argument names of syscall `{sys}` are not known here"
                        )),
                    )
                    .with_help(format!(
                        "they come from the running kernel's syscalls:sys_enter_{sys} tracepoint; \
                         name the argument by number (`%0`..`%5`)"
                    )));
                };
                let Some(i) = params.iter().position(|p| &p.name == name) else {
                    return Err(unknown_param(
                        sys,
                        name,
                        params.iter().map(|p| p.name.as_str()),
                        t.base.span,
                    ));
                };
                return syscall_arg(t, cx, func, sys, Some(params), i as u32, ip, notes).map(Some);
            }
            let types = types.ok_or_else(|| error(t.span, ErrorKind::NoTypes))?;
            let Some(sig) = &func.sig else {
                return Err(no_prototype(func, types, t.base.span)
                    .with_help("name the argument by number: `%N~(struct T)->member`"));
            };
            let Some(i) = sig.param_index(name) else {
                return Err(unknown_param(
                    func.name(),
                    name,
                    sig.params.iter().filter_map(|p| p.name.as_deref()),
                    t.base.span,
                ));
            };
            let reg = func.arg(cx, i as u32, t.base.span)?;
            walk_value(types, cx, reg, sig.params[i].ty, name.clone(), t, ip).map(Some)
        }
    }
}

fn retval(t: &TypedExpr, cx: &Context<'_>, func: &Func, ip: bool) -> Result<Option<Walked>> {
    let bare = t.cast.is_none() && t.steps.is_empty();
    if !func.ret {
        if bare {
            return Ok(None);
        }
        return Err(error(
            t.base.span,
            ErrorKind::Unsupported(
                "`$retval` is the return value: it exists only in return probes (`r`)".into(),
            ),
        ));
    }
    let types = match cx.types {
        Some(t) => t,
        None if bare => return Ok(None),
        None => return Err(error(t.span, ErrorKind::NoTypes)),
    };
    if let Some(cast) = &t.cast {
        return walk::walk(types, cx.arch, Fetch::Retval, t, cast, ip).map(Some);
    }
    let Some(sig) = &func.sig else {
        if bare {
            return Ok(None);
        }
        return Err(no_prototype(func, types, t.base.span)
            .with_help("write a cast: `$retval~(struct T)->member`"));
    };
    if matches!(resolve(types, sig.ret)?.1, Type::Void) {
        return Err(error(
            t.base.span,
            ErrorKind::Unsupported(format!("`{}` returns nothing (`void`)", func.name())),
        ));
    }
    walk_value(types, cx, Fetch::Retval, sig.ret, "$retval".into(), t, ip).map(Some)
}

/// The walk from a word in hand (`%si`, `$arg2`, `$retval`) of C type
/// `ty`; user memory where the type says `__user`.
fn walk_value(
    types: &dyn TypeSource,
    cx: &Context<'_>,
    value: Fetch,
    ty: TypeId,
    path: String,
    t: &TypedExpr,
    ip: bool,
) -> Result<Walked> {
    let user = points_to_user(types, ty)?;
    let loc = Loc::Value {
        value,
        add: 0,
        user,
    };
    walk::walk_typed(types, cx.arch, loc, Cur::Ty(ty), path, t, ip)
}

/// Argument `n` of a wrapped syscall: the word in `struct pt_regs` the
/// wrapper's first argument points at, typed by the syscall tracepoint.
#[allow(clippy::too_many_arguments)]
fn syscall_arg(
    t: &TypedExpr,
    cx: &Context<'_>,
    func: &Func,
    sys: &str,
    params: Option<&[SysParam]>,
    n: u32,
    ip: bool,
    notes: &mut Vec<Diagnostic>,
) -> Result<Walked> {
    let Some(types) = cx.types else {
        return Err(error(t.span, ErrorKind::NoTypes)
            .with_help("a syscall wrapper's arguments are found through `struct pt_regs`"));
    };
    let count = params.map_or(cx.arch.syscall_arg_count(), |p| p.len());
    let Some((member, index)) = cx
        .arch
        .syscall_arg(n as usize)
        .filter(|_| (n as usize) < count)
    else {
        let names = params.map(|p| {
            p.iter()
                .enumerate()
                .map(|(i, p)| format!("%{i} {}", p.name))
                .collect::<Vec<_>>()
                .join(", ")
        });
        return Err(error(
            t.base.span,
            ErrorKind::Unsupported(match names {
                Some(names) if count > 0 => {
                    format!("syscall `{sys}` takes {count} arguments ({names}): there is no %{n}")
                }
                Some(_) => format!("syscall `{sys}` takes no arguments"),
                None => format!("a syscall has at most {count} arguments: there is no %{n}"),
            }),
        ));
    };
    let regs_ptr = func.arg(cx, 0, t.base.span)?;
    let off = pt_regs_offset(types, member, index, t.base.span)?;
    let slot = walk::mem(&regs_ptr, off, false);
    let param = params.and_then(|p| p.get(n as usize));
    if !notes.iter().any(|x| x.level == Level::Note) {
        notes.push(Diagnostic {
            level: Level::Note,
            span: Some(t.base.span),
            message: format!(
                "`{}` is the syscall wrapper: the syscall's arguments are read from the \
                 `struct pt_regs` it receives ({member}{} is {slot}){}",
                func.name(),
                // arm64 keeps them in an array: `regs[2]`.
                if cx.arch.syscall_arg(1).map(|a| a.0) == cx.arch.syscall_arg(0).map(|a| a.0) {
                    format!("[{index}]")
                } else {
                    String::new()
                },
                if param.is_some_and(|p| matches!(p.kind(), SysType::UserString | SysType::UserComposite { .. })) {
                    ", user pointers through user memory"
                } else {
                    ""
                }
            ),
            help: Some(format!(
                "`t syscalls:sys_enter_{sys}` is the steadier choice: a tracepoint with the arguments as fields"
            )),
            code: None,
        });
    }
    let path = match param {
        Some(p) => p.name.clone(),
        None => format!("%{n}"),
    };
    let value = |user: bool| Loc::Value {
        value: slot.clone(),
        add: 0,
        user,
    };
    let word = |f: Option<crate::spec::Format>, size: u32| Leaf {
        value: slot.clone(),
        ty: walk::scalar_type(f, size),
        kind: walk::LeafKind::Scalar { size },
        letter: f,
        ctype: None,
        member: None,
    };
    let f = t.format.map(|f| f.node);
    if let Some(cast) = &t.cast {
        if let Some(SysType::UserComposite { name, .. }) = param.map(SysParam::kind) {
            if name != cast.node.name.node {
                notes.push(Diagnostic {
                    level: Level::Warning,
                    span: Some(cast.span),
                    message: format!(
                        "the cast disagrees with syscall `{sys}`: its argument {n} is `{}`",
                        param.map_or("", |p| p.ctype.as_str())
                    ),
                    help: Some("the cast wins: drop it to use the syscall's type".into()),
                    code: None,
                });
            }
        }
        return walk::walk_typed_cast(types, cx.arch, value(true), t, cast, ip);
    }
    match param.map(SysParam::kind) {
        None if t.steps.is_empty() => Ok(Walked::Leaf(word(f, 8))),
        None => Err(error(
            t.span,
            ErrorKind::Unsupported(format!(
                "the type of syscall `{sys}`'s argument {n} is not known here"
            )),
        )
        .with_help(format!("write a cast: `%{n}~(struct T)->member`"))),
        Some(SysType::Int { size, signed }) if t.steps.is_empty() => {
            let f = f.or(Some(if signed {
                crate::spec::Format::Signed
            } else {
                crate::spec::Format::Unsigned
            }));
            Ok(Walked::Leaf(word(f, size)))
        }
        Some(SysType::UserString) if t.steps.is_empty() && f.is_none() => Ok(Walked::Leaf(Leaf {
            value: walk::mem(&slot, 0, false),
            ty: FetchType::UString,
            kind: walk::LeafKind::String,
            letter: None,
            ctype: None,
            member: None,
        })),
        Some(SysType::UserString | SysType::OtherPointer) if t.steps.is_empty() => {
            Ok(Walked::Leaf(word(f, 8)))
        }
        Some(SysType::UserComposite { union, name }) => {
            let kind = if union {
                CompositeKind::Union
            } else {
                CompositeKind::Struct
            };
            let spanned = crate::spec::Spanned {
                node: name.to_string(),
                span: t.base.span,
            };
            let id = walk::find_composite(types, kind, &spanned)?;
            walk::walk_typed(types, cx.arch, value(true), Cur::PtrTo(id), path, t, ip)
        }
        Some(_) => Err(error(
            t.steps.first().map_or(t.span, |s| s.span),
            ErrorKind::Unsupported(format!(
                "`{path}` is `{}`: `->` needs a pointer to a struct or union",
                param.map_or("", |p| p.ctype.as_str())
            )),
        )),
    }
}

/// Byte offset of `member[index]` in `struct pt_regs`.
fn pt_regs_offset(src: &dyn TypeSource, member: &str, index: u64, span: Span) -> Result<u64> {
    let missing = |what: String| error(span, ErrorKind::Unsupported(what));
    let id = src
        .find_composite(CompositeKind::Struct, "pt_regs")?
        .ok_or_else(|| missing(format!("{} has no `struct pt_regs`", src.describe())))?;
    let Type::Composite(c) = resolve(src, id)?.1 else {
        return Err(missing("`struct pt_regs` is not a struct".into()));
    };
    let (bits, m) = walk::find_member_pub(src, &c, member)?
        .ok_or_else(|| missing(format!("`struct pt_regs` has no member `{member}`")))?;
    let elem = match resolve(src, m.ty)?.1 {
        Type::Array { elem, .. } => crate::types::size_of(src, elem, 8)?.unwrap_or(8),
        _ => 0,
    };
    Ok(bits / 8 + index * elem)
}

/// Whether a value of this type points into user memory (`__user`).
fn points_to_user(src: &dyn TypeSource, ty: TypeId) -> Result<bool> {
    Ok(matches!(
        resolve(src, ty)?.1,
        Type::Pointer { user: true, .. }
    ))
}

fn no_prototype(func: &Func, types: &dyn TypeSource, span: Span) -> Diagnostic {
    let why = match &func.symbol {
        Some(s) if s.contains('.') => format!(
            "`{s}` is a compiler copy of a function: its parameters may differ from the source's, \
             so its prototype is not used"
        ),
        Some(s) => format!("{} has no prototype for `{s}`", types.describe()),
        None => "this probe has no function prototype".into(),
    };
    error(span, ErrorKind::Unsupported(why))
}

fn unknown_param<'a>(
    func: &str,
    name: &str,
    params: impl Iterator<Item = &'a str> + Clone,
    span: Span,
) -> Diagnostic {
    let all: Vec<String> = params.clone().map(|p| format!("`{p}`")).collect();
    let help = match did_you_mean(name, params, "") {
        Some(near) => format!("{near} its parameters are {}", all.join(", ")),
        None if all.is_empty() => "it takes no named parameters".into(),
        None => format!("its parameters are {}", all.join(", ")),
    };
    error(
        span,
        ErrorKind::Unsupported(format!("`{func}` has no parameter `{name}`")),
    )
    .with_help(help)
    .with_code(Code::Prototype)
}

/// A cast that reads the argument as something its prototype says it is
/// not: a warning showing the real type. Casts of `void *`, `unsigned
/// long` and other untyped words are what casts are for, and pass.
fn cast_disagrees(
    src: &dyn TypeSource,
    func: &Func,
    n: u32,
    param: &crate::types::Param,
    t: &TypedExpr,
) -> Result<Option<Diagnostic>> {
    let Some(cast) = &t.cast else { return Ok(None) };
    // A packet cast reads `struct sk_buff *`, whatever the header is.
    let wanted = match cast.node.packet {
        Some(_) => "sk_buff",
        None => cast.node.name.node.as_str(),
    };
    let agrees = match resolve(src, param.ty)?.1 {
        Type::Pointer { target, .. } => match resolve(src, target)?.1 {
            Type::Composite(c) => c.name.as_deref() == Some(wanted),
            Type::Fwd { name, .. } => name == wanted,
            Type::Void => true,
            Type::Int(i) => i.size == 1, // `char *` buffers hold anything
            _ => false,
        },
        Type::Int(i) => i.size as u64 >= 8 && !i.signed, // unsigned long
        _ => false,
    };
    if agrees {
        return Ok(None);
    }
    let real = type_name(src, param.ty);
    let pname = param.name.as_deref().unwrap_or("");
    let kind = match cast.node.packet {
        Some(_) => CompositeKind::Struct,
        None => cast.node.kind,
    };
    let read_as = format!("{kind} {wanted} *");
    Ok(Some(Diagnostic {
        level: Level::Warning,
        span: Some(cast.span),
        message: format!(
            "the cast reads %{n} as `{read_as}`, but `{}` declares it `{real}{}{pname}`",
            func.name(),
            if real.ends_with('*') { "" } else { " " }
        ),
        help: Some(format!(
            "the cast wins; to use the prototype's type drop it{}",
            if pname.is_empty() {
                String::new()
            } else {
                format!(" (`%{n}->...` or `{pname}->...`)")
            }
        )),
        code: None,
    }))
}
