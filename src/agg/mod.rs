//! Aggregations: counts, sums and histograms of a probe's values, computed
//! in the kernel by hist triggers where the target has them, in coolkprobe
//! from the decoded events where it does not; both give the same [`Table`],
//! drawn by [`draw`].
//!
//! - `histfile`: the kernel's `hist` file, parsed;
//! - `trigger`: an aggregation lowered to a `hist:` trigger command, and
//!   what the target kernel supports ([`Features`]);
//! - `user`: the user-space aggregator, fed with decoded events;
//! - `draw`: tables, bar histograms and JSON.

pub mod draw;
pub mod histfile;
pub mod user;

use crate::compile::plan::{AggFunc, AggKey, AggPlan, CompiledProbe, Display};
use crate::tracefs::format::{EventFormat, Field, FieldKind, Natural};

pub use crate::tracefs::hist::Features;

/// Where the aggregation is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Hist triggers on the events, read from their `hist` files.
    Kernel,
    /// Every event streamed and counted by coolkprobe.
    User,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::Kernel => "kernel",
            Path::User => "user",
        }
    }
}

/// One key value of a row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyVal {
    /// An integer's 64 bits (sign-extended for signed fields).
    Int(u64),
    Str(Vec<u8>),
    /// Frames as the kernel prints them: `vfs_read+0x9/0x370`.
    Stack(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub keys: Vec<KeyVal>,
    /// Log2: the exponent k; linear: the first value of the bucket.
    pub bucket: Option<u64>,
    pub count: u64,
    /// The sum of the value, wrapping as the kernel's u64 does; for
    /// `max(V)`, the largest V.
    pub sum: u64,
    /// `max(V)`: the values of the event that had it, as [`Agg::saved`].
    pub saved: Vec<KeyVal>,
}

/// The result of one aggregation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub rows: Vec<Row>,
    /// Events counted.
    pub hits: u64,
    /// Events the kernel's table had no room for (its `Dropped:`), or
    /// that the user-space table refused past the same size.
    pub dropped: u64,
    /// Events lost before they could be counted (ring-buffer overruns on
    /// the user-space path).
    pub lost: u64,
}

impl Table {
    /// Merge rows with equal keys and bucket (rows keyed by pid in the
    /// kernel and shown by comm fold together); `max` keeps the larger
    /// maximum (`signed`: compared as signed) with its values.
    pub fn merge_rows(&mut self, max: Option<bool>) {
        self.rows
            .sort_by(|a, b| (&a.keys, a.bucket).cmp(&(&b.keys, b.bucket)));
        let mut out: Vec<Row> = Vec::with_capacity(self.rows.len());
        for r in self.rows.drain(..) {
            match out.last_mut() {
                Some(l) if l.keys == r.keys && l.bucket == r.bucket => {
                    l.count += r.count;
                    match max {
                        Some(signed) => {
                            let larger = if signed {
                                (r.sum as i64) > (l.sum as i64)
                            } else {
                                r.sum > l.sum
                            };
                            if larger {
                                l.sum = r.sum;
                                l.saved = r.saved;
                            }
                        }
                        None => l.sum = l.sum.wrapping_add(r.sum),
                    }
                }
                _ => out.push(r),
            }
        }
        self.rows = out;
    }
}

/// How a key or value is shown: an integer by its field and display, a
/// string, or a stack.
#[derive(Clone, Debug, PartialEq)]
pub enum Show {
    Int { field: Field, display: Display },
    Str,
    Stack,
}

impl Show {
    pub fn signed(&self) -> bool {
        match self {
            Show::Int { field, display } => match display {
                Display::Signed => true,
                Display::Default => field.natural == Natural::Signed,
                _ => false,
            },
            _ => false,
        }
    }
}

/// One aggregation of one probe, resolved against its event's format:
/// everything both paths and the drawing need.
#[derive(Clone, Debug)]
pub struct Agg {
    /// Index of the probe in the plan.
    pub probe: usize,
    pub event: String,
    pub spec: String,
    pub plan: AggPlan,
    /// Per key: its column label and how it is shown.
    pub columns: Vec<(String, Show)>,
    /// The value's display (sum and histograms).
    pub value: Option<Show>,
    /// The event field read for each key (None: comm/pid/cpu/stack from
    /// the record's header or a pid lookup).
    pub key_fields: Vec<Option<Field>>,
    pub value_field: Option<Field>,
    /// For a kprobe, the probed function: stacks start there.
    pub stack_top: Option<String>,
    /// Table size: the kernel's `size=` (a power of two, 128..131072).
    pub size: usize,
    /// `max(V)`: the event's values kept with the largest V (the
    /// kernel's `save(...)`), each with its field and how it is shown.
    pub saved: Vec<(String, Show, Field)>,
}

/// The kernel's default table size (TRACING_MAP_BITS_DEFAULT = 11).
pub const DEFAULT_SIZE: usize = 2048;

/// `size=` as the kernel rounds it: a power of two between 2^7 and 2^17
/// (TRACING_MAP_BITS_MIN/MAX in kernel/trace/tracing_map.h).
pub fn table_size(asked: Option<usize>) -> Result<usize, String> {
    let Some(n) = asked else {
        return Ok(DEFAULT_SIZE);
    };
    let p = n.checked_next_power_of_two().unwrap_or(usize::MAX);
    if !(128..=131072).contains(&p) {
        return Err(format!(
            "--agg-size {n}: the kernel's tables hold 128 to 131072 entries"
        ));
    }
    Ok(p)
}

/// The most keys a hist trigger takes (checked where aggregations are
/// lowered).
pub use crate::compile::aggs::MAX_KEYS;

fn synthetic(name: &str, size: usize, signed: bool, natural: Natural) -> Field {
    Field {
        name: name.into(),
        type_text: String::new(),
        offset: 0,
        size,
        signed,
        kind: FieldKind::Int,
        natural,
    }
}

pub fn is_string_field(f: &Field) -> bool {
    matches!(
        f.kind,
        FieldKind::CharArray | FieldKind::DataLocString | FieldKind::RelLocString
    )
}

impl Agg {
    /// Resolve aggregation `i` of `probe` against its event's format.
    pub fn new(
        probe: &CompiledProbe,
        i: usize,
        format: &EventFormat,
        size: usize,
    ) -> Result<Agg, String> {
        let plan = probe.aggs[i].clone();
        let display_of = |name: &str| {
            probe
                .fields
                .iter()
                .find(|f| f.name == name)
                .map_or(Display::Default, |f| f.display)
        };
        let field = |name: &str| {
            format
                .field(name)
                .cloned()
                .ok_or_else(|| format!("event {} has no field `{name}`", format.name))
        };
        let show = |f: &Field| {
            if is_string_field(f) {
                Show::Str
            } else {
                Show::Int {
                    field: f.clone(),
                    display: display_of(&f.name),
                }
            }
        };
        let mut columns = Vec::new();
        let mut key_fields = Vec::new();
        for k in &plan.keys {
            let (sh, f) = match k {
                AggKey::Field(n) => {
                    let f = field(n)?;
                    (show(&f), Some(f))
                }
                AggKey::Comm => (
                    Show::Str,
                    format.field(crate::compile::plan::COMM_FIELD).cloned(),
                ),
                AggKey::Pid => (
                    Show::Int {
                        field: synthetic("pid", 4, true, Natural::Signed),
                        display: Display::Default,
                    },
                    None,
                ),
                AggKey::Cpu => (
                    Show::Int {
                        field: synthetic("cpu", 4, false, Natural::Unsigned),
                        display: Display::Default,
                    },
                    None,
                ),
                AggKey::Stack => (Show::Stack, None),
            };
            columns.push((k.label().to_string(), sh));
            key_fields.push(f);
        }
        let (value, value_field) = match &plan.value {
            Some(v) => {
                let f = field(v)?;
                (Some(show(&f)), Some(f))
            }
            None => (None, None),
        };
        let mut saved = Vec::new();
        if plan.func == AggFunc::Max {
            for n in crate::tracefs::hist::saved_fields(&plan, probe) {
                let f = field(&n)?;
                saved.push((n, show(&f), f));
            }
        }
        let stack_top = match &probe.target {
            crate::compile::plan::Target::Kprobe {
                ret: false, symbol, ..
            } => Some(symbol.rsplit(':').next().unwrap_or(symbol).to_string()),
            _ => None,
        };
        Ok(Agg {
            probe: probe.index,
            event: probe.event_name(),
            spec: probe.spec.clone(),
            plan,
            columns,
            value,
            key_fields,
            value_field,
            stack_top,
            size,
            saved,
        })
    }

    /// `max(V)`: rows keep the largest value; Some(whether it is signed).
    pub fn max_signed(&self) -> Option<bool> {
        (self.plan.func == AggFunc::Max).then(|| self.value.as_ref().is_some_and(Show::signed))
    }

    pub fn is_hist(&self) -> bool {
        matches!(self.plan.func, AggFunc::Log2 | AggFunc::Linear { .. })
    }

    /// The bucket of a value, as the kernel computes it: `.log2` is
    /// ilog2(roundup_pow_of_two(v)) (0 and 1 in bucket 0; a value above
    /// 2^63, a negative one, rounds to 2^64, which the shift wraps to 1 on
    /// x86: bucket 0), `.buckets=N` is v / N * N on the u64.
    pub fn bucket_of(&self, v: u64) -> Option<u64> {
        match self.plan.func {
            AggFunc::Log2 => Some(log2_bucket(v)),
            AggFunc::Linear { step } => Some(v / step.max(1) * step.max(1)),
            _ => None,
        }
    }
}

pub fn log2_bucket(v: u64) -> u64 {
    if v <= 1 || v > 1 << 63 {
        0
    } else {
        64 - (v - 1).leading_zeros() as u64
    }
}

/// Drop the tracing machinery at the top of a stack the kernel recorded
/// from inside a probe: a kprobe's stack starts at the probed function
/// (as `-s` stacks do), a return probe's after the return trampoline.
pub fn trim_stack(frames: &mut Vec<String>, top: Option<&str>) {
    let sym = |f: &str| f.split('+').next().unwrap_or(f).to_string();
    let cut = match top {
        Some(t) => frames.iter().position(|f| sym(f) == t),
        None => frames
            .iter()
            .rposition(|f| {
                let s = sym(f);
                s.contains("trampoline") || s.starts_with("rethook") || s.starts_with("kretprobe")
            })
            .map(|i| i + 1),
    };
    if let Some(c) = cut {
        frames.drain(..c.min(frames.len()));
    }
}

/// Rows of a kernel hist section for `agg`, keyed as the plan says.
pub fn table_from_section(agg: &Agg, sec: &histfile::Section) -> Table {
    use histfile::RawKey;
    let n = agg.plan.keys.len();
    let mut t = Table {
        hits: sec.hits,
        dropped: sec.dropped,
        ..Table::default()
    };
    for e in &sec.entries {
        let mut keys = Vec::with_capacity(n);
        for (k, raw) in agg.plan.keys.iter().zip(&e.keys) {
            keys.push(match raw {
                RawKey::Num(v) | RawKey::Log2(v) | RawKey::Bucket(v) => {
                    // The kernel prints every integer key as u64: keep
                    // the bits, the display re-signs them.
                    KeyVal::Int(*v)
                }
                RawKey::Str(s) => KeyVal::Str(s.clone()),
                RawKey::Exec { comm, pid } => {
                    if *k == AggKey::Comm {
                        KeyVal::Str(comm.clone())
                    } else {
                        KeyVal::Int(*pid)
                    }
                }
                RawKey::Stack(f) => {
                    let mut f = f.clone();
                    trim_stack(&mut f, agg.stack_top.as_deref());
                    KeyVal::Stack(f)
                }
            });
        }
        if keys.len() < n {
            continue;
        }
        let bucket = if agg.is_hist() {
            match e.keys.get(n) {
                Some(RawKey::Log2(k)) | Some(RawKey::Bucket(k)) => Some(*k),
                _ => continue,
            }
        } else {
            None
        };
        let (sum, saved) = match (agg.plan.func, &e.max) {
            (AggFunc::Sum, _) => (e.vals.first().copied().unwrap_or(0), Vec::new()),
            (AggFunc::Max, Some((m, vals))) => (*m, saved_values(agg, &sec.saved, vals)),
            // A key whose maximum was not set (a value of 0 never is).
            (AggFunc::Max, None) => (0, Vec::new()),
            _ => (0, Vec::new()),
        };
        t.rows.push(Row {
            keys,
            bucket,
            count: e.hitcount,
            sum,
            saved,
        });
    }
    t.merge_rows(agg.max_signed());
    t
}

/// The saved values of a `max:` line, in the order of [`Agg::saved`].
fn saved_values(agg: &Agg, names: &[String], vals: &[String]) -> Vec<KeyVal> {
    agg.saved
        .iter()
        .map(|(n, show, _)| {
            let v = names
                .iter()
                .position(|m| m == n)
                .and_then(|i| vals.get(i))
                .map_or("", String::as_str);
            match show {
                Show::Str => KeyVal::Str(v.as_bytes().to_vec()),
                _ => KeyVal::Int(
                    v.parse::<u64>()
                        .or_else(|_| v.parse::<i64>().map(|i| i as u64))
                        .unwrap_or(0),
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_buckets_as_the_kernel() {
        // Debian 6.12 put reads of 1, 100, 5000 and 65536 bytes in
        // 2^0, 2^7, 2^13 and 2^16 (see histfile's real output).
        assert_eq!(log2_bucket(0), 0);
        assert_eq!(log2_bucket(1), 0);
        assert_eq!(log2_bucket(2), 1);
        assert_eq!(log2_bucket(3), 2);
        assert_eq!(log2_bucket(100), 7);
        assert_eq!(log2_bucket(128), 7);
        assert_eq!(log2_bucket(129), 8);
        assert_eq!(log2_bucket(5000), 13);
        assert_eq!(log2_bucket(65536), 16);
        assert_eq!(log2_bucket(1 << 63), 63);
        assert_eq!(log2_bucket((-2i64) as u64), 0);
    }

    #[test]
    fn stacks_start_at_the_probed_function() {
        let mut f: Vec<String> = [
            "kprobe_ftrace_handler+0x13b/0x1d0",
            "0xffffffffc058d0de",
            "vfs_read+0x9/0x370",
            "ksys_read+0xbb/0xf0",
        ]
        .map(String::from)
        .to_vec();
        trim_stack(&mut f, Some("vfs_read"));
        assert_eq!(f, ["vfs_read+0x9/0x370", "ksys_read+0xbb/0xf0"]);
        let mut r: Vec<String> = ["arch_rethook_trampoline+0x0/0x50", "ksys_read+0xbb/0xf0"]
            .map(String::from)
            .to_vec();
        trim_stack(&mut r, None);
        assert_eq!(r, ["ksys_read+0xbb/0xf0"]);
    }

    #[test]
    fn sizes() {
        assert_eq!(table_size(None), Ok(2048));
        assert_eq!(table_size(Some(100)), Ok(128));
        assert_eq!(table_size(Some(129)), Ok(256));
        assert!(table_size(Some(1)).is_err());
        assert!(table_size(Some(1 << 20)).is_err());
    }
}
