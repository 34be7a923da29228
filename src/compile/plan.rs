//! The compiler's output: what to install, and how to show what comes back.
//!
//! This is the only thing the tracefs and render stages know of the
//! compiler. It holds no type information: everything a later stage needs
//! has been decided here.

use std::path::PathBuf;

pub use crate::fetch::FetchArg;

/// All probes of one run, in one tracefs group.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// `coolkprobe_<PID>`: this run's own group.
    pub group: String,
    pub probes: Vec<CompiledProbe>,
}

impl Plan {
    /// Put the plan in another group (a live run's own), and with it the
    /// synthetic events of its latencies, whose names carry the group.
    pub fn set_group(&mut self, group: &str) {
        self.group = group.to_string();
        for p in &mut self.probes {
            let event = p.event_name();
            if let Some(Latency::End(l)) = &mut p.latency {
                l.synth = synth_name(group, &event);
            }
        }
    }
}

/// The synthetic event of the latency ending at `end_event`:
/// `<group>_f<N>` (synthetic events share one namespace).
pub fn synth_name(group: &str, end_event: &str) -> String {
    format!("{group}_{end_event}")
}

#[derive(Clone, Debug, PartialEq)]
pub struct CompiledProbe {
    /// Position in the run; the event is named `f<index>`.
    pub index: usize,
    /// The spec as the user wrote it (shown in JSON as `probe`).
    pub spec: String,
    pub target: Target,
    /// What each named value reads, in order (empty for tracepoints).
    pub fetchargs: Vec<FetchArg>,
    /// The ftrace filter with literals already translated.
    pub filter: Option<String>,
    /// How to show each named value.
    pub fields: Vec<FieldPlan>,
    /// Aggregations of this probe's events (`count()[comm]`, `hist(n)`):
    /// when there are any, the events are counted, not printed.
    pub aggs: Vec<AggPlan>,
    /// Its part in a latency: the start of one (its events are not
    /// shown), or the end (its events are the completed calls).
    pub latency: Option<Latency>,
}

/// A probe's part in a latency (`l FUNC`, `NAME=since(fN)`).
#[derive(Clone, Debug, PartialEq)]
pub enum Latency {
    /// Its events start the interval that probe `end` ends; they are
    /// carried to it, not shown. `name`: the event's name when the probe
    /// is not one the user wrote (the entry of `l FUNC`, `f0_entry`).
    Start { end: usize, name: Option<String> },
    /// Its events end an interval: each one that finds its start is a
    /// completed call, shown (filtered, aggregated) with the start's values.
    End(LatencyPlan),
}

/// How a probe's events become completed calls.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyPlan {
    /// The probe (index in the plan) whose events start the interval.
    pub start: usize,
    /// Pairing key: None — the thread (`common_pid`); Some — a value both
    /// probes name (a request pointer).
    pub key: Option<String>,
    /// A completed call's values, in order: the start's, the end's own,
    /// then the latency. In the kernel these are the synthetic event's
    /// fields; in user space, the fields of the record coolkprobe makes.
    pub fields: Vec<SynthField>,
    /// The synthetic event's name (`<group>_f<N>`: synthetic events share
    /// one namespace, so the run's group is in it).
    pub synth: String,
}

/// One value of a completed call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthField {
    pub name: String,
    pub from: FieldFrom,
    pub ty: SynthType,
}

/// Where a completed call's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldFrom {
    /// The start event's field of the same name.
    Start,
    /// The end event's own field of the same name.
    End,
    /// End time minus start time, in nanoseconds.
    Latency,
}

/// A synthetic event field's type (Documentation/trace/histogram.rst,
/// "Synthetic Events": `u64`, `s32`, `char name[]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynthType {
    Int {
        bytes: u32,
        signed: bool,
    },
    /// A string; `char NAME[]` where the kernel has dynamic strings, else
    /// a fixed `char NAME[N]` of this many bytes.
    Str,
}

/// Bytes of a string in a synthetic event of a kernel without dynamic
/// strings (the kernel's STR_VAR_LEN_MAX is 256; a path fits in most).
pub const SYNTH_STR_LEN: u32 = 64;

impl SynthType {
    /// The type as synthetic_events takes it, and the field's name after
    /// it (`char fn[]`).
    pub fn declare(self, name: &str, dynamic_strings: bool) -> String {
        match self {
            SynthType::Int { bytes, signed } => {
                format!("{}{} {name}", if signed { 's' } else { 'u' }, bytes * 8)
            }
            SynthType::Str if dynamic_strings => format!("char {name}[]"),
            SynthType::Str => format!("char {name}[{SYNTH_STR_LEN}]"),
        }
    }
}

/// One aggregation of a probe's events, checked against its named values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggPlan {
    /// As written in the spec, e.g. `hist(n)[comm]`.
    pub text: String,
    pub func: AggFunc,
    /// The event field summed or bucketed (None for `count()`).
    pub value: Option<String>,
    pub keys: Vec<AggKey>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    /// Power-of-two buckets, as the kernel's `.log2`: bucket k holds
    /// (2^(k-1), 2^k], bucket 0 holds 0 and 1.
    Log2,
    /// Buckets of `step` values from 0, as the kernel's `.buckets=STEP`.
    Linear {
        step: u64,
    },
    /// The largest value, with the other values of its event (the
    /// kernel's `onmax(...).save(...)`).
    Max,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AggKey {
    /// A field of the event: a named value, or a tracepoint's field.
    Field(String),
    /// The current task's name: the probe's hidden `__comm=$comm` field
    /// where it has one, else the name of `common_pid`.
    Comm,
    /// `common_pid`: the thread id.
    Pid,
    Cpu,
    /// The kernel stack.
    Stack,
}

impl AggKey {
    /// The column name shown for this key.
    pub fn label(&self) -> &str {
        match self {
            AggKey::Field(f) => f,
            AggKey::Comm => "comm",
            AggKey::Pid => "pid",
            AggKey::Cpu => "cpu",
            AggKey::Stack => "stack",
        }
    }
}

/// Calls of a function a kretprobe can follow at once, asked for the
/// return half of `l FUNC` (kprobetrace.rst: `r[MAXACTIVE]`). The kernel's
/// default is small (kprobes.rst 1.3.1: the number of CPUs on 5.10,
/// max(10, 2 x CPUs) later), and a sleeping function's callers beyond it
/// lose their returns (kprobe_profile's nmissed); the kernel's maximum is
/// 4096, and newer kernels' pools cost 8 bytes per instance per CPU.
pub const LATENCY_MAXACTIVE: u32 = 1024;

/// The hidden field a kprobe/uprobe gets for a `comm` key: the kernel's
/// `$comm` fetcharg, exact per event.
pub const COMM_FIELD: &str = "__comm";

#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Kprobe {
        ret: bool,
        symbol: String,
        offset: u64,
    },
    Uprobe {
        ret: bool,
        path: PathBuf,
        /// File offset of the probed instruction (symbols are resolved).
        offset: u64,
        /// The symbol the user named, for display.
        symbol: Option<String>,
    },
    Tracepoint {
        system: String,
        event: String,
    },
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldPlan {
    pub name: String,
    pub display: Display,
    /// Bytes of the C value inside a wider fetched word: a bare `$retval`
    /// is fetched as the whole register (README: raw fetchargs pass unchanged)
    /// while the function returns an `int`.
    pub width: Option<u32>,
    /// The value's name, where its C type (or the kernel's own print
    /// format) gives numbers names; the number is then its raw form,
    /// shown as `display` says (README, "Values by name").
    pub names: Option<Names>,
    /// Where the value sits in a whole struct read member by member
    /// (README, "Whole structs"): the expression's name, then the members
    /// down to it (`sk`, `skc_bind_node`, `next`). Empty for a value shown
    /// on its own.
    pub path: Vec<PathPart>,
    /// Values of its struct left out after this one (the kernel's limits).
    pub cut: usize,
    /// A signed bitfield's width: the kernel fetches a bitfield's bits as
    /// an unsigned number, so the value is sign-extended from them.
    pub signed_bits: Option<u32>,
}

/// One step from a whole struct down to one of its values: a member, or
/// an element of an array of structs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPart {
    Member(String),
    Index(u32),
}

/// Names for the numbers a value can hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Names {
    /// A table: an enum's enumerators, or a known flag word's bits.
    Table(std::sync::Arc<NameTable>),
    /// A kernel function's error return: `-ENOENT` for -4095..-1
    /// (include/linux/err.h, `MAX_ERRNO`), the number otherwise.
    Errno,
    /// `true`/`false` (a `bool`); another number as it is.
    Bool,
    /// A kernel code address, `sock_def_readable+0x0` from the running
    /// kernel's symbols; hex where it has none.
    Symbol,
    /// A tracepoint field the kernel's own print format names
    /// (`__print_symbolic`, `__print_flags`), evaluated as it does.
    Print(std::sync::Arc<crate::tracefs::printfmt::FieldPrint>),
}

/// Names for the values of an enum or a flag word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameTable {
    /// What the numbers are, for messages: `enum hrtimer_mode`.
    pub what: String,
    /// The value's size in bytes: values and masks are compared on its
    /// bits only.
    pub size: u32,
    /// A word of flags: a value no entry matches whole is spelled as the
    /// entries whose bits it holds, `A|B`, in table order.
    pub flags: bool,
    pub entries: Vec<NameEntry>,
}

/// `name` when `value & mask == value` (a flag, or a field such as the
/// access mode of open flags); an enumerator's mask is all ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameEntry {
    pub mask: u64,
    pub value: u64,
    pub name: String,
}

impl NameTable {
    /// All ones in the value's bytes.
    fn full(&self) -> u64 {
        match self.size {
            s if s >= 8 => u64::MAX,
            s => (1u64 << (s * 8)) - 1,
        }
    }

    /// `v`'s name: the entry that is exactly it, else (a flag word) the
    /// entries whose bits it holds, `A|B`, the rest in hex (`A|0x80`).
    /// False, with nothing written, when no entry names any of it.
    pub fn spell(&self, v: u64, out: &mut Vec<u8>) -> bool {
        let full = self.full();
        let v = v & full;
        // A whole value first (an enumerator; a flag word's are its bits,
        // spelled below with the fields they share the word with).
        let exact = self
            .entries
            .iter()
            .find(|e| e.mask & full == full && e.value & full == v);
        if let Some(e) = exact {
            out.extend_from_slice(e.name.as_bytes());
            return true;
        }
        if !self.flags {
            return false;
        }
        let start = out.len();
        let (mut rest, mut taken) = (v, 0u64);
        for e in &self.entries {
            let m = e.mask & full;
            if m == 0 || m == full || taken & m != 0 || rest & m != e.value {
                continue;
            }
            if out.len() > start {
                out.push(b'|');
            }
            out.extend_from_slice(e.name.as_bytes());
            rest &= !m;
            taken |= m;
        }
        if out.len() == start {
            return false;
        }
        if rest != 0 {
            out.extend_from_slice(format!("|{rest:#x}").as_bytes());
        }
        true
    }

    /// The value a name stands for (a filter's literal).
    pub fn value_of(&self, name: &str) -> Option<u64> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.value)
    }
}

/// How a value is shown. `Default` leaves it to the field's type in the
/// event's format file (x32 → hex, s32 → signed, string → string).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Display {
    #[default]
    Default,
    Hex,
    Signed,
    Unsigned,
    String,
    /// `ip_*`: dotted IPv4 (32-bit) or IPv6 text (128-bit).
    Ip,
    /// A time in nanoseconds (a latency): `12.345us` as text, the number
    /// of nanoseconds in JSON.
    Duration,
    /// `B16_/B32_/B64_` (hex) and `b16_/b32_/b64_` (decimal): byte-swapped.
    Swapped {
        bits: u8,
        hex: bool,
    },
}

impl CompiledProbe {
    /// The event's name inside the group: `f0`, `f1`, ... (`f0_entry`
    /// for the entry of `l FUNC`).
    pub fn event_name(&self) -> String {
        match &self.latency {
            Some(Latency::Start { name: Some(n), .. }) => n.clone(),
            _ => format!("f{}", self.index),
        }
    }

    /// How its events become completed calls, when they end a latency.
    pub fn latency_end(&self) -> Option<&LatencyPlan> {
        match &self.latency {
            Some(Latency::End(l)) => Some(l),
            _ => None,
        }
    }

    /// Whether its events start a latency (and are not shown).
    pub fn starts_latency(&self) -> bool {
        matches!(self.latency, Some(Latency::Start { .. }))
    }

    /// The file of tracefs this probe's definition is appended to.
    pub fn events_file(&self) -> Option<&'static str> {
        match self.target {
            Target::Kprobe { .. } => Some("kprobe_events"),
            Target::Uprobe { .. } => Some("uprobe_events"),
            Target::Tracepoint { .. } => None,
        }
    }

    /// `(system, event)` of the tracefs event this probe reads.
    pub fn event_path(&self, group: &str) -> (String, String) {
        match &self.target {
            Target::Tracepoint { system, event } => (system.clone(), event.clone()),
            _ => (group.to_string(), self.event_name()),
        }
    }

    pub fn is_return(&self) -> bool {
        matches!(
            self.target,
            Target::Kprobe { ret: true, .. } | Target::Uprobe { ret: true, .. }
        )
    }

    /// The line written to kprobe_events / uprobe_events, e.g.
    /// `p:coolkprobe_42/f0 wake_up_new_task comm=+0xba0(%di):string`.
    pub fn definition(&self, group: &str) -> Option<String> {
        let head = match &self.target {
            Target::Kprobe {
                ret,
                symbol,
                offset,
            } => {
                let place = if *offset == 0 {
                    symbol.clone()
                } else {
                    format!("{symbol}+{offset}")
                };
                let kind = match (*ret, self.latency_end()) {
                    (false, _) => "p".to_string(),
                    // The return half of `l FUNC`: room for that many
                    // calls in flight at once (README, "Latency").
                    (true, Some(_)) => format!("r{LATENCY_MAXACTIVE}"),
                    (true, None) => "r".to_string(),
                };
                format!("{kind}:{group}/{} {place}", self.event_name())
            }
            Target::Uprobe {
                ret, path, offset, ..
            } => format!(
                "{}:{group}/{} {}:{offset:#x}",
                if *ret { 'r' } else { 'p' },
                self.event_name(),
                path.display()
            ),
            Target::Tracepoint { .. } => return None,
        };
        let mut line = head;
        for a in &self.fetchargs {
            line.push(' ');
            line.push_str(&a.to_string());
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(target: Target) -> CompiledProbe {
        CompiledProbe {
            index: 3,
            spec: String::new(),
            target,
            fetchargs: vec![FetchArg::raw("comm", "+0xba0(%di):string")],
            filter: None,
            fields: vec![],
            aggs: vec![],
            latency: None,
        }
    }

    #[test]
    fn kprobe_definition() {
        let p = probe(Target::Kprobe {
            ret: false,
            symbol: "wake_up_new_task".into(),
            offset: 0,
        });
        assert_eq!(
            p.definition("coolkprobe_7").unwrap(),
            "p:coolkprobe_7/f3 wake_up_new_task comm=+0xba0(%di):string"
        );
        let r = probe(Target::Kprobe {
            ret: true,
            symbol: "kernel_clone".into(),
            offset: 21,
        });
        assert!(r
            .definition("g")
            .unwrap()
            .starts_with("r:g/f3 kernel_clone+21 "));
        // The return half of a latency asks for room for many calls.
        let l = CompiledProbe {
            latency: Some(Latency::End(LatencyPlan {
                start: 4,
                key: None,
                fields: vec![],
                synth: "g_f3".into(),
            })),
            ..r
        };
        assert!(l
            .definition("g")
            .unwrap()
            .starts_with("r1024:g/f3 kernel_clone+21 "));
        // A live run's own group names its synthetic events too (the
        // dead-run cleanup finds a run's synthetic events by its group).
        let mut plan = Plan {
            group: "coolkprobe_9".into(),
            probes: vec![l],
        };
        plan.set_group("coolkprobe_12_4026531836");
        assert_eq!(
            plan.probes[0].latency_end().map(|l| l.synth.as_str()),
            Some("coolkprobe_12_4026531836_f3")
        );
    }

    #[test]
    fn name_tables() {
        let e = |mask, value, name: &str| NameEntry {
            mask,
            value,
            name: name.into(),
        };
        let spell = |t: &NameTable, v| {
            let mut b = Vec::new();
            t.spell(v, &mut b).then(|| String::from_utf8(b).unwrap())
        };
        // An enum: its names, nothing for another value.
        let states = NameTable {
            what: "enum s".into(),
            size: 4,
            flags: false,
            entries: vec![e(u32::MAX as u64, 1, "ONE"), e(u32::MAX as u64, 7, "SEVEN")],
        };
        assert_eq!(spell(&states, 7).as_deref(), Some("SEVEN"));
        assert_eq!(spell(&states, 5), None);
        // Open flags: a two-bit access mode, then flags, then the rest.
        let open = NameTable {
            what: "open flags".into(),
            size: 4,
            flags: true,
            entries: vec![
                e(3, 0, "O_RDONLY"),
                e(3, 1, "O_WRONLY"),
                e(3, 2, "O_RDWR"),
                e(0o100, 0o100, "O_CREAT"),
                e(0o2000000, 0o2000000, "O_CLOEXEC"),
            ],
        };
        assert_eq!(spell(&open, 0).as_deref(), Some("O_RDONLY"));
        assert_eq!(
            spell(&open, 0o2000101).as_deref(),
            Some("O_WRONLY|O_CREAT|O_CLOEXEC")
        );
        assert_eq!(
            spell(&open, 0o2 | 0x8000_0000).as_deref(),
            Some("O_RDWR|0x80000000")
        );
        assert_eq!(open.value_of("O_CREAT"), Some(0o100));
        let mut wide = open.clone();
        wide.size = 8;
        wide.entries.push(e(0o100000, 0o100000, "O_LARGEFILE"));
        assert_eq!(
            spell(&wide, 0x8000).as_deref(),
            Some("O_RDONLY|O_LARGEFILE")
        );
    }

    #[test]
    fn uprobe_definition() {
        let p = probe(Target::Uprobe {
            ret: true,
            path: "/bin/true".into(),
            offset: 0x1130,
            symbol: Some("main".into()),
        });
        assert!(p
            .definition("g")
            .unwrap()
            .starts_with("r:g/f3 /bin/true:0x1130 "));
        assert_eq!(p.events_file(), Some("uprobe_events"));
    }
}
