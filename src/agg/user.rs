//! The user-space path: aggregate decoded events in coolkprobe, where the
//! target kernel has no hist triggers. Same keys, buckets and table size
//! as the kernel's hist triggers, so both paths give the same [`Table`].
//!
//! Per event: the key is encoded into a reused byte buffer and looked up
//! in a hash map; memory is allocated only for a key seen for the first
//! time, and no more than the table size of keys are kept (as the
//! kernel's map, later keys are counted as dropped).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::{Agg, KeyVal, Row, Table};
use crate::compile::plan::{AggFunc, AggKey};
use crate::render::{Comms, Kallsyms};
use crate::ring::merge::{Flow, Sink};
use crate::ring::Value;

/// FxHash (rustc's): a multiply-rotate per word, fast for short keys; the
/// keys are our own events' values, not attacker-chosen to collide.
#[derive(Default)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// (count, sum) of one key.
type Slot = (u64, u64);
type Map = HashMap<Box<[u8]>, Slot, BuildHasherDefault<Fx>>;

struct One {
    agg: Agg,
    map: Map,
    /// `max(V)`: the values of the event with the largest V, per key.
    saved: HashMap<Box<[u8]>, Vec<KeyVal>, BuildHasherDefault<Fx>>,
    hits: u64,
    dropped: u64,
}

/// The values `max(V)` keeps, from an event's record.
fn saved_of(agg: &Agg, payload: &[u8]) -> Vec<KeyVal> {
    agg.saved
        .iter()
        .map(|(_, _, f)| match f.value(payload) {
            Some(Value::Str(s)) => KeyVal::Str(s.to_vec()),
            v => KeyVal::Int(int_of(v)),
        })
        .collect()
}

/// Every aggregation of the run, fed event by event.
pub struct Aggregator {
    aggs: Vec<One>,
    /// Per probe index: which of `aggs` it feeds.
    by_probe: Vec<Vec<usize>>,
    key: Vec<u8>,
    /// Events lost in the ring buffer before they could be counted.
    pub lost: u64,
    pub comms: Comms,
    pub kallsyms: Kallsyms,
}

const TAG_INT: u8 = 0;
const TAG_STR: u8 = 1;
const TAG_STACK: u8 = 2;

fn int_of(v: Option<Value<'_>>) -> u64 {
    match v {
        Some(Value::Unsigned(u)) => u,
        Some(Value::Signed(i)) => i as u64,
        _ => 0,
    }
}

impl Aggregator {
    pub fn new(aggs: Vec<Agg>, probes: usize) -> Aggregator {
        let mut by_probe = vec![Vec::new(); probes];
        for (i, a) in aggs.iter().enumerate() {
            if let Some(v) = by_probe.get_mut(a.probe) {
                v.push(i);
            }
        }
        Aggregator {
            aggs: aggs
                .into_iter()
                .map(|agg| One {
                    agg,
                    map: Map::default(),
                    saved: Default::default(),
                    hits: 0,
                    dropped: 0,
                })
                .collect(),
            by_probe,
            key: Vec::with_capacity(64),
            lost: 0,
            comms: Comms::default(),
            kallsyms: Kallsyms::default(),
        }
    }

    /// Whether events of probe `i` are aggregated (not printed).
    pub fn wants(&self, probe: usize) -> bool {
        self.by_probe.get(probe).is_some_and(|v| !v.is_empty())
    }

    /// One event of probe `probe`: its record, CPU and (for a stack key)
    /// the kernel stack recorded with it.
    pub fn event(&mut self, probe: usize, cpu: u32, payload: &[u8], stack: Option<&[u8]>) {
        let Some(list) = self.by_probe.get(probe) else {
            return;
        };
        for &ai in list {
            let one = &mut self.aggs[ai];
            let a = &one.agg;
            let key = &mut self.key;
            key.clear();
            let mut pid_comm = None;
            for (k, f) in a.plan.keys.iter().zip(&a.key_fields) {
                match (k, f) {
                    (AggKey::Stack, _) => {
                        key.push(TAG_STACK);
                        let words = stack.unwrap_or(&[]);
                        key.extend_from_slice(&(words.len() as u32).to_le_bytes());
                        key.extend_from_slice(words);
                    }
                    (_, Some(f)) => match f.value(payload) {
                        Some(Value::Str(s)) => {
                            key.push(TAG_STR);
                            key.extend_from_slice(&(s.len() as u32).to_le_bytes());
                            key.extend_from_slice(s);
                        }
                        v => {
                            key.push(TAG_INT);
                            key.extend_from_slice(&int_of(v).to_le_bytes());
                        }
                    },
                    (AggKey::Cpu, None) => {
                        key.push(TAG_INT);
                        key.extend_from_slice(&(cpu as u64).to_le_bytes());
                    }
                    (AggKey::Pid | AggKey::Comm, None) => {
                        // Pid, or comm without a `$comm` field (tracepoints):
                        // the pid now, its name when the table is read.
                        key.push(if *k == AggKey::Pid {
                            TAG_INT
                        } else {
                            TAG_STR | 0x80
                        });
                        let pid = i32::from_ne_bytes(
                            payload
                                .get(4..8)
                                .and_then(|b| b.try_into().ok())
                                .unwrap_or([0; 4]),
                        );
                        key.extend_from_slice(&(pid as i64 as u64).to_le_bytes());
                        if *k == AggKey::Comm {
                            pid_comm = Some(pid);
                        }
                    }
                    (AggKey::Field(_), None) => {
                        key.push(TAG_INT);
                        key.extend_from_slice(&0u64.to_le_bytes());
                    }
                }
            }
            let v = a.value_field.as_ref().map(|f| int_of(f.value(payload)));
            if let Some(b) = v.and_then(|v| a.bucket_of(v)) {
                key.extend_from_slice(&b.to_le_bytes());
            }
            let add = match a.plan.func {
                AggFunc::Sum | AggFunc::Max => v.unwrap_or(0),
                _ => 0,
            };
            let max = a.max_signed();
            if let Some(slot) = one.map.get_mut(key.as_slice()) {
                slot.0 += 1;
                match max {
                    Some(signed) => {
                        let larger = if signed {
                            (add as i64) > (slot.1 as i64)
                        } else {
                            add > slot.1
                        };
                        if larger {
                            slot.1 = add;
                            one.saved
                                .insert(key.as_slice().into(), saved_of(a, payload));
                        }
                    }
                    None => slot.1 = slot.1.wrapping_add(add),
                }
                one.hits += 1;
            } else if one.map.len() < a.size {
                one.map.insert(key.as_slice().into(), (1, add));
                if max.is_some() {
                    one.saved
                        .insert(key.as_slice().into(), saved_of(a, payload));
                }
                one.hits += 1;
                // Name the task while it is alive (as the kernel's
                // execname does when it adds an entry).
                if let Some(pid) = pid_comm {
                    self.comms.get(pid);
                }
            } else {
                one.dropped += 1;
            }
        }
    }

    /// The aggregations, as resolved.
    pub fn aggs(&self) -> impl Iterator<Item = &Agg> {
        self.aggs.iter().map(|o| &o.agg)
    }

    /// The current result of every aggregation (the tables keep counting).
    pub fn tables(&mut self) -> Vec<Table> {
        let mut out = Vec::with_capacity(self.aggs.len());
        for i in 0..self.aggs.len() {
            let mut t = Table {
                hits: self.aggs[i].hits,
                dropped: self.aggs[i].dropped,
                lost: self.lost,
                ..Table::default()
            };
            let entries: Vec<(Box<[u8]>, Slot)> = self.aggs[i]
                .map
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            for (k, (count, sum)) in entries {
                let saved = self.aggs[i].saved.get(&k).cloned().unwrap_or_default();
                if let Some((keys, bucket)) = self.decode(i, &k) {
                    t.rows.push(Row {
                        keys,
                        bucket,
                        count,
                        sum,
                        saved,
                    });
                }
            }
            t.merge_rows(self.aggs[i].agg.max_signed());
            out.push(t);
        }
        out
    }

    fn decode(&mut self, i: usize, mut k: &[u8]) -> Option<(Vec<KeyVal>, Option<u64>)> {
        let n = self.aggs[i].agg.plan.keys.len();
        let top = self.aggs[i].agg.stack_top.clone();
        let mut keys = Vec::with_capacity(n);
        let u64_at = |b: &[u8]| Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?));
        for _ in 0..n {
            let (&tag, rest) = k.split_first()?;
            k = rest;
            match tag {
                TAG_INT => {
                    keys.push(KeyVal::Int(u64_at(k)?));
                    k = &k[8..];
                }
                t if t == TAG_STR | 0x80 => {
                    let pid = u64_at(k)? as i64 as i32;
                    keys.push(KeyVal::Str(self.comms.get(pid).to_vec()));
                    k = &k[8..];
                }
                TAG_STR | TAG_STACK => {
                    let len = u32::from_le_bytes(k.get(..4)?.try_into().ok()?) as usize;
                    let body = k.get(4..4 + len)?;
                    k = &k[4 + len..];
                    if tag == TAG_STR {
                        keys.push(KeyVal::Str(body.to_vec()));
                    } else {
                        let mut frames = Vec::new();
                        for w in body.chunks_exact(8) {
                            let a = u64::from_ne_bytes(w.try_into().ok()?);
                            let mut b = Vec::new();
                            self.kallsyms.push(&mut b, a);
                            frames.push(String::from_utf8_lossy(&b).into_owned());
                        }
                        super::trim_stack(&mut frames, top.as_deref());
                        // The kernel's hist keys hold 16 frames.
                        frames.truncate(16);
                        keys.push(KeyVal::Stack(frames));
                    }
                }
                _ => return None,
            }
        }
        let bucket = if self.aggs[i].agg.is_hist() {
            u64_at(k)
        } else {
            None
        };
        Some((keys, bucket))
    }
}

/// A sink between the merge and the renderer: events of aggregated
/// probes go to the aggregator, the others on to the renderer.
pub struct Tap<S> {
    pub inner: S,
    pub agg: Aggregator,
    /// Event id -> the aggregated probes on it (two probes can name
    /// one tracepoint).
    ids: Vec<Vec<usize>>,
    /// The kernel_stack event's `caller` and `size` fields.
    stack: Option<(
        crate::tracefs::format::Field,
        Option<crate::tracefs::format::Field>,
    )>,
}

impl<S> Tap<S> {
    /// `formats[i]` is the format of probe i; `stack` that of
    /// ftrace/kernel_stack when stacks are recorded.
    pub fn new(
        inner: S,
        agg: Aggregator,
        formats: &[crate::tracefs::format::EventFormat],
        stack: Option<&crate::tracefs::format::EventFormat>,
    ) -> Tap<S> {
        let mut ids = Vec::new();
        for (i, f) in formats.iter().enumerate() {
            if agg.wants(i) {
                let id = f.id as usize;
                if ids.len() <= id {
                    ids.resize(id + 1, Vec::new());
                }
                ids[id].push(i);
            }
        }
        let stack =
            stack.and_then(|f| Some((f.field("caller")?.clone(), f.field("size").cloned())));
        Tap {
            inner,
            agg,
            ids,
            stack,
        }
    }
}

impl<S: Sink> Sink for Tap<S> {
    fn event(&mut self, cpu: u32, ts: u64, payload: &[u8], stack: Option<&[u8]>) -> Flow {
        let probes = crate::ring::common_type(payload)
            .and_then(|id| self.ids.get(id as usize))
            .filter(|v| !v.is_empty());
        let Some(probes) = probes else {
            return self.inner.event(cpu, ts, payload, stack);
        };
        let words = match (stack, &self.stack) {
            (Some(st), Some((caller, size))) => {
                let n = match size.as_ref().and_then(|f| f.value(st)) {
                    Some(Value::Unsigned(n)) => n as usize,
                    Some(Value::Signed(n)) => n.max(0) as usize,
                    _ => usize::MAX,
                };
                let start = caller.offset.min(st.len());
                let len = (st.len() - start) / 8 * 8;
                let len = len.min(n.saturating_mul(8));
                Some(&st[start..start + len])
            }
            _ => None,
        };
        for &probe in probes {
            self.agg.event(probe, cpu, payload, words);
        }
        Flow::Continue
    }
    fn lost(&mut self, cpu: u32, ts: u64, count: Option<u64>) -> Flow {
        // Which probe's events were lost is unknown: every aggregation
        // says so.
        self.agg.lost += count.unwrap_or(1);
        self.inner.lost(cpu, ts, count)
    }
    fn corrupt(&mut self, cpu: u32, what: &str) {
        self.inner.corrupt(cpu, what)
    }
    fn reader_error(&mut self, what: &str) {
        self.inner.reader_error(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::plan::{AggPlan, CompiledProbe, FetchArg, Target, COMM_FIELD};
    use crate::tracefs::format::EventFormat;

    /// A kprobe's format as the kernel writes it for
    /// `p:g/f0 vfs_read n=%dx:u64 __comm=$comm`.
    const FMT: &str = "name: f0\nID: 1500\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
        \tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
        \tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n\
        \tfield:u64 n;\toffset:16;\tsize:8;\tsigned:0;\n\
        \tfield:__data_loc char[] __comm;\toffset:24;\tsize:4;\tsigned:1;\n\n\
        print fmt: \"(%lx) n=%Lu __comm=\\\"%s\\\"\", REC->__probe_ip, REC->n, __get_str(__comm)\n";

    fn record(pid: i32, n: u64, comm: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; 28];
        r[0..2].copy_from_slice(&1500u16.to_ne_bytes());
        r[4..8].copy_from_slice(&pid.to_ne_bytes());
        r[16..24].copy_from_slice(&n.to_ne_bytes());
        let loc = ((comm.len() as u32 + 1) << 16) | 28;
        r[24..28].copy_from_slice(&loc.to_ne_bytes());
        r.extend_from_slice(comm);
        r.push(0);
        r
    }

    fn probe(aggs: Vec<AggPlan>) -> CompiledProbe {
        CompiledProbe {
            index: 0,
            spec: "p vfs_read n=count".into(),
            target: Target::Kprobe {
                ret: false,
                symbol: "vfs_read".into(),
                offset: 0,
            },
            fetchargs: vec![FetchArg::new(COMM_FIELD, crate::fetch::Fetch::Comm, None)],
            filter: None,
            fields: vec![],
            aggs,
            latency: None,
        }
    }

    #[test]
    fn counts_buckets_and_drops() {
        let fmt = EventFormat::parse(FMT).unwrap();
        let p = probe(vec![
            AggPlan {
                text: "hist(n)[comm]".into(),
                func: AggFunc::Log2,
                value: Some("n".into()),
                keys: vec![AggKey::Comm],
            },
            AggPlan {
                text: "sum(n)[pid]".into(),
                func: AggFunc::Sum,
                value: Some("n".into()),
                keys: vec![AggKey::Pid],
            },
        ]);
        let aggs = vec![
            Agg::new(&p, 0, &fmt, 2048).unwrap(),
            Agg::new(&p, 1, &fmt, 128).unwrap(),
        ];
        let mut g = Aggregator::new(aggs, 1);
        for (n, times) in [(1u64, 5), (100, 7), (5000, 3)] {
            for _ in 0..times {
                g.event(0, 0, &record(42, n, b"reader"), None);
            }
        }
        for pid in 0..200 {
            g.event(0, 1, &record(1000 + pid, 8, b"other"), None);
        }
        let t = g.tables();
        let reader: Vec<(Option<u64>, u64)> = t[0]
            .rows
            .iter()
            .filter(|r| r.keys == [KeyVal::Str(b"reader".to_vec())])
            .map(|r| (r.bucket, r.count))
            .collect();
        assert_eq!(reader, [(Some(0), 5), (Some(7), 7), (Some(13), 3)]);
        assert_eq!(t[0].hits, 215);
        // 128 pids fit the second table; 42 came first, 127 others after.
        assert_eq!(t[1].rows.len(), 128);
        assert_eq!(t[1].dropped, 215 - 15 - 127);
        let r42 = t[1]
            .rows
            .iter()
            .find(|r| r.keys == [KeyVal::Int(42)])
            .unwrap();
        assert_eq!((r42.count, r42.sum), (15, 5 + 700 + 15000));
    }
}
