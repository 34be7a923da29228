//! Latencies paired in user space, where the target kernel has no
//! synthetic events: the start and end events are both streamed, and
//! coolkprobe pairs them per key (the thread, or a named value) with a
//! stack per key, so that nested and recursive calls pair innermost
//! first. Each end that finds its start becomes a completed call: a
//! record laid out as the kernel lays out the synthetic event of the
//! in-kernel path (the start's values, the end's, the latency in
//! nanoseconds), so that filters, aggregations and output are the same on
//! both paths. An end without a start (the call began before the run, or
//! its entry was lost) is not paired, and is counted.

pub mod filter;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::agg::user::Fx;
use crate::compile::plan::{FieldFrom, LatencyPlan, Plan, SynthType};
use crate::ring::merge::{Flow, Sink};
use crate::ring::{common_type, Value};
use crate::tracefs::format::{EventFormat, Field};

pub use filter::Filter;

/// Where latencies are paired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Hist triggers and a synthetic event per latency.
    Kernel,
    /// Both events streamed, paired by coolkprobe.
    User,
}

/// Most pending starts of one key: deeper recursion than this is not a
/// call stack, but starts whose ends were not traced.
const MAX_DEPTH: usize = 1024;
/// Most pending starts in all: past it, starts are dropped and counted.
const MAX_PENDING: usize = 1 << 20;

/// The format of a completed call made in user space, with the event id
/// of its end: the kernel's synthetic event layout (an 8-byte slot per
/// field, strings as `__data_loc` after them).
pub fn completed_format(l: &LatencyPlan, id: u16) -> EventFormat {
    let mut text = format!(
        "name: {}\nID: {id}\nformat:\n\
         \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
         \tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
         \tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
         \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n",
        l.synth
    );
    let mut print = Vec::new();
    for (i, f) in l.fields.iter().enumerate() {
        let off = 8 + 8 * i;
        match f.ty {
            SynthType::Int { bytes, signed } => {
                text.push_str(&format!(
                    "\tfield:{}{} {};\toffset:{off};\tsize:{bytes};\tsigned:{};\n",
                    if signed { 's' } else { 'u' },
                    bytes * 8,
                    f.name,
                    u8::from(signed)
                ));
                print.push(format!(
                    "{}=%{}",
                    f.name,
                    if signed { "lld" } else { "llu" }
                ));
            }
            SynthType::Str => {
                text.push_str(&format!(
                    "\tfield:__data_loc char[] {};\toffset:{off};\tsize:4;\tsigned:1;\n",
                    f.name
                ));
                print.push(format!("{}=%s", f.name));
            }
        }
    }
    text.push_str(&format!("\nprint fmt: \"{}\"\n", print.join(", ")));
    // The text is ours and well formed.
    EventFormat::parse(&text).unwrap_or(EventFormat {
        name: l.synth.clone(),
        id,
        fields: Vec::new(),
        print_fmt: None,
    })
}

/// Where each value of a completed call is read from.
enum Source {
    Start(Field),
    End(Field),
    Latency,
}

type Key = u64;
type Stacks = HashMap<Key, Vec<(u64, Box<[u8]>)>, BuildHasherDefault<Fx>>;

/// One latency: its events, how to pair them, how to make a completed call.
struct Pair {
    /// The end probe (for messages: `f<N>`).
    event: String,
    /// The key in the start's and the end's records; None: the thread.
    key: Option<(Field, Field)>,
    /// Per value of the completed call: its source and its field there.
    values: Vec<(Source, Field)>,
    fixed: usize,
    filter: Option<Filter>,
    pending: Stacks,
    completed: u64,
    unpaired: u64,
    dropped: u64,
}

fn key_of(payload: &[u8], field: Option<&Field>) -> Key {
    match field.and_then(|f| f.value(payload)) {
        None => i32::from_ne_bytes(
            payload
                .get(4..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 4]),
        ) as i64 as u64,
        Some(Value::Unsigned(u)) => u,
        Some(Value::Signed(i)) => i as u64,
        // A string the kernel could not read keys as the empty one.
        Some(Value::Fault) => key_of_bytes(&[]),
        Some(Value::Str(s) | Value::Bytes(s)) | Some(Value::Array { bytes: s, .. }) => {
            key_of_bytes(s)
        }
    }
}

fn key_of_bytes(s: &[u8]) -> Key {
    let mut h = Fx::default();
    h.write(s);
    h.finish()
}

/// A sink between the merge and the rest: start events are kept, end
/// events that find their start become completed calls, passed on (if
/// they pass the completed call's filter); everything else passes through.
pub struct Pairer<S> {
    pub inner: S,
    pairs: Vec<Pair>,
    /// Event id -> pairs it starts; -> pairs it ends.
    starts: HashMap<u16, Vec<usize>>,
    ends: HashMap<u16, Vec<usize>>,
    total_pending: usize,
    /// Pending starts discarded when the ring buffer lost events.
    pub discarded: u64,
    buf: Vec<u8>,
}

impl<S> Pairer<S> {
    /// `formats[i]` is the format of probe i's own event (for a latency
    /// end: its completed calls', whose id is its own event's).
    pub fn new(
        inner: S,
        plan: &Plan,
        own: &[EventFormat],
        completed: &[EventFormat],
    ) -> Result<Pairer<S>, String> {
        let mut pairs = Vec::new();
        let mut starts: HashMap<u16, Vec<usize>> = HashMap::new();
        let mut ends: HashMap<u16, Vec<usize>> = HashMap::new();
        for (i, p) in plan.probes.iter().enumerate() {
            let Some(l) = p.latency_end() else { continue };
            let (Some(sf), Some(ef), Some(cf)) = (own.get(l.start), own.get(i), completed.get(i))
            else {
                continue;
            };
            let field = |f: &EventFormat, n: &str| {
                f.field(n)
                    .cloned()
                    .ok_or_else(|| format!("event {} has no field `{n}`", f.name))
            };
            let key = match &l.key {
                Some(k) => Some((field(sf, k)?, field(ef, k)?)),
                None => None,
            };
            let mut values = Vec::new();
            for v in &l.fields {
                let src = match v.from {
                    FieldFrom::Start => Source::Start(field(sf, &v.name)?),
                    FieldFrom::End => Source::End(field(ef, &v.name)?),
                    FieldFrom::Latency => Source::Latency,
                };
                values.push((src, field(cf, &v.name)?));
            }
            let filter = match &p.filter {
                Some(t) => {
                    Some(Filter::parse(t, cf).map_err(|e| format!("{}: {e}", p.event_name()))?)
                }
                None => None,
            };
            starts.entry(sf.id).or_default().push(pairs.len());
            ends.entry(ef.id).or_default().push(pairs.len());
            pairs.push(Pair {
                event: p.event_name(),
                key,
                fixed: 8 + 8 * values.len(),
                values,
                filter,
                pending: Stacks::default(),
                completed: 0,
                unpaired: 0,
                dropped: 0,
            });
        }
        Ok(Pairer {
            inner,
            pairs,
            starts,
            ends,
            total_pending: 0,
            discarded: 0,
            buf: Vec::with_capacity(512),
        })
    }

    /// What was not paired, per latency, for the exit summary: ends
    /// without their start, starts still open, starts dropped.
    pub fn report(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.pairs {
            let open: usize = p.pending.values().map(Vec::len).sum();
            let mut parts = Vec::new();
            if p.unpaired > 0 {
                parts.push(format!(
                    "{} ends without their start were not paired (started before the run, or the start was lost)",
                    p.unpaired
                ));
            }
            if open > 0 {
                parts.push(format!("{open} starts had not ended"));
            }
            if p.dropped > 0 {
                parts.push(format!(
                    "{} starts were dropped (more than {MAX_DEPTH} open per key or {MAX_PENDING} in all)",
                    p.dropped
                ));
            }
            if !parts.is_empty() {
                out.push(format!(
                    "{}: {} completed; {}",
                    p.event,
                    p.completed,
                    parts.join("; ")
                ));
            }
        }
        if self.discarded > 0 {
            out.push(format!(
                "{} open starts were discarded when events were lost (their ends are counted as not paired)",
                self.discarded
            ));
        }
        out
    }

    /// Counts per latency: (end event, completed, not paired).
    pub fn counts(&self) -> Vec<(String, u64, u64)> {
        self.pairs
            .iter()
            .map(|p| (p.event.clone(), p.completed, p.unpaired))
            .collect()
    }
}

/// The record of a completed call, from its start and end records.
fn complete(buf: &mut Vec<u8>, pair: &Pair, start: &[u8], start_ts: u64, end: &[u8], end_ts: u64) {
    buf.clear();
    buf.resize(pair.fixed, 0);
    let n = end.len().min(8);
    buf[..n].copy_from_slice(&end[..n]);
    for (src, dst) in &pair.values {
        let v = match src {
            Source::Start(f) => f.value(start),
            Source::End(f) => f.value(end),
            Source::Latency => Some(Value::Unsigned(end_ts.saturating_sub(start_ts))),
        };
        let at = dst.offset;
        match v {
            Some(Value::Unsigned(u)) => put_int(buf, at, dst.size, u),
            Some(Value::Signed(i)) => put_int(buf, at, dst.size, i as u64),
            Some(Value::Str(s)) => {
                let off = buf.len();
                // A `__data_loc` word holds a 16-bit length and offset.
                let s = &s[..s.len().min(4000)];
                buf.extend_from_slice(s);
                buf.push(0);
                let word = ((s.len() as u32 + 1) << 16) | (off as u32 & 0xffff);
                put_int(buf, at, 4, word as u64);
            }
            _ => {}
        }
    }
}

fn put_int(buf: &mut [u8], at: usize, size: usize, v: u64) {
    let b = v.to_ne_bytes();
    let size = size.min(8);
    let src = if cfg!(target_endian = "big") {
        &b[8 - size..]
    } else {
        &b[..size]
    };
    if let Some(d) = buf.get_mut(at..at + size) {
        d.copy_from_slice(src);
    }
}

impl<S: Sink> Sink for Pairer<S> {
    fn event(&mut self, cpu: u32, ts: u64, payload: &[u8], stack: Option<&[u8]>) -> Flow {
        // Most runs pair nothing: no lookups per event then.
        let id = match common_type(payload) {
            Some(id) if !self.pairs.is_empty() => id,
            _ => return self.inner.event(cpu, ts, payload, stack),
        };
        let mut consumed = false;
        if let Some(list) = self.starts.get(&id) {
            consumed = true;
            for &i in list {
                let p = &mut self.pairs[i];
                let key = key_of(payload, p.key.as_ref().map(|k| &k.0));
                let stack = p.pending.entry(key).or_default();
                if stack.len() >= MAX_DEPTH || self.total_pending >= MAX_PENDING {
                    p.dropped += 1;
                    continue;
                }
                stack.push((ts, payload.into()));
                self.total_pending += 1;
            }
        }
        let Some(list) = self.ends.get(&id) else {
            return if consumed {
                Flow::Continue
            } else {
                self.inner.event(cpu, ts, payload, stack)
            };
        };
        for &i in list {
            let p = &mut self.pairs[i];
            let key = key_of(payload, p.key.as_ref().map(|k| &k.1));
            let Some(stack) = p.pending.get_mut(&key) else {
                p.unpaired += 1;
                continue;
            };
            let Some((start_ts, start)) = stack.pop() else {
                p.unpaired += 1;
                continue;
            };
            if stack.is_empty() {
                p.pending.remove(&key);
            }
            self.total_pending -= 1;
            complete(&mut self.buf, p, &start, start_ts, payload, ts);
            p.completed += 1;
            if p.filter.as_ref().is_some_and(|f| !f.eval(&self.buf)) {
                continue;
            }
            let buf = std::mem::take(&mut self.buf);
            let flow = self.inner.event(cpu, ts, &buf, None);
            self.buf = buf;
            if flow == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn lost(&mut self, cpu: u32, ts: u64, count: Option<u64>) -> Flow {
        // Which events were lost is unknown: a lost end would pair its
        // start with a later end. Open starts are dropped; ends that
        // follow find none, and are counted.
        for p in &mut self.pairs {
            let n: usize = p.pending.values().map(Vec::len).sum();
            self.discarded += n as u64;
            p.pending.clear();
        }
        self.total_pending = 0;
        self.inner.lost(cpu, ts, count)
    }

    fn corrupt(&mut self, cpu: u32, what: &str) {
        self.inner.corrupt(cpu, what)
    }

    fn reader_error(&mut self, what: &str) {
        self.inner.reader_error(what)
    }
}
