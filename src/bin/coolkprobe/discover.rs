//! Discovery: look before you probe. A struct's layout (`--layout`), a
//! function's arguments (`--args`), functions by name (`--funcs`), shell
//! completions (`--completions`). A name that is not there is bad input,
//! reported as a diagnostic under the option.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::CommandFactory;

use coolkprobe::arch::Arch;
use coolkprobe::compile::{self, Context};
use coolkprobe::diag::{did_you_mean, Diagnostic, Span};
use coolkprobe::types::proto::{search, Signature};
use coolkprobe::types::{self, layout, type_name, CompositeKind, TypeSource};

use crate::cli::Args;
use crate::diagnostics::render_option;
use crate::exit::Failure;

pub fn run(args: &Args) -> Result<(), Failure> {
    let mut out = Vec::new();
    if let Some(shell) = args.completions {
        clap_complete::generate(shell, &mut Args::command(), "coolkprobe", &mut out);
        return emit(&out);
    }
    crate::cli::one_kernel(args, "discovery (--layout, --args, --funcs)")?;
    let vmlinux = args.vmlinux.first().map(PathBuf::as_path);
    let src = types::load::open(vmlinux).context("cannot open the type source")?;
    let arch = args.arch();
    let mut bad = String::new();
    if let Some(name) = &args.layout {
        match layout_of(&*src, name, arch)? {
            Ok(text) => out.extend(text.into_bytes()),
            Err(d) => bad.push_str(&render_option(&d, "--layout", name)),
        }
    }
    if let Some(func) = &args.args {
        match arguments_of(&*src, func, arch)? {
            Ok(text) => out.extend(text.into_bytes()),
            Err(d) => bad.push_str(&render_option(&d, "--args", func)),
        }
        // The running kernel's syscall tracepoint names what a wrapper's
        // `struct pt_regs` holds.
        if vmlinux.is_none() && arch == Arch::host() {
            if let Some(sys) = arch.wrapped_syscall(func) {
                out.extend(syscall_arguments(&*src, func, sys, arch).into_bytes());
            }
        }
    }
    if let Some(pattern) = &args.funcs {
        match functions(&*src, pattern)? {
            Ok(names) => {
                for name in names {
                    out.extend(name.into_bytes());
                    out.push(b'\n');
                }
            }
            Err(d) => bad.push_str(&render_option(&d, "--funcs", pattern)),
        }
    }
    if !bad.is_empty() {
        return Err(Failure::Input(bad));
    }
    emit(&out)
}

fn emit(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = stdout.write_all(bytes).and_then(|_| stdout.flush());
    Ok(())
}

/// The functions `pattern` (a glob with `*` and `?`, or a substring)
/// matches; none, or a character no function name has, is a mistake.
fn functions(
    src: &dyn TypeSource,
    pattern: &str,
) -> anyhow::Result<Result<Vec<String>, Diagnostic>> {
    let odd = |c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*' | '?'));
    if let Some((i, c)) = pattern.char_indices().find(|&(_, c)| odd(c)) {
        return Ok(Err(Diagnostic::error(
            Span::new(i, i + c.len_utf8()),
            format!("`{c}` is in no function name"),
        )
        .with_help(
            "a pattern is a glob with `*` and `?` (`tcp_v?_rcv`), or a part of a name",
        )));
    }
    let names = search(src, pattern).context("cannot list functions")?;
    if !names.is_empty() {
        return Ok(Ok(names));
    }
    let all = src.func_names()?;
    let near = if pattern.contains(['*', '?']) {
        None
    } else {
        did_you_mean(pattern, all.iter().map(String::as_str), "")
    };
    Ok(Err(Diagnostic::error(
        all_of(pattern),
        format!("no function in {} matches `{pattern}`", src.describe()),
    )
    .with_help_opt(near)))
}

/// The span of the whole of `value`, as written.
fn all_of(value: &str) -> Span {
    Span::new(0, value.len())
}

/// `task_struct`, `struct task_struct` or `union bpf_attr`.
fn layout_of(
    src: &dyn TypeSource,
    name: &str,
    arch: Arch,
) -> anyhow::Result<Result<String, Diagnostic>> {
    let bare_name = name.trim();
    let (kinds, bare): (&[CompositeKind], &str) = if let Some(n) = bare_name.strip_prefix("struct ")
    {
        (&[CompositeKind::Struct], n.trim())
    } else if let Some(n) = bare_name.strip_prefix("union ") {
        (&[CompositeKind::Union], n.trim())
    } else {
        (&[CompositeKind::Struct, CompositeKind::Union], bare_name)
    };
    for &kind in kinds {
        if let Some(id) = src.find_composite(kind, bare)? {
            return Ok(Ok(layout::render(src, id, arch.pointer_size())?));
        }
    }
    let mut names = src.composite_names(CompositeKind::Struct)?;
    names.extend(src.composite_names(CompositeKind::Union)?);
    let at = name
        .rfind(bare)
        .map_or(all_of(name), |i| Span::new(i, i + bare.len()));
    Ok(Err(Diagnostic::error(
        at,
        format!("no struct or union `{bare}` in {}", src.describe()),
    )
    .with_help_opt(did_you_mean(
        bare,
        names.iter().map(String::as_str),
        "",
    ))))
}

/// The prototype, then one line per argument: how to name it in a probe.
fn arguments_of(
    src: &dyn TypeSource,
    func: &str,
    arch: Arch,
) -> anyhow::Result<Result<String, Diagnostic>> {
    let Some(sig) = Signature::of(src, func)? else {
        let names = src.func_names()?;
        return Ok(Err(Diagnostic::error(
            all_of(func),
            format!(
                "no function `{func}` with a prototype in {}",
                src.describe()
            ),
        )
        .with_help_opt(did_you_mean(
            func,
            names.iter().map(String::as_str),
            "",
        ))));
    };
    let mut s = format!("{}\n", sig.display(src));
    if let Some(sys) = arch.wrapped_syscall(func) {
        // In a probe, `%N` on a wrapper is the syscall's argument N.
        s.push_str(&format!(
            "  (a syscall wrapper: %0..%5 are {sys}'s own arguments, read out of its struct pt_regs)\n"
        ));
        s.push_str(&format!("  $retval  {}\n", type_name(src, sig.ret)));
        return Ok(Ok(s));
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
    Ok(Ok(s))
}

/// A syscall wrapper's real arguments: name, C type, and where a probe on
/// the wrapper reads them (compiled as `p FUNC x=%N` would be).
fn syscall_arguments(src: &dyn TypeSource, func: &str, sys: &str, arch: Arch) -> String {
    let Some(params) = coolkprobe::kernel::syscalls::params(sys) else {
        return String::new();
    };
    let lookup: &compile::syscall::Lookup = &coolkprobe::kernel::syscalls::params;
    let cx = Context {
        syscall_params: Some(lookup),
        ..Context::new(arch, Some(src))
    };
    let mut s = format!("syscall {sys} (syscalls:sys_enter_{sys}), read out of struct pt_regs:\n");
    for (i, p) in params.iter().enumerate() {
        let spec = format!("p {func} x=%{i}");
        let fetch = coolkprobe::spec::parse_probe(&spec)
            .ok()
            .and_then(|probe| compile::compile_probe(0, &probe, &cx).ok())
            .and_then(|c| c.fetchargs.first().map(|f| f.fetch_text()))
            .unwrap_or_default();
        s.push_str(&format!("  %{i}  {:<24} {:<40} {fetch}\n", p.name, p.ctype));
    }
    s
}
