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

#[derive(Clone, Debug, PartialEq)]
pub struct FieldPlan {
    pub name: String,
    pub display: Display,
    /// Bytes of the C value inside a wider fetched word: a bare `$retval`
    /// is fetched as the whole register (README: raw fetchargs pass unchanged)
    /// while the function returns an `int`.
    pub width: Option<u32>,
}

/// How a value is shown. `Default` leaves it to the field's type in the
/// event's format file (x32 → hex, s32 → signed, string → string).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
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
