//! Kernel probe targets checked against the running kernel before anything
//! is installed (SPEC 4): the function exists under that exact name and
//! only once, the kernel lets kprobes onto it (boot-time code, blacklist,
//! notrace), and `+OFFSET` lies inside it.
//!
//! Everything comes from what the kernel already publishes: /proc/kallsyms
//! (names, modules, addresses and hence sizes), debugfs'
//! `kprobes/blacklist` and tracefs' `available_filter_functions`. Only
//! kallsyms is required; without the others their checks are skipped
//! (the blacklist partly falls back on section markers in kallsyms).

use std::io::{self, Read as _};
use std::path::Path;

use crate::compile::suggest::nearest;
use crate::compile::{CompileError, ErrorKind, Level, Note};
use crate::spec::{Place, Probe, Span};

const KALLSYMS: &str = "/proc/kallsyms";
const BLACKLIST: &str = "/sys/kernel/debug/kprobes/blacklist";
/// Where tracefs may be mounted, as src/tracefs looks for it. Not mounted
/// here: validation only reads what is already there.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// One text symbol of kallsyms. Names are byte ranges into the file's
/// text, so that loading allocates nothing per symbol.
#[derive(Clone, Copy, Debug)]
struct Sym {
    addr: u64,
    /// Bytes up to the next text symbol of the same module; 0 when unknown
    /// (addresses hidden, or the last symbol).
    size: u64,
    name: (u32, u32),
    /// The `[module]` column without brackets; empty for vmlinux.
    module: (u32, u32),
}

/// A sorted set of names, each a byte range of one owned text.
struct NameSet {
    text: String,
    names: Vec<(u32, u32)>,
}

impl NameSet {
    /// `pick` chooses each line's name (a subslice of the line), if any.
    fn new(text: String, pick: impl Fn(&str) -> Option<&str>) -> io::Result<NameSet> {
        check_len(&text)?;
        let base = text.as_ptr() as usize;
        let mut names: Vec<(u32, u32)> = text
            .lines()
            .filter_map(&pick)
            .map(|n| range(base, n))
            .collect();
        names.sort_unstable_by(|a, b| slice(&text, *a).cmp(slice(&text, *b)));
        names.dedup_by(|a, b| slice(&text, *a) == slice(&text, *b));
        Ok(NameSet { text, names })
    }

    fn contains(&self, name: &str) -> bool {
        self.names
            .binary_search_by(|r| slice(&self.text, *r).cmp(name))
            .is_ok()
    }
}

/// The kprobe blacklist as debugfs shows it: `0xSTART-0xEND\tsym [mod]`.
struct Blacklist {
    names: NameSet,
    /// Address ranges (end exclusive), when the file shows addresses.
    ranges: Vec<(u64, u64)>,
}

impl Blacklist {
    fn parse(text: String) -> io::Result<Blacklist> {
        let mut ranges = Vec::new();
        for line in text.lines() {
            let Some((span, _)) = line.split_once('\t') else {
                continue;
            };
            let Some((a, b)) = span.split_once('-') else {
                continue;
            };
            if let (Some(a), Some(b)) = (hex(a), hex(b)) {
                if a != 0 && b > a {
                    ranges.push((a, b));
                }
            }
        }
        ranges.sort_unstable();
        let names = NameSet::new(text, |l| {
            l.split_once('\t')
                .and_then(|(_, rest)| rest.split_ascii_whitespace().next())
        })?;
        Ok(Blacklist { names, ranges })
    }

    /// Entries are whole functions, which do not overlap: only the last
    /// one starting at or below `addr` can hold it.
    fn covers(&self, addr: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.0 <= addr);
        i > 0 && addr < self.ranges[i - 1].1
    }
}

/// What the running kernel says about its functions: every text symbol
/// of /proc/kallsyms and, when readable, the kprobe blacklist and the
/// functions ftrace can trace.
pub struct KernelSymbols {
    text: String,
    syms: Vec<Sym>,
    /// Indices into `syms`, sorted by name.
    by_name: Vec<u32>,
    /// kallsyms shows real addresses (root; kptr_restrict allowing), so
    /// sizes are known.
    addrs_known: bool,
    blacklist: Option<Blacklist>,
    /// Sections the kernel never lets kprobes into, from kallsyms' markers:
    /// (section, start, end). Used when the blacklist file is unreadable.
    areas: Vec<(&'static str, u64, u64)>,
    /// vmlinux's `.init.text`: kallsyms still lists its functions, but the
    /// memory is freed after boot and kprobes refuse it.
    init_text: Option<(u64, u64)>,
    traceable: Option<NameSet>,
    /// Whether kprobe events refuse functions ftrace cannot trace
    /// (CONFIG_KPROBE_EVENTS_ON_NOTRACE off), when the kernel's config says.
    notrace_refused: Option<bool>,
}

impl std::fmt::Debug for KernelSymbols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelSymbols")
            .field("functions", &self.syms.len())
            .field("addrs_known", &self.addrs_known)
            .field(
                "blacklist",
                &self.blacklist.as_ref().map(|b| b.names.names.len()),
            )
            .field("traceable", &self.traceable.as_ref().map(|t| t.names.len()))
            .field("notrace_refused", &self.notrace_refused)
            .finish()
    }
}

impl KernelSymbols {
    /// The running kernel's: /proc/kallsyms (required: an error if it
    /// cannot be read or lists no function), the kprobe blacklist if
    /// debugfs is mounted and readable, `available_filter_functions` if
    /// tracefs is, and `/boot/config-RELEASE` if present. Mounts nothing.
    pub fn load() -> io::Result<KernelSymbols> {
        let kallsyms = read_big(Path::new(KALLSYMS))?;
        let blacklist = read_big(Path::new(BLACKLIST)).ok();
        let filter = TRACEFS
            .iter()
            .find_map(|d| read_big(&Path::new(d).join("available_filter_functions")).ok());
        let mut syms = KernelSymbols::build(kallsyms, blacklist, filter)?;
        if syms.syms.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{KALLSYMS} lists no functions"),
            ));
        }
        if let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
            let path = format!("/boot/config-{}", release.trim());
            if let Ok(config) = std::fs::read_to_string(path) {
                syms = syms.with_kernel_config(&config);
            }
        }
        Ok(syms)
    }

    /// From the texts of /proc/kallsyms, the kprobe blacklist and
    /// `available_filter_functions` (tests, other machines).
    pub fn from_text(
        kallsyms: &str,
        blacklist: Option<&str>,
        filter_functions: Option<&str>,
    ) -> KernelSymbols {
        let build = KernelSymbols::build(
            kallsyms.to_owned(),
            blacklist.map(str::to_owned),
            filter_functions.map(str::to_owned),
        );
        // Only texts of 4 GiB or more fail; take nothing from them.
        build.unwrap_or_else(|_| KernelSymbols::empty())
    }

    /// The kernel's build configuration (`/boot/config-*` text): whether
    /// kprobe events refuse functions that ftrace cannot trace.
    pub fn with_kernel_config(mut self, config: &str) -> KernelSymbols {
        let set = |opt: &str| {
            config
                .lines()
                .any(|l| l.strip_prefix(opt).and_then(|r| r.strip_prefix('=')) == Some("y"))
        };
        self.notrace_refused =
            Some(set("CONFIG_DYNAMIC_FTRACE") && !set("CONFIG_KPROBE_EVENTS_ON_NOTRACE"));
        self
    }

    /// How many text symbols were read.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// Whether kallsyms showed real addresses (then `+OFFSET` is checked).
    pub fn addresses_known(&self) -> bool {
        self.addrs_known
    }

    /// Whether the kprobe blacklist was read.
    pub fn has_blacklist(&self) -> bool {
        self.blacklist.is_some()
    }

    /// Whether `available_filter_functions` was read.
    pub fn has_filter_functions(&self) -> bool {
        self.traceable.is_some()
    }

    /// `(address, size)` of each function called `name` (size 0: unknown).
    pub fn functions(&self, name: &str) -> Vec<(u64, u64)> {
        self.named(name).map(|s| (s.addr, s.size)).collect()
    }

    fn empty() -> KernelSymbols {
        KernelSymbols {
            text: String::new(),
            syms: Vec::new(),
            by_name: Vec::new(),
            addrs_known: false,
            blacklist: None,
            areas: Vec::new(),
            init_text: None,
            traceable: None,
            notrace_refused: None,
        }
    }

    fn build(
        text: String,
        blacklist: Option<String>,
        filter: Option<String>,
    ) -> io::Result<KernelSymbols> {
        check_len(&text)?;
        let base = text.as_ptr() as usize;
        let mut syms = Vec::with_capacity(text.len() / 40);
        for line in text.lines() {
            let Some(sym) = crate::kallsyms::text_symbol(line) else {
                continue;
            };
            syms.push(Sym {
                addr: sym.addr,
                size: 0,
                name: range(base, sym.name),
                module: match sym.module {
                    Some(m) if !m.is_empty() => range(base, m),
                    _ => (0, 0),
                },
            });
        }
        let addrs_known = syms.iter().any(|s| s.addr != 0);
        if addrs_known {
            fill_sizes(&text, &mut syms);
        }
        let mut by_name: Vec<u32> = (0..syms.len() as u32).collect();
        // Equal names stay in file order (vmlinux by address, then modules).
        by_name.sort_unstable_by(|&a, &b| {
            slice(&text, syms[a as usize].name)
                .cmp(slice(&text, syms[b as usize].name))
                .then(a.cmp(&b))
        });
        let mut out = KernelSymbols {
            text,
            syms,
            by_name,
            addrs_known,
            blacklist: blacklist.map(Blacklist::parse).transpose()?,
            areas: Vec::new(),
            init_text: None,
            traceable: filter
                .map(|t| NameSet::new(t, |l| l.split_ascii_whitespace().next()))
                .transpose()?,
            notrace_refused: None,
        };
        if addrs_known {
            out.areas = out.find_areas();
            out.init_text = out.marker_range("_sinittext", "_einittext");
        }
        Ok(out)
    }

    /// The sections `populate_kprobe_blacklist` always adds, by their
    /// start/end markers.
    fn find_areas(&self) -> Vec<(&'static str, u64, u64)> {
        let mut areas = vec![
            (
                ".kprobes.text",
                "__kprobes_text_start",
                "__kprobes_text_end",
            ),
            (
                ".noinstr.text",
                "__noinstr_text_start",
                "__noinstr_text_end",
            ),
        ];
        // The architectures whose arch_populate_kprobe_blacklist adds it.
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            areas.push((".entry.text", "__entry_text_start", "__entry_text_end"));
        }
        areas
            .into_iter()
            .filter_map(|(sec, start, end)| {
                let (a, b) = self.marker_range(start, end)?;
                Some((sec, a, b))
            })
            .collect()
    }

    /// The addresses of a start and an end marker symbol, if both are
    /// there once and in order.
    fn marker_range(&self, start: &str, end: &str) -> Option<(u64, u64)> {
        let one = |n: &str| match self.named(n).collect::<Vec<_>>()[..] {
            [s] if s.addr != 0 => Some(s.addr),
            _ => None,
        };
        let (a, b) = (one(start)?, one(end)?);
        (a < b).then_some((a, b))
    }

    fn name(&self, s: &Sym) -> &str {
        slice(&self.text, s.name)
    }

    fn module(&self, s: &Sym) -> Option<&str> {
        let m = slice(&self.text, s.module);
        (!m.is_empty()).then_some(m)
    }

    /// Positions in `by_name` of names `>= from`, while `keep` holds.
    fn sorted_from<'a>(
        &'a self,
        from: &str,
        keep: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = &'a Sym> + 'a {
        let start = self
            .by_name
            .partition_point(|&i| self.name(&self.syms[i as usize]) < from);
        self.by_name[start..]
            .iter()
            .map(|&i| &self.syms[i as usize])
            .take_while(move |s| keep(self.name(s)))
    }

    /// Every function called exactly `name`.
    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sym> + 'a {
        self.sorted_from(name, move |n| n == name)
    }

    /// Whether some symbol belongs to module `m` (the error path only).
    fn has_module(&self, m: &str) -> bool {
        self.syms.iter().any(|s| self.module(s) == Some(m))
    }

    /// The compiler's copies of `name` (`name.isra.0`, `name.constprop.0`,
    /// ...; not the `.cold` parts, which are no function's entry): each
    /// distinct name with how many functions carry it.
    fn copies(&self, name: &str, module: Option<&str>) -> Vec<(&str, usize)> {
        let prefix = format!("{name}.");
        let mut out: Vec<(&str, usize)> = Vec::new();
        for s in self.sorted_from(&prefix, |n| n.starts_with(&prefix)) {
            let n = self.name(s);
            if n.ends_with(".cold") || (module.is_some() && self.module(s) != module) {
                continue;
            }
            match out.last_mut() {
                Some((last, count)) if *last == n => *count += 1,
                _ => out.push((n, 1)),
            }
        }
        out
    }

    /// Up to three names near `want` (in `module`, if given). Skips the
    /// `__pfx_` padding symbols and `.cold` parts, and compares only names
    /// that `nearest` could pick (close in length, or extending `want`),
    /// so the ~100k names cost milliseconds.
    fn near(&self, want: &str, module: Option<&str>) -> Vec<String> {
        let mut last = "";
        let names = self.by_name.iter().filter_map(|&i| {
            let s = &self.syms[i as usize];
            let n = self.name(s);
            if n == last
                || n.starts_with("__pfx_")
                || n.ends_with(".cold")
                || (module.is_some() && self.module(s) != module)
            {
                return None;
            }
            last = n;
            let close =
                n.len().abs_diff(want.len()) <= 4 || n.starts_with(want) || n.ends_with(want);
            close.then_some(n)
        });
        nearest(want, names)
    }

    fn blacklisted(&self, name: &str, addr: u64) -> Option<String> {
        const WHY: &str = "it is on the kernel's kprobe blacklist \
                           (NOKPROBE_SYMBOL or a kprobes-internal function)";
        if let Some(b) = &self.blacklist {
            // Like within_kprobe_blacklist: a suffixed copy (`foo.isra.0`)
            // is refused when its base function is blacklisted.
            let base = name.split_once('.').is_some_and(|(base, _)| {
                self.named(base).next().is_some() && b.names.contains(base)
            });
            let hit = b.names.contains(name) || (self.addrs_known && b.covers(addr)) || base;
            return hit.then(|| WHY.to_owned());
        }
        if !self.addrs_known {
            return None;
        }
        self.areas
            .iter()
            .find(|(_, a, b)| (*a..*b).contains(&addr))
            .map(|(sec, _, _)| {
                format!("it is in `{sec}`, which the kernel never lets kprobes into")
            })
    }

    /// Whether ftrace can trace `name`: listed, or (as the kernel checks a
    /// suffixed symbol) its base name is.
    fn traceable(&self, set: &NameSet, name: &str) -> bool {
        if set.contains(name) {
            return true;
        }
        match name.split_once('.') {
            Some((base, _)) => self.named(base).next().is_some() && set.contains(base),
            None => false,
        }
    }
}

/// Check every kernel probe (`p`/`r` on `SYMBOL[+OFFSET]` or
/// `MODULE:SYMBOL[+OFFSET]`) against the running kernel. The first problem
/// stops (with the probe's index); notes and warnings that do not stop the
/// run are returned. Uprobes and tracepoints are not looked at; with no
/// kallsyms symbols at all nothing is checked.
pub fn check(probes: &[Probe], syms: &KernelSymbols) -> Result<Vec<Note>, (usize, CompileError)> {
    let mut notes = Vec::new();
    if syms.is_empty() {
        return Ok(notes);
    }
    for (i, p) in probes.iter().enumerate() {
        let Place::Kernel { symbol, offset } = &p.place.node else {
            continue;
        };
        check_one(i, p, symbol, *offset, syms, &mut notes).map_err(|e| (i, e))?;
    }
    Ok(notes)
}

/// The parts of a kernel place, `[MODULE:]NAME[+OFFSET]`, as spans.
struct Parts {
    module: Span,
    name: Span,
    offset: Span,
}

fn parts(place: Span, symbol: &str, module: Option<&str>) -> Parts {
    let clamp = |i: usize| i.clamp(place.start, place.end.max(place.start));
    let sym_end = clamp(place.start + symbol.len());
    let name_start = match module {
        Some(m) => clamp(place.start + m.len() + 1),
        None => place.start,
    };
    Parts {
        module: Span::new(place.start, clamp(place.start + module.map_or(0, str::len))),
        name: Span::new(name_start, sym_end),
        offset: if sym_end < place.end {
            Span::new(sym_end, place.end)
        } else {
            place
        },
    }
}

fn check_one(
    index: usize,
    p: &Probe,
    symbol: &str,
    offset: u64,
    syms: &KernelSymbols,
    notes: &mut Vec<Note>,
) -> Result<(), CompileError> {
    let (module, name) = match symbol.split_once(':') {
        Some((m, n)) => (Some(m), n),
        None => (None, symbol),
    };
    let at = parts(p.place.span, symbol, module);
    if let Some(m) = module {
        if !syms.has_module(m) {
            // The kernel accepts it and arms the probe when the module loads.
            notes.push(Note {
                probe: index,
                level: Level::Warning,
                span: at.module,
                msg: format!("module `{m}` is not loaded: this probe fires only once it is"),
                help: None,
            });
            return Ok(());
        }
    }
    let found: Vec<&Sym> = syms
        .named(name)
        .filter(|s| module.is_none() || syms.module(s) == module)
        .collect();
    let sym = match found[..] {
        [] => return Err(missing(syms, name, module, at.name)),
        [s] => s,
        _ => return Err(ambiguous(syms, name, module, &found, at.name)),
    };
    if offset != 0 && sym.size != 0 && offset >= sym.size {
        return Err(CompileError::new(
            at.offset,
            ErrorKind::OffsetOutsideFunction {
                offset,
                name: name.to_owned(),
                size: sym.size,
            },
        )
        .with_help(format!(
            "offsets count from the function's first byte: the last one is +{:#x}",
            sym.size - 1
        )));
    }
    if syms
        .init_text
        .is_some_and(|(a, b)| sym.module.0 == sym.module.1 && (a..b).contains(&sym.addr))
    {
        return Err(CompileError::new(
            at.name,
            ErrorKind::NotProbeable {
                name: name.to_owned(),
                why: "it is boot-time code (`__init`), freed once the kernel has started"
                    .to_owned(),
            },
        )
        .with_help("probe a function that runs after boot"));
    }
    if let Some(why) = syms.blacklisted(name, sym.addr.wrapping_add(offset)) {
        return Err(CompileError::new(
            at.name,
            ErrorKind::NotProbeable {
                name: name.to_owned(),
                why,
            },
        )
        .with_help("probe a caller or a callee instead"));
    }
    if let Some(set) = &syms.traceable {
        if !syms.traceable(set, name) {
            let ftrace = format!("`{name}` is not in available_filter_functions");
            match syms.notrace_refused {
                Some(true) => {
                    return Err(CompileError::new(
                        at.name,
                        ErrorKind::NotProbeable {
                            name: name.to_owned(),
                            why: "ftrace cannot trace it (notrace), and this kernel \
                                  (CONFIG_KPROBE_EVENTS_ON_NOTRACE off) refuses kprobe \
                                  events on such functions"
                                .to_owned(),
                        },
                    )
                    .with_help("probe a caller or a callee instead"));
                }
                Some(false) => notes.push(Note {
                    probe: index,
                    level: Level::Note,
                    span: at.name,
                    msg: format!(
                        "{ftrace} (notrace): the probe is a breakpoint, not an ftrace hook"
                    ),
                    help: None,
                }),
                // The build is unknown: distributions leave
                // CONFIG_KPROBE_EVENTS_ON_NOTRACE off, and then the kernel
                // refuses (Debian 6.1 and 6.12 do, VM scenario 11).
                None => {
                    return Err(CompileError::new(
                        at.name,
                        ErrorKind::NotProbeable {
                            name: name.to_owned(),
                            why: "it is not in available_filter_functions (notrace), and \
                                  kernels built without CONFIG_KPROBE_EVENTS_ON_NOTRACE (the \
                                  default) refuse kprobe events on such functions"
                                .to_owned(),
                        },
                    )
                    .with_help("probe a caller or a callee instead"));
                }
            }
        }
    }
    Ok(())
}

/// No function of that name: its compiler-made copies, else near names.
fn missing(syms: &KernelSymbols, name: &str, module: Option<&str>, span: Span) -> CompileError {
    let kind = match module {
        Some(m) => ErrorKind::NoSuchFunctionInModule {
            name: name.to_owned(),
            module: m.to_owned(),
        },
        None => ErrorKind::NoSuchFunction {
            name: name.to_owned(),
        },
    };
    let err = CompileError::new(span, kind);
    let copies = syms.copies(name, module);
    if !copies.is_empty() {
        let list: Vec<String> = copies
            .iter()
            .map(|(n, count)| match count {
                1 => format!("`{n}`"),
                c => format!("`{n}` ({c} functions of that name)"),
            })
            .collect();
        return err.with_help(format!(
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
    let near = syms.near(name, module);
    if near.is_empty() {
        return err
            .with_help("if it was inlined, it has no symbol of its own: probe its caller instead");
    }
    let list: Vec<String> = near.iter().map(|n| format!("`{n}`")).collect();
    err.with_help(format!("did you mean {}?", join_or(&list)))
}

/// Several functions (static ones of different files) share the name.
fn ambiguous(
    syms: &KernelSymbols,
    name: &str,
    module: Option<&str>,
    found: &[&Sym],
    span: Span,
) -> CompileError {
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
    CompileError::new(
        span,
        ErrorKind::AmbiguousFunction {
            name: name.to_owned(),
            count: found.len(),
        },
    )
    .with_help(help)
}

fn join_or(items: &[String]) -> String {
    join(items, "or")
}

fn join_and(items: &[String]) -> String {
    join(items, "and")
}

fn join(items: &[String], word: &str) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [rest @ .., last] => format!("{} {word} {last}", rest.join(", ")),
    }
}

/// Sizes from addresses: up to the next higher address of a text symbol
/// of the same module, as the kernel's own kallsyms_lookup_size_offset.
fn fill_sizes(text: &str, syms: &mut [Sym]) {
    let mut order: Vec<u32> = (0..syms.len() as u32).collect();
    order.sort_unstable_by_key(|&i| syms[i as usize].addr);
    let mut next = 0;
    for k in 0..order.len() {
        let s = syms[order[k] as usize];
        if s.addr == 0 {
            continue;
        }
        next = next.max(k + 1);
        while next < order.len() && syms[order[next] as usize].addr == s.addr {
            next += 1;
        }
        let Some(&n) = order.get(next) else {
            break;
        };
        let n = syms[n as usize];
        // Modules lie anywhere: a neighbour of another module says nothing
        // about where this function ends.
        if slice(text, n.module) == slice(text, s.module) {
            syms[order[k] as usize].size = n.addr - s.addr;
        }
    }
}

fn hex(s: &str) -> Option<u64> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

/// The byte range of `part` (a subslice) in the text starting at `base`.
fn range(base: usize, part: &str) -> (u32, u32) {
    let start = part.as_ptr() as usize - base;
    (start as u32, (start + part.len()) as u32)
}

fn slice(text: &str, r: (u32, u32)) -> &str {
    text.get(r.0 as usize..r.1 as usize).unwrap_or("")
}

/// Ranges are u32: refuse texts they cannot address.
fn check_len(text: &str) -> io::Result<()> {
    if text.len() >= u32::MAX as usize {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "text too large"));
    }
    Ok(())
}

/// A whole /proc or debugfs file (they report size 0): one large buffer.
fn read_big(path: &Path) -> io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut s = String::with_capacity(1 << 20);
    f.read_to_string(&mut s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn run(spec: &str, k: &KernelSymbols) -> Result<Vec<Note>, CompileError> {
        let p = parse_probe(spec).unwrap_or_else(|e| panic!("{spec}: {}", e.msg));
        check(std::slice::from_ref(&p), k).map_err(|(i, e)| {
            assert_eq!(i, 0);
            e
        })
    }

    /// The error's message, the text under its span, and its help.
    fn fails(spec: &str, k: &KernelSymbols) -> (String, String, String) {
        match run(spec, k) {
            Ok(n) => panic!("{spec}: passed with notes {n:?}"),
            Err(e) => (
                e.to_string(),
                spec[e.span.start..e.span.end].to_owned(),
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
            notes[0].msg,
            "module `ext4` is not loaded: this probe fires only once it is"
        );
        assert_eq!(notes[0].span, Span::new(2, 6));
    }

    #[test]
    fn second_probe_index_and_no_kallsyms() {
        let probes = [
            parse_probe("p vfs_read").unwrap(),
            parse_probe("p vfs_raed").unwrap(),
        ];
        let (i, e) = check(&probes, &syms()).unwrap_err();
        assert_eq!(i, 1);
        assert!(matches!(*e.kind, ErrorKind::NoSuchFunction { .. }));
        // Nothing read: nothing checked.
        let empty = KernelSymbols::from_text("", None, None);
        assert!(empty.is_empty());
        assert_eq!(check(&probes, &empty).unwrap(), vec![]);
    }
}
