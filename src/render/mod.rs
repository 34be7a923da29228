//! Decoded events + the display plan -> text lines or NDJSON.
//!
//! Everything is written into one reusable byte buffer that is handed to
//! the output in large pieces; nothing is allocated per event.

mod layout;
mod named;
mod names;
pub mod output;
pub(crate) mod value;

pub use names::{Comms, Kallsyms, UserSymbols};
pub use output::Out;

use std::io;

use crate::compile::plan::{CompiledProbe, Plan, Target};
use crate::ring::merge::{Flow, Sink};
use crate::ring::{common_type, EventTable, Value};
use crate::tracefs::format::{EventFormat, Field};

/// Where the `(...)` after the event name comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    None,
    /// `__probe_ip`, a kernel address.
    KernelIp,
    /// `__probe_func` and `__probe_ret_ip`, kernel addresses.
    KernelRet,
    UserIp,
    UserRet,
}

struct EventPlan {
    /// `f0: `
    text_head: Vec<u8>,
    /// `,"event":"f0","probe":"<spec>"`
    json_head: Vec<u8>,
    place: Place,
    ip: Option<Field>,
    func: Option<Field>,
    ret_ip: Option<Field>,
    /// A uprobe's place by its symbol (`values:take`), and the
    /// unrelocated address of its function, for its callers.
    user: Option<(std::path::PathBuf, Vec<u8>, u64)>,
    /// The shown values, in order (whole structs as groups).
    values: layout::Layout,
    pid: Option<Field>,
}

struct StackPlan {
    size: Option<Field>,
    caller: Field,
}

/// What a record of the run's event table is.
enum Kind {
    Probe(Box<EventPlan>),
    /// `ftrace/kernel_stack`, joined to its event by the reader.
    Stack,
    /// A task event that names a task: `sched_process_fork` (the child
    /// gets `comm`) or `task_rename` (`pid` gets `comm`, at exec too).
    Name {
        pid: Field,
        comm: Field,
    },
}

/// Counts for the exit summary.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub events: u64,
    /// Per CPU: records the kernel reported lost on page boundaries.
    pub lost: std::collections::BTreeMap<u32, u64>,
    /// Pages flagged as having lost records without a count.
    pub lost_unknown: u64,
    pub corrupt: u64,
    pub unknown_ids: u64,
}

pub struct Renderer<W: Out> {
    out: W,
    buf: Vec<u8>,
    /// Events rendered into `buf`.
    in_buf: u64,
    json: bool,
    /// By index in the event table.
    kinds: Vec<Kind>,
    table: EventTable,
    stack_index: Option<usize>,
    stack: Option<StackPlan>,
    pub kallsyms: Kallsyms,
    pub comms: Comms,
    pub counts: Counts,
    pub limit: Option<u64>,
    /// The first write error (a closed pipe ends the run).
    pub write_error: Option<io::Error>,
    who: Vec<Who>,
    ts: TsCache,
    /// Reused while an event's values are written.
    scratch: layout::Scratch,
    /// `--raw`: uprobe places as addresses, as before names.
    pub raw: bool,
    pub user_symbols: UserSymbols,
}

const WHO_SLOTS: usize = 64;

/// What comes before an event's timestamp, and after it up to its
/// values, rendered for one (cpu, pid, event): text `comm-pid [cpu] `
/// and `: f0: `, JSON `,"cpu":..,"pid":..,"comm":..,"event":..,"probe":..`.
#[derive(Default, Clone)]
struct Who {
    key: Option<(u32, i32, usize)>,
    before: Vec<u8>,
    after: Vec<u8>,
}

/// The seconds part of the last timestamp, rendered.
#[derive(Default)]
struct TsCache {
    secs: Option<u64>,
    text: Vec<u8>,
}

impl TsCache {
    /// `secs.micros`, as the kernel's trace file shows timestamps.
    fn push(&mut self, b: &mut Vec<u8>, ts: u64) {
        let secs = ts / 1_000_000_000;
        if self.secs != Some(secs) {
            self.secs = Some(secs);
            self.text.clear();
            value::push_u64(&mut self.text, secs);
            self.text.push(b'.');
        }
        b.extend_from_slice(&self.text);
        let us = ((ts % 1_000_000_000) / 1000) as usize;
        let p = value::PAIRS;
        let (hi, mid, lo) = (us / 10000 * 2, us / 100 % 100 * 2, us % 100 * 2);
        b.extend_from_slice(&[p[hi], p[hi + 1], p[mid], p[mid + 1], p[lo], p[lo + 1]]);
    }
}

const FLUSH_AT: usize = 256 * 1024;

impl<W: Out> Renderer<W> {
    /// The id of the kernel_stack event, for the readers.
    pub fn stack_id(&self) -> Option<u16> {
        self.stack_index.map(|i| self.table.formats[i].id)
    }

    /// `formats[i]` is the format of `plan.probes[i]`; `stack` that of
    /// `ftrace/kernel_stack` when `-s` is on.
    pub fn new(
        plan: &Plan,
        formats: Vec<EventFormat>,
        stack: Option<EventFormat>,
        json: bool,
        out: W,
    ) -> Renderer<W> {
        let mut user_symbols = UserSymbols::default();
        let mut table = EventTable::default();
        let mut kinds = Vec::new();
        for (p, f) in plan.probes.iter().zip(formats) {
            let ep = event_plan(p, &f, &mut user_symbols);
            table.insert(f);
            kinds.push(Kind::Probe(Box::new(ep)));
        }
        let mut stack_index = None;
        let mut stack_plan = None;
        if let Some(f) = stack {
            if let Some(caller) = f.field("caller").cloned() {
                stack_plan = Some(StackPlan {
                    size: f.field("size").cloned(),
                    caller,
                });
                stack_index = Some(table.insert(f));
                kinds.push(Kind::Stack);
            }
        }
        Renderer {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            in_buf: 0,
            json,
            kinds,
            table,
            stack_index,
            stack: stack_plan,
            kallsyms: Kallsyms::default(),
            comms: Comms::default(),
            counts: Counts::default(),
            limit: None,
            write_error: None,
            who: vec![Who::default(); WHO_SLOTS],
            ts: TsCache::default(),
            scratch: layout::Scratch::default(),
            raw: false,
            user_symbols,
        }
    }

    /// Task events whose records keep names current (not shown):
    /// `sched/sched_process_fork` and `task/task_rename` formats.
    pub fn track_names(&mut self, formats: Vec<EventFormat>) {
        for f in formats {
            let fields = match f.name.as_str() {
                "sched_process_fork" => f.field("child_pid").zip(f.field("child_comm")),
                "task_rename" => f.field("pid").zip(f.field("newcomm")),
                _ => None,
            };
            if let Some((pid, comm)) = fields {
                let k = Kind::Name {
                    pid: pid.clone(),
                    comm: comm.clone(),
                };
                if self.table.index(f.id).is_none() {
                    self.table.insert(f);
                    self.kinds.push(k);
                }
            }
        }
    }

    fn name_event(&mut self, idx: usize, payload: &[u8]) {
        let Some(Kind::Name { pid, comm }) = self.kinds.get(idx) else {
            return;
        };
        let pid = match pid.value(payload) {
            Some(Value::Signed(p)) => p as i32,
            Some(Value::Unsigned(p)) => p as i32,
            _ => return,
        };
        if let Some(Value::Str(name)) = comm.value(payload) {
            self.comms.set(pid, name);
            // Drop what was rendered with the old name.
            for w in &mut self.who {
                if w.key.is_some_and(|(_, p, _)| p == pid) {
                    w.key = None;
                }
            }
        }
    }

    /// The kernel skipped `count` hits of event `label` (kprobe_profile):
    /// said in the stream like a ring-buffer loss.
    pub fn missed(&mut self, label: &str, spec: &str, count: u64) {
        let b = &mut self.buf;
        if self.json {
            b.extend_from_slice(b"{\"missed\":");
            value::push_u64(b, count);
            b.extend_from_slice(b",\"event\":");
            value::push_json_str(b, label.as_bytes());
            b.extend_from_slice(b",\"probe\":");
            value::push_json_str(b, spec.as_bytes());
            b.extend_from_slice(b"}\n");
        } else {
            b.extend_from_slice(b"# MISSED ");
            value::push_u64(b, count);
            b.extend_from_slice(b" hits of ");
            b.extend_from_slice(label.as_bytes());
            b.extend_from_slice(
                b" (the kernel skipped them: a probe hit inside another probe's handler, \
                  or no free return-probe instance)\n",
            );
        }
    }

    /// The output, once rendering is over.
    pub fn into_out(self) -> W {
        self.out
    }

    /// Something else for the output, after what was rendered (flushed
    /// first): aggregation tables.
    pub fn with_out<T>(&mut self, f: impl FnOnce(&mut W) -> T) -> T {
        self.flush();
        f(&mut self.out)
    }

    fn maybe_flush(&mut self) -> Flow {
        if self.buf.len() >= FLUSH_AT {
            return self.flush();
        }
        Flow::Continue
    }

    pub fn flush(&mut self) -> Flow {
        if self.write_error.is_some() || self.out.abandoned() {
            return Flow::Stop;
        }
        if self.buf.is_empty() {
            return Flow::Continue;
        }
        let r = self.out.hand_over(&mut self.buf, self.in_buf);
        self.in_buf = 0;
        match r {
            Ok(()) => Flow::Continue,
            Err(e) => {
                self.write_error = Some(e);
                Flow::Stop
            }
        }
    }

    /// The event's head: who, when, which event. `comm-pid [cpu]` and the
    /// event's name are the same for runs of events: kept rendered, per
    /// (cpu, pid, event), in a small direct-mapped cache, so that most
    /// events copy them in one piece.
    fn header(&mut self, cpu: u32, ts: u64, pid: i32, idx: usize, ep: &EventPlan) {
        let slot = ((pid as u32) ^ cpu.wrapping_mul(0x9e37) ^ (idx as u32).wrapping_mul(0x3b5))
            as usize
            % WHO_SLOTS;
        if self.who[slot].key != Some((cpu, pid, idx)) {
            let comm = self.comms.get(pid);
            let w = &mut self.who[slot];
            w.key = Some((cpu, pid, idx));
            w.before.clear();
            w.after.clear();
            if self.json {
                let b = &mut w.after;
                b.extend_from_slice(b",\"cpu\":");
                value::push_u64(b, cpu as u64);
                b.extend_from_slice(b",\"pid\":");
                value::push_i64(b, pid as i64);
                b.extend_from_slice(b",\"comm\":");
                value::push_json_str(b, comm);
                b.extend_from_slice(&ep.json_head);
            } else {
                // `%16s-%-7d [%03d] ` as the kernel's trace file lays it
                // out; control bytes escaped (a task names itself).
                let b = &mut w.before;
                for _ in value::escaped_len(comm, 0)..16 {
                    b.push(b' ');
                }
                value::push_escaped(b, comm, 0);
                b.push(b'-');
                value::push_i64(b, pid as i64);
                for _ in value::dec_len(pid as i64)..7 {
                    b.push(b' ');
                }
                b.extend_from_slice(b" [");
                if cpu < 100 {
                    b.push(b'0');
                }
                if cpu < 10 {
                    b.push(b'0');
                }
                value::push_u64(b, cpu as u64);
                b.extend_from_slice(b"] ");
                w.after.extend_from_slice(b": ");
                w.after.extend_from_slice(&ep.text_head);
            }
        }
        let w = &self.who[slot];
        let b = &mut self.buf;
        if self.json {
            b.extend_from_slice(b"{\"ts\":");
        } else {
            b.extend_from_slice(&w.before);
        }
        self.ts.push(b, ts);
        b.extend_from_slice(&w.after);
    }

    fn render_event(
        &mut self,
        idx: usize,
        cpu: u32,
        ts: u64,
        payload: &[u8],
        stack: Option<&[u8]>,
    ) {
        let Some(Kind::Probe(ep)) = self.kinds.get(idx) else {
            return;
        };
        let pid = match ep.pid.as_ref().and_then(|f| f.value(payload)) {
            Some(Value::Signed(p)) => p as i32,
            Some(Value::Unsigned(p)) => p as i32,
            _ => -1,
        };
        // Split borrows: the plan is read while the buffer is written.
        let kinds = std::mem::take(&mut self.kinds);
        let Some(Kind::Probe(ep)) = kinds.get(idx) else {
            self.kinds = kinds;
            return;
        };
        self.header(cpu, ts, pid, idx, ep);
        let b = &mut self.buf;
        let addr = |f: &Option<Field>| match f.as_ref().and_then(|f| f.value(payload)) {
            Some(Value::Unsigned(v)) => v,
            Some(Value::Signed(v)) => v as u64,
            _ => 0,
        };
        if ep.place != Place::None {
            // Kernel symbol names and hex addresses need no escaping.
            b.extend_from_slice(if self.json { b",\"ip\":\"" } else { b"(" });
        }
        match ep.place {
            Place::None => {}
            Place::KernelIp => self.kallsyms.push(b, addr(&ep.ip)),
            Place::KernelRet => {
                self.kallsyms.push(b, addr(&ep.ret_ip));
                b.extend_from_slice(b" <- ");
                self.kallsyms.push(b, addr(&ep.func));
            }
            Place::UserIp => match (&ep.user, self.raw) {
                (Some((_, text, _)), false) => b.extend_from_slice(text),
                _ => value::push_hex(b, addr(&ep.ip)),
            },
            Place::UserRet => {
                let (ret, func) = (addr(&ep.ret_ip), addr(&ep.func));
                match (&ep.user, self.raw) {
                    (Some((path, text, at)), false) => {
                        if !self.user_symbols.caller(pid, path, *at, func, ret, b) {
                            value::push_hex(b, ret);
                        }
                        b.extend_from_slice(b" <- ");
                        b.extend_from_slice(text);
                    }
                    _ => {
                        value::push_hex(b, ret);
                        b.extend_from_slice(b" <- ");
                        value::push_hex(b, func);
                    }
                }
            }
        }
        if ep.place != Place::None {
            b.extend_from_slice(if self.json { b"\"" } else { b") " });
        }
        if self.json {
            b.extend_from_slice(b",\"args\":{");
        }
        layout::write(
            &ep.values,
            payload,
            self.json,
            b,
            &mut self.scratch,
            &mut self.kallsyms,
        );
        if self.json {
            b.push(b'}');
            if !self.scratch.raw.is_empty() {
                b.extend_from_slice(b",\"raw\":{");
                b.extend_from_slice(&self.scratch.raw);
                b.push(b'}');
            }
            if !self.scratch.cut.is_empty() {
                b.extend_from_slice(b",\"left_out\":{");
                b.extend_from_slice(&self.scratch.cut);
                b.push(b'}');
            }
            if !self.scratch.faults.is_empty() {
                // `null` in args, and why.
                b.extend_from_slice(b",\"faults\":{");
                for (i, name) in self.scratch.faults.iter().enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    b.extend_from_slice(name);
                    b.extend_from_slice(
                        b":\"the kernel could not read the string (a bad or paged-out address)\"",
                    );
                }
                b.push(b'}');
            }
        } else {
            if b.last() == Some(&b' ') {
                b.pop();
            }
            b.push(b'\n');
        }
        // The stacktrace trigger records from inside the probe handler:
        // its first frames are kprobe/ftrace machinery. Like perf, start
        // the stack at the probed function (the caller, for a return).
        let top = match ep.place {
            Place::KernelIp => Some(addr(&ep.ip)),
            Place::KernelRet => Some(addr(&ep.ret_ip)),
            _ => None,
        }
        .and_then(|a| self.kallsyms.lookup(a).map(|(_, off, _)| a - off));
        self.kinds = kinds;
        if let Some(st) = stack {
            self.render_stack(st, top);
        } else if self.json && self.stack.is_some() {
            self.buf.extend_from_slice(b",\"stack\":null");
        }
        if self.json {
            self.buf.extend_from_slice(b"}\n");
        }
    }

    /// `top`: the start of the function the stack should begin at; frames
    /// above its first appearance are dropped (all kept if it is absent).
    fn render_stack(&mut self, payload: &[u8], top: Option<u64>) {
        let Some(sp) = &self.stack else { return };
        let n = match sp.size.as_ref().and_then(|f| f.value(payload)) {
            Some(Value::Signed(n)) => n.max(0) as usize,
            Some(Value::Unsigned(n)) => n as usize,
            _ => usize::MAX,
        };
        let start = sp.caller.offset.min(payload.len());
        let word = |w: &[u8]| u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]));
        let skip = top
            .and_then(|top| {
                payload[start..].chunks_exact(8).take(n).position(|w| {
                    self.kallsyms
                        .lookup(word(w))
                        .is_some_and(|(_, off, _)| word(w) - off == top)
                })
            })
            .unwrap_or(0);
        let words = payload[start..].chunks_exact(8).take(n).skip(skip);
        let b = &mut self.buf;
        if self.json {
            b.extend_from_slice(b",\"stack\":[");
            for (i, w) in words.enumerate() {
                let a = u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]));
                if i > 0 {
                    b.push(b',');
                }
                // Kernel symbol names and hex addresses need no escaping.
                b.push(b'"');
                self.kallsyms.push(b, a);
                b.push(b'"');
            }
            b.push(b']');
        } else {
            for w in words {
                let a = u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]));
                b.extend_from_slice(b" => ");
                self.kallsyms.push(b, a);
                b.push(b'\n');
            }
        }
    }
}

impl<W: Out> Sink for Renderer<W> {
    fn event(&mut self, cpu: u32, ts: u64, payload: &[u8], stack: Option<&[u8]>) -> Flow {
        let Some(idx) = common_type(payload).and_then(|id| self.table.index(id)) else {
            self.counts.unknown_ids += 1;
            return Flow::Continue;
        };
        match self.kinds.get(idx) {
            Some(Kind::Probe(_)) => {}
            Some(Kind::Name { .. }) => {
                self.name_event(idx, payload);
                return Flow::Continue;
            }
            // A stack no event claimed (its event was lost): never shown
            // with another event.
            _ => return Flow::Continue,
        }
        if self.limit.is_some_and(|l| self.counts.events >= l) {
            return Flow::Stop;
        }
        self.render_event(idx, cpu, ts, payload, stack);
        self.counts.events += 1;
        self.in_buf += 1;
        if self.limit.is_some_and(|l| self.counts.events >= l) {
            self.flush();
            return Flow::Stop;
        }
        self.maybe_flush()
    }

    fn lost(&mut self, cpu: u32, ts: u64, count: Option<u64>) -> Flow {
        match count {
            Some(n) => *self.counts.lost.entry(cpu).or_default() += n,
            None => self.counts.lost_unknown += 1,
        }
        let b = &mut self.buf;
        if self.json {
            b.extend_from_slice(b"{\"ts\":");
            self.ts.push(b, ts);
            b.extend_from_slice(b",\"cpu\":");
            value::push_u64(b, cpu as u64);
            b.extend_from_slice(b",\"lost\":");
            match count {
                Some(n) => value::push_u64(b, n),
                None => b.extend_from_slice(b"null"),
            }
            b.extend_from_slice(b"}\n");
        } else {
            b.extend_from_slice(b"# LOST ");
            match count {
                Some(n) => value::push_u64(b, n),
                None => b.extend_from_slice(b"some"),
            }
            b.extend_from_slice(b" events on CPU ");
            value::push_u64(b, cpu as u64);
            b.extend_from_slice(b" before ");
            self.ts.push(b, ts);
            b.extend_from_slice(b" (ring buffer overrun)\n");
        }
        self.maybe_flush()
    }

    fn corrupt(&mut self, cpu: u32, what: &str) {
        self.counts.corrupt += 1;
        crate::tracefs::say(format_args!("coolkprobe: cpu {cpu}: {what} (page skipped)"));
    }

    fn reader_error(&mut self, what: &str) {
        crate::tracefs::say(format_args!("coolkprobe: reader: {what}"));
    }
}

fn event_plan(p: &CompiledProbe, f: &EventFormat, user_symbols: &mut UserSymbols) -> EventPlan {
    let place = match &p.target {
        // A completed call: the synthetic event's values only.
        _ if p.latency_end().is_some() => Place::None,
        Target::Kprobe { ret: false, .. } => Place::KernelIp,
        Target::Kprobe { ret: true, .. } => Place::KernelRet,
        Target::Uprobe { ret: false, .. } => Place::UserIp,
        Target::Uprobe { ret: true, .. } => Place::UserRet,
        Target::Tracepoint { .. } => Place::None,
    };
    let fields: Vec<_> = f
        .own_fields()
        .filter(|fd| !fd.name.starts_with("__probe_"))
        .map(|fd| {
            let fp = p.fields.iter().find(|fp| fp.name == fd.name);
            let mut fd = fd.clone();
            // Only the C value's bytes of a wider word: the low ones.
            if let Some(w) = fp.and_then(|fp| fp.width).map(|w| w as usize) {
                if w < fd.size && matches!(fd.kind, crate::tracefs::format::FieldKind::Int) {
                    if cfg!(target_endian = "big") {
                        fd.offset += fd.size - w;
                    }
                    fd.size = w;
                }
            }
            (fd, fp)
        })
        .collect();
    let label = p.event_name();
    let mut json_head = format!(",\"event\":\"{label}\",\"probe\":").into_bytes();
    value::push_json_str(&mut json_head, p.spec.as_bytes());
    EventPlan {
        text_head: format!("{label}: ").into_bytes(),
        json_head,
        place,
        ip: f.field("__probe_ip").cloned(),
        func: f.field("__probe_func").cloned(),
        ret_ip: f.field("__probe_ret_ip").cloned(),
        user: match &p.target {
            Target::Uprobe { path, offset, .. } => user_symbols
                .place(path, *offset)
                .map(|(text, at)| (path.clone(), text, at)),
            _ => None,
        },
        values: layout::plan(fields),
        pid: f.field("common_pid").cloned(),
    }
}
