//! The running kernel's functions, as it publishes them: /proc/kallsyms
//! (names, modules, addresses and hence sizes), debugfs'
//! `kprobes/blacklist`, tracefs' `available_filter_functions` and the
//! build configuration. Only kallsyms is required; without the others
//! the checks that need them are skipped (the blacklist partly falls back
//! on section markers in kallsyms). What is checked against this table is
//! in [`super::checks`].

use std::io::{self, Read as _};
use std::path::Path;

use crate::diag::did_you_mean;

const KALLSYMS: &str = "/proc/kallsyms";
const BLACKLIST: &str = "/sys/kernel/debug/kprobes/blacklist";
/// Where tracefs may be mounted, as src/tracefs looks for it. Not mounted
/// here: validation only reads what is already there.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// One text symbol of kallsyms. Names are byte ranges into the file's
/// text, so that loading allocates nothing per symbol.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sym {
    pub(super) addr: u64,
    /// Bytes up to the next text symbol of the same module; 0 when unknown
    /// (addresses hidden, or the last symbol).
    pub(super) size: u64,
    name: (u32, u32),
    /// The `[module]` column without brackets; empty for vmlinux.
    module: (u32, u32),
}

/// A sorted set of names, each a byte range of one owned text.
pub(super) struct NameSet {
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

/// Whose symbols [`KernelSymbols::load`] reads, in messages.
const RUNNING: &str = "the running kernel";

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
    pub(super) addrs_known: bool,
    blacklist: Option<Blacklist>,
    /// Sections the kernel never lets kprobes into, from kallsyms' markers:
    /// (section, start, end). Used when the blacklist file is unreadable.
    areas: Vec<(&'static str, u64, u64)>,
    /// vmlinux's `.init.text`: kallsyms still lists its functions, but the
    /// memory is freed after boot and kprobes refuse it.
    pub(super) init_text: Option<(u64, u64)>,
    pub(super) traceable: Option<NameSet>,
    /// Whether kprobe events refuse functions ftrace cannot trace
    /// (CONFIG_KPROBE_EVENTS_ON_NOTRACE off), when the kernel's config says.
    pub(super) notrace_refused: Option<bool>,
    /// Whose symbols these are, in messages: `the running kernel`, or a
    /// target's name.
    pub(super) kernel: String,
    /// Whether modules' symbols are among them (kallsyms), or only
    /// vmlinux's (a vmlinux's symbol table).
    pub(super) modules_known: bool,
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

    /// The function symbols of a vmlinux's symbol table, as kallsyms would
    /// list them (every symbol of an executable section), for checking
    /// probes against that kernel (called `kernel` in messages). None
    /// when the file has no symbol table (a stripped vmlinux, such as the
    /// one inside a bzImage).
    pub fn from_elf(data: &[u8], kernel: String) -> Option<KernelSymbols> {
        use object::{Object, ObjectSection, ObjectSymbol, SectionKind};
        use std::fmt::Write as _;
        let elf = object::File::parse(data).ok()?;
        let text: std::collections::HashSet<object::SectionIndex> = elf
            .sections()
            .filter(|s| s.kind() == SectionKind::Text)
            .map(|s| s.index())
            .collect();
        let mut kallsyms = String::new();
        for sym in elf.symbols() {
            let in_text = sym.section_index().is_some_and(|i| text.contains(&i));
            let named = sym.name().ok().filter(|n| !n.is_empty());
            if let (true, Some(name)) = (in_text, named) {
                let _ = writeln!(kallsyms, "{:016x} t {name}", sym.address());
            }
        }
        let mut syms = KernelSymbols::build(kallsyms, None, None).ok()?;
        if syms.syms.is_empty() {
            return None;
        }
        syms.kernel = kernel;
        syms.modules_known = false;
        Some(syms)
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
            kernel: RUNNING.into(),
            modules_known: true,
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
            let Some(sym) = super::kallsyms::text_symbol(line) else {
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
            kernel: RUNNING.into(),
            modules_known: true,
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

    pub(super) fn module(&self, s: &Sym) -> Option<&str> {
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
    pub(super) fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sym> + 'a {
        self.sorted_from(name, move |n| n == name)
    }

    /// Whether the symbol is vmlinux's (not a module's).
    pub(super) fn in_vmlinux(&self, s: &Sym) -> bool {
        s.module.0 == s.module.1
    }

    /// Whether some symbol belongs to module `m` (the error path only).
    pub(super) fn has_module(&self, m: &str) -> bool {
        self.syms.iter().any(|s| self.module(s) == Some(m))
    }

    /// The compiler's copies of `name` (`name.isra.0`, `name.constprop.0`,
    /// ...; not the `.cold` parts, which are no function's entry): each
    /// distinct name with how many functions carry it.
    pub(super) fn copies(&self, name: &str, module: Option<&str>) -> Vec<(&str, usize)> {
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

    /// `did you mean ...?` with up to three names near `want` (in
    /// `module`, if given). Skips the
    /// `__pfx_` padding symbols and `.cold` parts, and compares only names
    /// that `nearest` could pick (close in length, or extending `want`),
    /// so the ~100k names cost milliseconds.
    pub(super) fn did_you_mean(&self, want: &str, module: Option<&str>) -> Option<String> {
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
        did_you_mean(want, names, "")
    }

    pub(super) fn blacklisted(&self, name: &str, addr: u64) -> Option<String> {
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
    pub(super) fn traceable(&self, set: &NameSet, name: &str) -> bool {
        if set.contains(name) {
            return true;
        }
        match name.split_once('.') {
            Some((base, _)) => self.named(base).next().is_some() && set.contains(base),
            None => false,
        }
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
