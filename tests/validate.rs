//! Probe targets validated against this machine's own kernel: the real
//! /proc/kallsyms (and the blacklist / available_filter_functions where
//! readable). The examples (a family of `.isra` copies, a name several
//! static functions share) are found in kallsyms at run time, so that the
//! test holds on any kernel.

use std::collections::HashMap;
use std::time::Instant;

use coolkprobe::diag::Diagnostic;
use coolkprobe::kernel::{check, KernelSymbols};
use coolkprobe::spec::parse_probe;

fn load() -> KernelSymbols {
    let t = Instant::now();
    let k = KernelSymbols::load().expect("KernelSymbols::load");
    eprintln!("KernelSymbols::load: {:?} for {k:?}", t.elapsed());
    // Root sees real addresses (unless kptr_restrict=2): the offset check
    // must then run, not be skipped.
    let root = unsafe { libc::geteuid() } == 0;
    let restrict = std::fs::read_to_string("/proc/sys/kernel/kptr_restrict").unwrap_or_default();
    if root && restrict.trim() != "2" {
        assert!(
            k.addresses_known(),
            "root but kallsyms addresses are hidden"
        );
    }
    k
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

fn fails(spec: &str, k: &KernelSymbols) -> Diagnostic {
    match run(spec, k) {
        Ok(notes) => panic!("{spec} passed (notes: {notes:?})"),
        Err(e) => e,
    }
}

/// Text-symbol names of /proc/kallsyms (module column dropped), with how
/// many functions carry each.
fn kallsyms_counts() -> HashMap<String, usize> {
    let text = std::fs::read_to_string("/proc/kallsyms").expect("/proc/kallsyms");
    let mut counts = HashMap::new();
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() >= 3 && matches!(w[1], "t" | "T" | "w" | "W") {
            *counts.entry(w[2].to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn existing_function_passes() {
    let k = load();
    assert!(k.len() > 10_000, "only {} functions", k.len());
    let notes = run("p vfs_read count=%2", &k).expect("vfs_read");
    assert!(notes.is_empty(), "{notes:?}");
    run("r vfs_read", &k).expect("r vfs_read");
}

#[test]
fn nonexistent_function_has_suggestions() {
    let k = load();
    let t = Instant::now();
    let e = fails("p vfs_raed", &k);
    // The nearest-name search runs over every function name.
    eprintln!("suggestions for vfs_raed: {:?}", t.elapsed());
    assert_eq!(
        e.to_string(),
        "no function `vfs_raed` in the running kernel"
    );
    assert_eq!(e.span, Some(coolkprobe::diag::Span::new(2, 10)));
    let help = e.help.unwrap_or_default();
    assert!(help.starts_with("did you mean "), "{help}");
    assert!(help.contains("`vfs_read`"), "{help}");
}

#[test]
fn compiler_copies_are_listed() {
    let counts = kallsyms_counts();
    // A base name with an `.isra.N` copy and no function of its own.
    let mut bases: Vec<&str> = counts
        .keys()
        .filter(|n| !n.starts_with("__pfx_") && !n.ends_with(".cold"))
        .filter_map(|n| n.split_once(".isra.").map(|(b, _)| b))
        .filter(|b| !counts.contains_key(*b))
        .collect();
    bases.sort();
    let base = *bases
        .first()
        .expect("no .isra.N-only function in this kernel");
    let k = load();
    let e = fails(&format!("p {base}"), &k);
    assert_eq!(
        e.to_string(),
        format!("no function `{base}` in the running kernel")
    );
    let help = e.help.unwrap_or_default();
    assert!(
        help.starts_with(&format!("`{base}` was compiled into copies: write one of ")),
        "{help}"
    );
    for n in counts.keys() {
        let copy = n
            .strip_prefix(base)
            .is_some_and(|r| r.starts_with('.') && !n.ends_with(".cold"));
        assert_eq!(help.contains(&format!("`{n}`")), copy, "{n} in: {help}");
    }
}

#[test]
fn duplicated_static_name_is_refused() {
    let counts = kallsyms_counts();
    let mut dups: Vec<(&String, &usize)> = counts
        .iter()
        .filter(|(n, c)| **c > 1 && !n.starts_with("__pfx_") && !n.contains('.'))
        .collect();
    dups.sort();
    let (name, count) = dups.first().copied().expect("no duplicated name");
    let k = load();
    let e = fails(&format!("p {name}"), &k);
    assert!(e.message.contains("functions in the running kernel"), "{e}");
    assert_eq!(
        e.to_string(),
        format!("`{name}` names {count} functions in the running kernel")
    );
    let help = e.help.unwrap_or_default();
    assert!(help.contains("the kernel cannot tell them apart"), "{help}");
}

#[test]
fn offset_inside_and_past_the_end() {
    let k = load();
    if !k.addresses_known() {
        // Not root (checked in load()): sizes are unknown, nothing to test.
        return;
    }
    let sizes = k.functions("vfs_read");
    let [(_, size)] = sizes[..] else {
        panic!("vfs_read: {sizes:?}");
    };
    assert!(size > 4, "vfs_read is {size} bytes");
    run("p vfs_read+4", &k).expect("vfs_read+4");
    run(&format!("p vfs_read+{:#x}", size - 1), &k).expect("last byte");
    let spec = format!("p vfs_read+{size:#x}");
    let e = fails(&spec, &k);
    assert_eq!(
        e.to_string(),
        format!("`+{size:#x}` is outside `vfs_read` ({size:#x} bytes long)")
    );
    let at = e.span.unwrap();
    assert_eq!(&spec[at.start..at.end], format!("+{size:#x}"));
}

#[test]
fn boot_time_function_is_refused() {
    let k = load();
    if !k.addresses_known() {
        return;
    }
    // A function of .init.text, which kallsyms still lists after boot.
    let text = std::fs::read_to_string("/proc/kallsyms").expect("/proc/kallsyms");
    let counts = kallsyms_counts();
    let addr = |want: &str| {
        text.lines().find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 3 && w[2] == want).then(|| u64::from_str_radix(w[0], 16).ok())?
        })
    };
    let (Some(start), Some(end)) = (addr("_sinittext"), addr("_einittext")) else {
        panic!("no _sinittext/_einittext in /proc/kallsyms");
    };
    let name = text
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let a = u64::from_str_radix(w.first()?, 16).ok()?;
            let ok = w.len() == 3
                && matches!(w[1], "t" | "T")
                && (start..end).contains(&a)
                && !w[2].starts_with('_')
                && counts.get(w[2]) == Some(&1);
            ok.then(|| w[2].to_owned())
        })
        .next()
        .expect("no boot-time function");
    let e = fails(&format!("p {name}"), &k);
    assert_eq!(
        e.to_string(),
        format!(
            "`{name}` cannot be probed: it is boot-time code (`__init`), freed once the \
             kernel has started"
        )
    );
}
