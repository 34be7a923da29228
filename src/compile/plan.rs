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
    /// `B16_/B32_/B64_` (hex) and `b16_/b32_/b64_` (decimal): byte-swapped.
    Swapped {
        bits: u8,
        hex: bool,
    },
}

impl CompiledProbe {
    /// The event's name inside the group: `f0`, `f1`, ...
    pub fn event_name(&self) -> String {
        format!("f{}", self.index)
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
                format!(
                    "{}:{group}/{} {place}",
                    if *ret { 'r' } else { 'p' },
                    self.event_name()
                )
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
