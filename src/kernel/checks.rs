//! Kernel probe places checked against the running kernel's symbols
//! before anything is installed (README, "Checked before anything is
//! installed"): the function exists under that exact name and only once,
//! the kernel lets kprobes onto it (boot-time code, blacklist, notrace),
//! and `+OFFSET` lies inside it.

use super::symbols::{KernelSymbols, Sym};
use crate::diag::{Code, Diagnostic, ProbeDiagnostics, Span};
use crate::spec::{Place, Probe};

/// Check every kernel probe (`p`/`r` on `SYMBOL[+OFFSET]` or
/// `MODULE:SYMBOL[+OFFSET]`) against the running kernel; every diagnostic
/// goes to `diags` with its probe's index. Uprobes and tracepoints are not
/// looked at; with no kallsyms symbols at all nothing is checked.
pub fn check(probes: &[Probe], syms: &KernelSymbols, diags: &mut ProbeDiagnostics) {
    if syms.is_empty() {
        return;
    }
    for (i, p) in probes.iter().enumerate() {
        if let Some(d) = check_one(p, syms) {
            diags.push((i, d));
        }
    }
}

/// Check every kernel probe's function against a kernel's types, where
/// its symbol table is not at hand (a raw BTF file): BTF has a FUNC record
/// for each function of the build that kept its prototype, so a name that
/// has none is not in that kernel, or only inlined, or only in compiler
/// copies (`.isra.0`), which BTF does not list: without kallsyms these
/// cannot be told apart, and each means the kernel refuses the probe. A
/// `MODULE:SYMBOL` (a module's functions are not in vmlinux's BTF) and a
/// copy's own name (`NAME.isra.0`, not in any BTF) are not checked.
pub fn check_in_types(
    probes: &[Probe],
    types: &dyn crate::types::TypeSource,
    arch: crate::arch::Arch,
    diags: &mut ProbeDiagnostics,
) {
    let mut names: Option<Vec<String>> = None;
    for (i, p) in probes.iter().enumerate() {
        let Place::Kernel { symbol, spans, .. } = &p.place.node else {
            continue;
        };
        if symbol.contains([':', '.']) || matches!(types.find_func(symbol), Ok(Some(_)) | Err(_)) {
            continue;
        }
        // Another arch's syscall wrapper (`__x64_sys_openat` on arm64).
        let other = crate::arch::Arch::ALL
            .into_iter()
            .filter(|&a| a != arch)
            .find_map(|a| a.wrapped_syscall(symbol).map(|sys| (a, sys)));
        if let Some((a, sys)) = other {
            let mut d = Diagnostic::error(
                spans.name,
                format!("`{symbol}` is {a}'s syscall wrapper: this kernel is {arch}"),
            )
            .with_code(Code::Arch);
            if arch
                .wrapped_syscall(&format!("{}{sys}", arch.syscall_prefix()))
                .is_some()
            {
                d = d.with_help(format!(
                    "on {arch} the wrapper is `{}{sys}`, or use the tracepoint `t syscalls:sys_enter_{sys}`",
                    arch.syscall_prefix()
                ));
            }
            diags.push((i, d));
            continue;
        }
        let names = names.get_or_insert_with(|| types.func_names().unwrap_or_default());
        let near = crate::diag::did_you_mean(symbol, names.iter().map(String::as_str), "");
        let why = format!(
            "BTF lists the build's functions: one it lacks is not in the build, or inlined \
             everywhere, or only in compiler copies (`{symbol}.isra.0`); that kernel's \
             vmlinux (its symbol table) tells which"
        );
        diags.push((
            i,
            Diagnostic::error(
                spans.name,
                format!("no function `{symbol}` in this kernel's BTF"),
            )
            .with_code(Code::NoFunction)
            .with_help(match near {
                Some(n) => format!("{n} {why}"),
                None => why,
            }),
        ));
    }
}

/// What is wrong with one probe's place, or worth a word.
fn check_one(p: &Probe, syms: &KernelSymbols) -> Option<Diagnostic> {
    let Place::Kernel {
        symbol,
        offset,
        spans,
    } = &p.place.node
    else {
        return None;
    };
    let offset = *offset;
    let (module, name) = match symbol.split_once(':') {
        Some((m, n)) => (Some(m), n),
        None => (None, symbol.as_str()),
    };
    if module.is_some() && !syms.modules_known {
        // Only vmlinux's symbols are at hand.
        return None;
    }
    if let (Some(m), Some(at)) = (module, spans.module) {
        if !syms.has_module(m) {
            // The kernel accepts it and arms the probe when the module loads.
            return Some(Diagnostic::warning(
                at,
                format!("module `{m}` is not loaded: this probe fires only once it is"),
            ));
        }
    }
    let found: Vec<&Sym> = syms
        .named(name)
        .filter(|s| module.is_none() || syms.module(s) == module)
        .collect();
    let sym = match found[..] {
        [] => return Some(missing(syms, name, module, spans.name)),
        [s] => s,
        _ => return Some(ambiguous(syms, name, module, &found, spans.name)),
    };
    if offset != 0 && sym.size != 0 && offset >= sym.size {
        return Some(
            Diagnostic::error(
                spans.offset.unwrap_or(p.place.span),
                format!(
                    "`+{offset:#x}` is outside `{name}` ({:#x} bytes long)",
                    sym.size
                ),
            )
            .with_help(format!(
                "offsets count from the function's first byte: the last one is +{:#x}",
                sym.size - 1
            )),
        );
    }
    let refused = |why: &str, help: &str| {
        Some(
            Diagnostic::error(spans.name, format!("`{name}` cannot be probed: {why}"))
                .with_help(help),
        )
    };
    const ELSEWHERE: &str = "probe a caller or a callee instead";
    if syms
        .init_text
        .is_some_and(|(a, b)| syms.in_vmlinux(sym) && (a..b).contains(&sym.addr))
    {
        return refused(
            "it is boot-time code (`__init`), freed once the kernel has started",
            "probe a function that runs after boot",
        );
    }
    if let Some(why) = syms.blacklisted(name, sym.addr.wrapping_add(offset)) {
        return refused(&why, ELSEWHERE);
    }
    let set = syms.traceable.as_ref()?;
    if syms.traceable(set, name) {
        return None;
    }
    match syms.notrace_refused {
        Some(true) => refused(
            "ftrace cannot trace it (notrace), and this kernel \
             (CONFIG_KPROBE_EVENTS_ON_NOTRACE off) refuses kprobe events on such functions",
            ELSEWHERE,
        ),
        Some(false) => Some(Diagnostic::note(
            spans.name,
            format!(
                "`{name}` is not in available_filter_functions (notrace): the probe is a \
                 breakpoint, not an ftrace hook"
            ),
        )),
        // The build is unknown: distributions leave
        // CONFIG_KPROBE_EVENTS_ON_NOTRACE off, and then the kernel
        // refuses (Debian 6.1 and 6.12 do, VM scenario 11).
        None => refused(
            "it is not in available_filter_functions (notrace), and kernels built without \
             CONFIG_KPROBE_EVENTS_ON_NOTRACE (the default) refuse kprobe events on such \
             functions",
            ELSEWHERE,
        ),
    }
}

/// No function of that name: its compiler-made copies, else near names.
fn missing(syms: &KernelSymbols, name: &str, module: Option<&str>, span: Span) -> Diagnostic {
    let err = Diagnostic::error(
        span,
        match module {
            Some(m) => format!("no function `{name}` in module `{m}`"),
            None => format!("no function `{name}` in {}", syms.kernel),
        },
    )
    .with_code(Code::NoFunction);
    let copies = syms.copies(name, module);
    if !copies.is_empty() {
        let list: Vec<String> = copies
            .iter()
            .map(|(n, count)| match count {
                1 => format!("`{n}`"),
                c => format!("`{n}` ({c} functions of that name)"),
            })
            .collect();
        return err.with_code(Code::OnlyCopies).with_help(format!(
            "`{name}` was compiled into copies: write one of {}",
            list.join(", ")
        ));
    }
    if let Some(m) = module {
        // In the kernel, just not in that module?
        let elsewhere: Vec<Option<&str>> = syms.named(name).map(|s| syms.module(s)).collect();
        if let Some(other) = elsewhere.first() {
            return err.with_help(match other {
                None => format!("`{name}` is in vmlinux, not in module `{m}`: write `{name}`"),
                Some(o) => format!("`{name}` is in module `{o}`: write `{o}:{name}`"),
            });
        }
    }
    let Some(near) = syms.did_you_mean(name, module) else {
        return err
            .with_help("if it was inlined, it has no symbol of its own: probe its caller instead");
    };
    err.with_help(near)
}

/// Several functions (static ones of different files) share the name.
fn ambiguous(
    syms: &KernelSymbols,
    name: &str,
    module: Option<&str>,
    found: &[&Sym],
    span: Span,
) -> Diagnostic {
    const SHOWN: usize = 4;
    // Addresses where known (a module's marked), else only whose they are.
    let list = if syms.addrs_known {
        let mut l: Vec<String> = found
            .iter()
            .take(SHOWN)
            .map(|s| match syms.module(s) {
                Some(m) => format!("{:#x} in module `{m}`", s.addr),
                None => format!("{:#x}", s.addr),
            })
            .collect();
        if found.len() > SHOWN {
            l.push(format!("{} more", found.len() - SHOWN));
        }
        format!("at {}", join_and(&l))
    } else {
        let mut owners: Vec<String> = found
            .iter()
            .map(|s| match syms.module(s) {
                Some(m) => format!("module `{m}`"),
                None => "vmlinux".to_owned(),
            })
            .collect();
        owners.dedup();
        format!("in {}", join_and(&owners))
    };
    let mut help = format!(
        "static functions of different files share the name ({list}): the kernel \
         cannot tell them apart (6.6 and later refuse the probe, older kernels take \
         the first); probe a caller or a callee with a unique name instead"
    );
    if module.is_none() {
        // `MODULE:NAME` picks a copy that is the only one in its module.
        let mut unique: Vec<&str> = Vec::new();
        for s in found {
            if let Some(m) = syms.module(s) {
                let mine = found.iter().filter(|t| syms.module(t) == Some(m)).count();
                if mine == 1 && !unique.contains(&m) {
                    unique.push(m);
                }
            }
        }
        if let Some(m) = unique.first() {
            help.push_str(&format!(
                ", or write `{m}:{name}` for the one in module `{m}`"
            ));
        }
    }
    Diagnostic::error(
        span,
        format!(
            "`{name}` names {} functions in {}",
            found.len(),
            syms.kernel
        ),
    )
    .with_help(help)
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Level;
    use crate::spec::parse_probe;

    /// Real lines of this host's /proc/kallsyms (6.18, x86_64): `vfs_read`
    /// (0x3d0 bytes), a `set_ptes` that exists only as copies (two
    /// `.isra.0`, three `.constprop.0`), `__btrfs_free_extent.isra.0` with
    /// its `.cold` part, three of the ten `type_show`s, `jhash` beside
    /// `jhash.constprop.0`, the `.noinstr.text` markers around
    /// `do_syscall_64`, a data symbol, and `.init.text` (`_sinittext` ..
    /// `_einittext`) with the boot-time `acpi_sysfs_init` in it.
    const KALLSYMS: &str = "\
ffffffff8121ce81 t btrfs_lookup_extent_info.cold
ffffffff8121ce9b t __btrfs_free_extent.isra.0.cold
ffffffff8121d2c3 t __btrfs_run_delayed_refs.cold
ffffffff8130c4b0 t __pfx_type_show
ffffffff8130c4c0 t type_show
ffffffff8130c620 T __pfx_e820__mapped_any
ffffffff813869d0 t jhash
ffffffff81386b30 T __pfx___traceiter_workqueue_queue_work
ffffffff813a0cd0 t __pfx_type_show
ffffffff813a0ce0 t type_show
ffffffff813a0d20 t __pfx_force_show
ffffffff813f60d0 t __pfx_type_show
ffffffff813f60e0 t type_show
ffffffff813f6160 t __pfx_chip_name_show
ffffffff81544270 t jhash.constprop.0
ffffffff815443f0 t __pfx_populate_cand_cache.constprop.0
ffffffff815f8820 t __pfx_set_ptes.isra.0
ffffffff815f8830 t set_ptes.isra.0
ffffffff815f88c0 t __pfx_swap_pte_batch
ffffffff81617e80 t __pfx_set_ptes.isra.0
ffffffff81617e90 t set_ptes.isra.0
ffffffff81617f20 t __pfx_page_vma_mkclean_one.constprop.0
ffffffff81667060 t __pfx_set_ptes.constprop.0
ffffffff81667070 t set_ptes.constprop.0
ffffffff816670a0 t __pfx_region_del
ffffffff816b50a0 t __pfx_set_ptes.constprop.0
ffffffff816b50b0 t set_ptes.constprop.0
ffffffff816b50e0 t __pfx_uffd_lock_vma
ffffffff816d2220 t __pfx_do_sys_openat2
ffffffff816d2230 t do_sys_openat2
ffffffff816d2310 T __pfx_file_open_name
ffffffff816d4250 t vfs_readv
ffffffff816d4570 t __pfx_do_readv
ffffffff816d5b60 T __pfx_vfs_read
ffffffff816d5b70 T vfs_read
ffffffff816d5f40 T __pfx___kernel_write_iter
ffffffff817987c0 t __pfx_set_ptes.constprop.0
ffffffff817987d0 t set_ptes.constprop.0
ffffffff81798800 t __pfx_gather_pte_stats
ffffffff819aa540 t __pfx___btrfs_free_extent.isra.0
ffffffff819aa550 t __btrfs_free_extent.isra.0
ffffffff819ab570 t __pfx___btrfs_run_delayed_refs
ffffffff8225a5f0 T __pfx_write_ibpb
ffffffff8225a5f0 T __noinstr_text_start
ffffffff8225a600 T write_ibpb
ffffffff8225a640 T __pfx_do_syscall_64
ffffffff8225a650 T do_syscall_64
ffffffff8225a8e0 t __pfx___do_fast_syscall_32
ffffffff8225a8f0 t __do_fast_syscall_32
ffffffff82262705 T __cpuidle_text_end
ffffffff82262705 T __noinstr_text_end
ffffffff82262710 t __pfx_rest_init
ffffffff82881b30 D __start___jump_table
ffffffff83780000 T _sinittext
ffffffff83780000 B __init_begin
ffffffff837d8540 T __pfx_acpi_sysfs_init
ffffffff837d8550 T acpi_sysfs_init
ffffffff837d8620 T __pfx_acpi_tb_parse_root_table
ffffffff837f6810 T _einittext
";

    /// Module lines as kallsyms prints them (`\t[module]`); this host has
    /// no modules, so these are made up: a `type_show` of module `hid`,
    /// and a module with a function of its own.
    const MODULES: &str = "\
ffffffffc0a01000 t hid_type_attr\t[hid]
ffffffffc0a01040 t type_show\t[hid]
ffffffffc0a010c0 t hid_bus_match\t[hid]
ffffffffc0b00000 T nf_hook_slow_mod\t[nf_mod]
";

    fn syms() -> KernelSymbols {
        KernelSymbols::from_text(KALLSYMS, None, None)
    }

    /// The warnings and notes of one probe, or its error.
    fn run(spec: &str, k: &KernelSymbols) -> Result<Vec<Diagnostic>, Diagnostic> {
        let p = parse_probe(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        let mut diags = Vec::new();
        check(std::slice::from_ref(&p), k, &mut diags);
        let diags: Vec<Diagnostic> = diags.into_iter().map(|(_, d)| d).collect();
        match diags.iter().find(|d| d.is_error()) {
            Some(e) => Err(e.clone()),
            None => Ok(diags),
        }
    }

    /// The error's message, the text under its span, and its help.
    fn fails(spec: &str, k: &KernelSymbols) -> (String, String, String) {
        match run(spec, k) {
            Ok(n) => panic!("{spec}: passed with notes {n:?}"),
            Err(e) => (
                e.to_string(),
                e.span
                    .map_or(String::new(), |s| spec[s.start..s.end].to_owned()),
                e.help.unwrap_or_default(),
            ),
        }
    }

    #[test]
    fn parses_real_kallsyms() {
        let k = syms();
        assert!(k.addresses_known());
        assert_eq!(k.functions("vfs_read"), vec![(0xffffffff816d5b70, 0x3d0)]);
        // The last text symbol: no neighbour, so no size.
        assert_eq!(k.functions("_einittext"), vec![(0xffffffff837f6810, 0)]);
        // Data symbols are not functions.
        assert!(k.functions("__start___jump_table").is_empty());
        assert_eq!(k.functions("type_show").len(), 3);
    }

    #[test]
    fn existing_functions_pass() {
        let k = syms();
        for spec in [
            "p vfs_read",
            "r vfs_read",
            "p vfs_read+4",
            "p vfs_read+0x3cf",
            "p jhash",
            "p jhash.constprop.0",
            "p __btrfs_free_extent.isra.0",
            "t sched:sched_switch",
            "p /bin/true:main",
        ] {
            assert_eq!(run(spec, &k).unwrap(), vec![], "{spec}");
        }
    }

    #[test]
    fn unknown_function_with_nearest_names() {
        let (msg, at, help) = fails("p vfs_raed cnt=%2", &syms());
        assert_eq!(msg, "no function `vfs_raed` in the running kernel");
        assert_eq!(at, "vfs_raed");
        assert_eq!(help, "did you mean `vfs_read`?");
        let (_, at, help) = fails("p nothing_like_this_at_all+8", &syms());
        assert_eq!(at, "nothing_like_this_at_all");
        assert_eq!(
            help,
            "if it was inlined, it has no symbol of its own: probe its caller instead"
        );
    }

    #[test]
    fn compiler_copies_are_the_choices() {
        let (msg, at, help) = fails("p set_ptes", &syms());
        assert_eq!(msg, "no function `set_ptes` in the running kernel");
        assert_eq!(at, "set_ptes");
        assert_eq!(
            help,
            "`set_ptes` was compiled into copies: write one of \
             `set_ptes.constprop.0` (3 functions of that name), \
             `set_ptes.isra.0` (2 functions of that name)"
        );
        // The `.cold` part is no entry point.
        let (_, _, help) = fails("p __btrfs_free_extent", &syms());
        assert_eq!(
            help,
            "`__btrfs_free_extent` was compiled into copies: write one of \
             `__btrfs_free_extent.isra.0`"
        );
    }

    #[test]
    fn a_name_of_several_functions_is_refused() {
        let (msg, at, help) = fails("p type_show buf=%2", &syms());
        assert_eq!(msg, "`type_show` names 3 functions in the running kernel");
        assert_eq!(at, "type_show");
        assert_eq!(
            help,
            "static functions of different files share the name (at 0xffffffff8130c4c0, \
             0xffffffff813a0ce0 and 0xffffffff813f60e0): the kernel cannot tell them apart \
             (6.6 and later refuse the probe, older kernels take the first); probe a caller \
             or a callee with a unique name instead"
        );
        let (msg, _, _) = fails("p set_ptes.isra.0", &syms());
        assert_eq!(
            msg,
            "`set_ptes.isra.0` names 2 functions in the running kernel"
        );
    }

    #[test]
    fn offset_past_the_end() {
        let (msg, at, help) = fails("p vfs_read+0x3d0 x=%ax", &syms());
        assert_eq!(msg, "`+0x3d0` is outside `vfs_read` (0x3d0 bytes long)");
        assert_eq!(at, "+0x3d0");
        assert_eq!(
            help,
            "offsets count from the function's first byte: the last one is +0x3cf"
        );
        let (msg, at, _) = fails("p vfs_read+100000", &syms());
        assert_eq!(msg, "`+0x186a0` is outside `vfs_read` (0x3d0 bytes long)");
        assert_eq!(at, "+100000");
    }

    #[test]
    fn hidden_addresses_skip_the_offset_check() {
        // As a non-root user reads it: every address 0.
        let zeroed: String = KALLSYMS
            .lines()
            .map(|l| format!("0000000000000000{}\n", &l[16..]))
            .collect();
        let k = KernelSymbols::from_text(&zeroed, None, None);
        assert!(!k.addresses_known());
        assert_eq!(run("p vfs_read+0x100000", &k).unwrap(), vec![]);
        // Still unique, still missing, still several.
        assert!(fails("p set_ptes", &k).2.contains("`set_ptes.isra.0`"));
        let (msg, _, help) = fails("p type_show", &k);
        assert_eq!(msg, "`type_show` names 3 functions in the running kernel");
        assert!(
            help.starts_with("static functions of different files share the name (in vmlinux):")
        );
        // The section fallback needs addresses.
        assert_eq!(run("p do_syscall_64", &k).unwrap(), vec![]);
    }

    /// The blacklist in the format of kernel/kprobes.c's
    /// kprobe_blacklist_seq_show (`0x%px-0x%px\t%ps`); not readable on this
    /// host (no debugfs), so the entries are written by hand.
    const BLACKLIST_TEXT: &str = "\
0xffffffff816d2230-0xffffffff816d2310\tdo_sys_openat2
0xffffffffc0a010c0-0xffffffffc0a01100\thid_bus_match [hid]
";

    #[test]
    fn blacklisted_functions_are_refused() {
        let k = KernelSymbols::from_text(KALLSYMS, Some(BLACKLIST_TEXT), None);
        let (msg, at, help) = fails("p do_sys_openat2+4", &k);
        assert_eq!(
            msg,
            "`do_sys_openat2` cannot be probed: it is on the kernel's kprobe blacklist \
             (NOKPROBE_SYMBOL or a kprobes-internal function)"
        );
        assert_eq!(at, "do_sys_openat2");
        assert_eq!(help, "probe a caller or a callee instead");
        assert_eq!(run("p vfs_read", &k).unwrap(), vec![]);
        // With the file read, it alone decides (the section is not in it).
        assert_eq!(run("p do_syscall_64", &k).unwrap(), vec![]);
        // A copy of a blacklisted function is refused with it.
        let with_copy = format!("{KALLSYMS}ffffffff82300000 t do_sys_openat2.part.0\n");
        let k2 = KernelSymbols::from_text(&with_copy, Some(BLACKLIST_TEXT), None);
        assert!(fails("p do_sys_openat2.part.0", &k2)
            .0
            .contains("kprobe blacklist"));
        // Names hidden behind zero addresses still match.
        let hidden = BLACKLIST_TEXT.replace("0xffffffff", "0x00000000");
        let k = KernelSymbols::from_text(KALLSYMS, Some(&hidden), None);
        assert!(fails("p do_sys_openat2", &k).0.contains("kprobe blacklist"));
    }

    #[test]
    fn boot_time_functions_are_refused() {
        let (msg, at, help) = fails("p acpi_sysfs_init", &syms());
        assert_eq!(
            msg,
            "`acpi_sysfs_init` cannot be probed: it is boot-time code (`__init`), freed once \
             the kernel has started"
        );
        assert_eq!(at, "acpi_sysfs_init");
        assert_eq!(help, "probe a function that runs after boot");
    }

    #[test]
    fn noinstr_section_without_the_blacklist_file() {
        let (msg, at, _) = fails("p do_syscall_64", &syms());
        assert_eq!(
            msg,
            "`do_syscall_64` cannot be probed: it is in `.noinstr.text`, which the kernel \
             never lets kprobes into"
        );
        assert_eq!(at, "do_syscall_64");
        assert_eq!(run("p vfs_read", &syms()).unwrap(), vec![]);
    }

    #[test]
    fn functions_ftrace_cannot_trace() {
        // `name [module]` lines as tracefs prints module functions.
        let filter = "vfs_read\nset_ptes\ntype_show [hid]\n";
        let k = KernelSymbols::from_text(KALLSYMS, None, Some(filter));
        assert_eq!(run("p vfs_read", &k).unwrap(), vec![]);
        // The build unknown: refused, as distribution kernels do.
        let (msg, _, _) = fails("p do_sys_openat2 dfd=%0", &k);
        assert_eq!(
            msg,
            "`do_sys_openat2` cannot be probed: it is not in available_filter_functions \
             (notrace), and kernels built without CONFIG_KPROBE_EVENTS_ON_NOTRACE (the \
             default) refuse kprobe events on such functions"
        );
        // A kernel that says how it was built: refused, or only a note.
        let refuses = KernelSymbols::from_text(KALLSYMS, None, Some(filter)).with_kernel_config(
            "CONFIG_DYNAMIC_FTRACE=y\n# CONFIG_KPROBE_EVENTS_ON_NOTRACE is not set\n",
        );
        let (msg, _, _) = fails("p do_sys_openat2", &refuses);
        assert!(msg.starts_with("`do_sys_openat2` cannot be probed: ftrace cannot trace it"));
        let allows = KernelSymbols::from_text(KALLSYMS, None, Some(filter))
            .with_kernel_config("CONFIG_DYNAMIC_FTRACE=y\nCONFIG_KPROBE_EVENTS_ON_NOTRACE=y\n");
        let notes = run("p do_sys_openat2", &allows).unwrap();
        assert_eq!(notes[0].level, Level::Note);
        // A suffixed copy counts as traceable when its base name is.
        let k = KernelSymbols::from_text(
            &format!("{KALLSYMS}ffffffff82300000 t set_ptes\n"),
            None,
            Some(filter),
        );
        let notes = run("p set_ptes.constprop.0", &k);
        assert!(notes.is_err(), "still several functions: {notes:?}");
        assert_eq!(run("p set_ptes", &k).unwrap(), vec![]);
    }

    #[test]
    fn module_functions() {
        let k = KernelSymbols::from_text(&format!("{KALLSYMS}{MODULES}"), None, None);
        assert_eq!(run("p hid:hid_bus_match+4", &k).unwrap(), vec![]);
        assert_eq!(run("p hid:type_show", &k).unwrap(), vec![]);
        // The module's last function: size unknown, offset unchecked.
        assert_eq!(run("p nf_mod:nf_hook_slow_mod+0x5000", &k).unwrap(), vec![]);
        // A module's last function: the next address is another module's,
        // so its size is unknown.
        assert_eq!(k.functions("hid_bus_match"), vec![(0xffffffffc0a010c0, 0)]);
        assert_eq!(
            k.functions("hid_type_attr"),
            vec![(0xffffffffc0a01000, 0x40)]
        );

        let (msg, at, help) = fails("p type_show", &k);
        assert_eq!(msg, "`type_show` names 4 functions in the running kernel");
        assert_eq!(at, "type_show");
        assert!(
            help.contains("(at 0xffffffff8130c4c0, 0xffffffff813a0ce0, 0xffffffff813f60e0 and 0xffffffffc0a01040 in module `hid`)"),
            "{help}"
        );
        assert!(
            help.ends_with(", or write `hid:type_show` for the one in module `hid`"),
            "{help}"
        );

        let (msg, at, help) = fails("p hid:vfs_read", &k);
        assert_eq!(msg, "no function `vfs_read` in module `hid`");
        assert_eq!(at, "vfs_read");
        assert_eq!(
            help,
            "`vfs_read` is in vmlinux, not in module `hid`: write `vfs_read`"
        );
        let (_, _, help) = fails("p nf_mod:hid_bus_match", &k);
        assert_eq!(
            help,
            "`hid_bus_match` is in module `hid`: write `hid:hid_bus_match`"
        );
        let (_, _, help) = fails("p hid:hid_bus_matc", &k);
        assert_eq!(help, "did you mean `hid_bus_match`?");

        // Not loaded: the kernel arms the probe when it loads.
        let notes = run("p ext4:ext4_file_open", &k).unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].level, Level::Warning);
        assert_eq!(
            notes[0].message,
            "module `ext4` is not loaded: this probe fires only once it is"
        );
        assert_eq!(notes[0].span, Some(Span::new(2, 6)));
    }

    #[test]
    fn every_probe_is_checked_and_no_kallsyms() {
        let probes = [
            parse_probe("p vfs_raed").unwrap(),
            parse_probe("p vfs_read").unwrap(),
            parse_probe("p set_ptes").unwrap(),
        ];
        let mut diags = Vec::new();
        check(&probes, &syms(), &mut diags);
        let which: Vec<(usize, &str)> = diags.iter().map(|(i, d)| (*i, &*d.message)).collect();
        assert_eq!(
            which,
            [
                (0, "no function `vfs_raed` in the running kernel"),
                (2, "no function `set_ptes` in the running kernel")
            ]
        );
        // Nothing read: nothing checked.
        let empty = KernelSymbols::from_text("", None, None);
        assert!(empty.is_empty());
        let mut diags = Vec::new();
        check(&probes, &empty, &mut diags);
        assert_eq!(diags, vec![]);
    }
}
