//! Discovery at the CLI edge: look before you probe. A struct's layout,
//! a function's arguments, functions by name, shell completions.

use std::io::Write as _;

use anyhow::{anyhow, Context as _};
use clap::CommandFactory;

use crate::app::Failure;
use crate::arch::Arch;
use crate::cli::Args;
use crate::types::proto::{search, Signature};
use crate::types::{self, layout, type_name, CompositeKind, TypeSource};

pub fn requested(args: &Args) -> bool {
    args.layout.is_some()
        || args.args.is_some()
        || args.funcs.is_some()
        || args.completions.is_some()
}

pub fn run(args: &Args) -> Result<(), Failure> {
    let mut out = Vec::new();
    if let Some(shell) = args.completions {
        clap_complete::generate(shell, &mut Args::command(), "coolkprobe", &mut out);
        return emit(&out);
    }
    let src = types::load::open(args.vmlinux.as_deref()).context("cannot open the type source")?;
    let arch = args.arch.unwrap_or_else(Arch::host);
    if let Some(name) = &args.layout {
        out.extend(layout_of(&*src, name, arch)?.into_bytes());
    }
    if let Some(func) = &args.args {
        out.extend(arguments_of(&*src, func, arch)?.into_bytes());
        // The running kernel's syscall tracepoint names what a wrapper's
        // `struct pt_regs` holds.
        if args.vmlinux.is_none() && arch == Arch::host() {
            if let Some(sys) = arch.wrapped_syscall(func) {
                out.extend(syscall_arguments(&*src, func, sys, arch)?.into_bytes());
            }
        }
    }
    if let Some(pattern) = &args.funcs {
        for name in search(&*src, pattern).context("cannot list functions")? {
            out.extend(name.into_bytes());
            out.push(b'\n');
        }
    }
    emit(&out)
}

fn emit(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = stdout.write_all(bytes).and_then(|_| stdout.flush());
    Ok(())
}

/// `task_struct`, `struct task_struct` or `union bpf_attr`.
fn layout_of(src: &dyn TypeSource, name: &str, arch: Arch) -> anyhow::Result<String> {
    let name = name.trim();
    let (kinds, bare): (&[CompositeKind], &str) = if let Some(n) = name.strip_prefix("struct ") {
        (&[CompositeKind::Struct], n.trim())
    } else if let Some(n) = name.strip_prefix("union ") {
        (&[CompositeKind::Union], n.trim())
    } else {
        (&[CompositeKind::Struct, CompositeKind::Union], name)
    };
    for &kind in kinds {
        if let Some(id) = src.find_composite(kind, bare)? {
            return Ok(layout::render(src, id, arch.pointer_size())?);
        }
    }
    let mut names = src.composite_names(CompositeKind::Struct)?;
    names.extend(src.composite_names(CompositeKind::Union)?);
    Err(anyhow!(
        "no struct or union `{bare}` in {}{}",
        src.describe(),
        hint(bare, &names)
    ))
}

/// `; did you mean `a` or `b`?` from the nearest names, or nothing.
fn hint(want: &str, names: &[String]) -> String {
    let near = crate::compile::suggest::nearest(want, names.iter().map(String::as_str));
    if near.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = near.iter().map(|n| format!("`{n}`")).collect();
    format!("; did you mean {}?", quoted.join(" or "))
}

/// The prototype, then one line per argument: how to name it in a probe.
fn arguments_of(src: &dyn TypeSource, func: &str, arch: Arch) -> anyhow::Result<String> {
    let Some(sig) = Signature::of(src, func)? else {
        let names = src.func_names()?;
        return Err(anyhow!(
            "no function `{func}` with a prototype in {}{}",
            src.describe(),
            hint(func, &names)
        ));
    };
    let mut s = format!("{}\n", sig.display(src));
    if let Some(sys) = arch.wrapped_syscall(func) {
        // In a probe, `%N` on a wrapper is the syscall's argument N.
        s.push_str(&format!(
            "  (a syscall wrapper: %0..%5 are {sys}'s own arguments, read out of its struct pt_regs)\n"
        ));
        s.push_str(&format!("  $retval  {}\n", type_name(src, sig.ret)));
        return Ok(s);
    }
    for (i, p) in sig.params.iter().enumerate() {
        let reg = arch
            .arg_reg(i)
            .map(str::to_string)
            .unwrap_or_else(|| format!("(on the stack: not in a {} register)", arch.name()));
        s.push_str(&format!(
            "  %{i}  {:<24} {:<40} {reg}\n",
            p.name.as_deref().unwrap_or("-"),
            type_name(src, p.ty)
        ));
    }
    s.push_str(&format!("  $retval  {}\n", type_name(src, sig.ret)));
    Ok(s)
}

/// A syscall wrapper's real arguments: name, C type, and where a probe on
/// the wrapper reads them (compiled as `p FUNC x=%N` would be).
fn syscall_arguments(
    src: &dyn TypeSource,
    func: &str,
    sys: &str,
    arch: Arch,
) -> anyhow::Result<String> {
    let Some(params) = crate::app::running_syscall_params(sys) else {
        return Ok(String::new());
    };
    let lookup: &crate::compile::syscall::Lookup = &crate::app::running_syscall_params;
    let cx = crate::compile::Context {
        arch,
        types: Some(src),
        user_types: &[],
        arg_access: crate::compile::ArgAccess::Registers,
        syscall_params: Some(lookup),
    };
    let mut s = format!("syscall {sys} (syscalls:sys_enter_{sys}), read out of struct pt_regs:\n");
    for (i, p) in params.iter().enumerate() {
        let spec = format!("p {func} x=%{i}");
        let fetch = crate::spec::parse_probe(&spec)
            .ok()
            .and_then(|probe| crate::compile::compile_probe(0, &probe, &cx).ok())
            .and_then(|c| c.fetchargs.first().map(|f| f.fetch.clone()))
            .unwrap_or_default();
        s.push_str(&format!("  %{i}  {:<24} {:<40} {fetch}\n", p.name, p.ctype));
    }
    Ok(s)
}
