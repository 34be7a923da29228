//! The decoder on real pages captured from this machine's kernel
//! (tests/fixtures/ring, made by `cargo run --example capture_pages`):
//! a program called probe_me(i, 1000*i-7), probe_str("str-<i>", -i) and
//! getppid() for i in 1..=calls, traced by a tracepoint with a stack
//! trigger, entry and return uprobes, a string uprobe and sched_switch.

use std::collections::HashMap;
use std::path::Path;

use coolkprobe::ring::page::PageLayout;
use coolkprobe::ring::{common_type, Value};
use coolkprobe::tracefs::format::EventFormat;

struct Fixture {
    layout: PageLayout,
    formats: HashMap<u16, EventFormat>,
    meta: HashMap<String, String>,
    /// (cpu, raw pages)
    cpus: Vec<(u32, Vec<u8>)>,
}

fn load() -> Fixture {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ring");
    let layout = PageLayout::parse(
        &std::fs::read_to_string(d.join("header_page")).unwrap(),
        4096,
    )
    .unwrap();
    let mut formats = HashMap::new();
    let mut cpus = Vec::new();
    for e in std::fs::read_dir(&d).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("format.") {
            let f = EventFormat::parse(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
            formats.insert(f.id, f);
        } else if let Some(c) = name
            .strip_prefix("cpu")
            .and_then(|c| c.strip_suffix(".raw"))
        {
            cpus.push((c.parse().unwrap(), std::fs::read(e.path()).unwrap()));
        }
    }
    cpus.sort();
    let meta = std::fs::read_to_string(d.join("meta"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Fixture {
        layout,
        formats,
        meta,
        cpus,
    }
}

/// Every record of every page: (cpu, ts, event name, payload).
fn records(fx: &Fixture) -> Vec<(u32, u64, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (cpu, raw) in &fx.cpus {
        assert_eq!(raw.len() % 4096, 0);
        for page in raw.chunks(4096) {
            let p = fx.layout.page(page).unwrap();
            for r in p.records() {
                let r = r.unwrap();
                let id = common_type(r.payload).unwrap();
                let f = fx
                    .formats
                    .get(&id)
                    .unwrap_or_else(|| panic!("unknown id {id}"));
                out.push((*cpu, r.ts, f.name.clone(), r.payload.to_vec()));
            }
        }
    }
    out
}

fn int(v: Option<Value<'_>>) -> i64 {
    match v.unwrap() {
        Value::Signed(i) => i,
        Value::Unsigned(u) => u as i64,
        other => panic!("not an integer: {other:?}"),
    }
}

#[test]
fn real_pages_decode_exactly() {
    let fx = load();
    let pid: i64 = fx.meta["pid"].parse().unwrap();
    let calls: i64 = fx.meta["calls"].parse().unwrap();
    let recs = records(&fx);
    let fmt = |name: &str| fx.formats.values().find(|f| f.name == name).unwrap();
    let mut per_cpu_ts: HashMap<u32, u64> = HashMap::new();
    let (mut getppid, mut me, mut ret, mut strs, mut stacks, mut switches) = (0, 0, 0, 0, 0, 0);
    for (cpu, ts, name, p) in &recs {
        let last = per_cpu_ts.entry(*cpu).or_default();
        assert!(*ts >= *last, "time goes back on cpu {cpu}");
        *last = *ts;
        let f = fmt(name);
        let v = |field: &str| f.field(field).unwrap().value(p);
        match name.as_str() {
            "sys_enter_getppid" => {
                assert_eq!(int(v("common_pid")), pid);
                assert_eq!(int(v("__syscall_nr")), 110);
                getppid += 1;
            }
            "f1" => {
                me += 1;
                assert_eq!(int(v("a")), me);
                assert_eq!(int(v("b")), 1000 * me - 7);
                assert!(int(v("__probe_ip")) > 0);
            }
            "f2" => {
                ret += 1;
                assert_eq!(int(v("r")), 1001 * ret - 7);
                assert!(int(v("__probe_func")) > 0 && int(v("__probe_ret_ip")) > 0);
            }
            "f3" => {
                strs += 1;
                assert_eq!(v("s"), Some(Value::Str(format!("str-{strs}").as_bytes())));
                assert_eq!(int(v("n")), -strs);
            }
            "kernel_stack" => {
                stacks += 1;
                let n = int(v("size"));
                assert!(n > 0, "a stack has frames");
            }
            "sched_switch" => {
                switches += 1;
                assert_eq!(v("prev_comm"), Some(Value::Str(b"capture_prog")));
                assert!(matches!(v("next_comm"), Some(Value::Str(_))));
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!((getppid, me, ret, strs), (calls, calls, calls, calls));
    // Every traced event has its stack; sched_switch events dropped by
    // their filter after the trigger ran leave stacks of their own.
    assert!(stacks >= getppid + me + ret + strs + switches);
    assert!(switches > 0);
}

#[test]
fn readers_index_joins_each_event_to_its_stack() {
    use coolkprobe::ring::reader::{index_pages, Item};
    let fx = load();
    let stack_id = fx
        .formats
        .values()
        .find(|f| f.name == "kernel_stack")
        .unwrap()
        .id;
    let mut joined = 0;
    let mut events = 0;
    for (_, raw) in &fx.cpus {
        let mut items = Vec::new();
        index_pages(&fx.layout, Some(stack_id), raw, &mut items).unwrap();
        for it in items {
            if let Item::Event {
                start,
                len,
                stack_start,
                stack_len,
                ..
            } = it
            {
                let p = &raw[start as usize..(start + len) as usize];
                assert_ne!(common_type(p), Some(stack_id), "stacks are never events");
                events += 1;
                if stack_len > 0 {
                    let st = &raw[stack_start as usize..(stack_start + stack_len) as usize];
                    assert_eq!(common_type(st), Some(stack_id));
                    assert_eq!(p[4..8], st[4..8], "same pid");
                    joined += 1;
                }
            }
        }
    }
    assert_eq!(joined, events, "every event got its stack");
}

#[test]
fn every_page_is_consistent() {
    let fx = load();
    let mut pages = 0;
    for (_, raw) in &fx.cpus {
        for page in raw.chunks(4096) {
            let p = fx.layout.page(page).unwrap();
            assert!(!p.data.is_empty());
            assert!(p.records().all(|r| r.is_ok()));
            pages += 1;
        }
    }
    assert!(pages >= 2);
    let he = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ring/header_event"),
    )
    .unwrap();
    // The event header layout the decoder assumes is the one the kernel states.
    for want in [
        "type_len    :    5 bits",
        "time_delta  :   27 bits",
        "padding     : type == 29",
        "time_extend : type == 30",
    ] {
        assert!(he.contains(want), "header_event lacks `{want}`:\n{he}");
    }
}

/// A read can fall between an event and the stack its trigger records
/// right after it: the stack then comes first in the next batch, and
/// `index_pages_lead` hands it over to join the held event. On the real
/// pages: every page that starts with a stack, split there, joins it to
/// the last event before.
#[test]
fn a_stack_at_the_start_of_a_batch_is_handed_over() {
    use coolkprobe::ring::reader::{index_pages, index_pages_lead, Item};
    let fx = load();
    let stack_id = fx
        .formats
        .values()
        .find(|f| f.name == "kernel_stack")
        .unwrap()
        .id;
    let mut splits = 0;
    for (_, raw) in &fx.cpus {
        for at in (4096..raw.len()).step_by(4096) {
            let (before, after) = raw.split_at(at);
            let mut items = Vec::new();
            let mut lead = None;
            index_pages_lead(&fx.layout, Some(stack_id), after, &mut items, &mut lead).unwrap();
            let Some((start, len)) = lead else { continue };
            let st = &after[start as usize..(start + len) as usize];
            assert_eq!(common_type(st), Some(stack_id));
            let mut prev = Vec::new();
            index_pages(&fx.layout, Some(stack_id), before, &mut prev).unwrap();
            let Some(Item::Event {
                start, stack_len, ..
            }) = prev.last()
            else {
                panic!("a lead stack after no event");
            };
            assert_eq!(*stack_len, 0, "the event before has no stack yet");
            let ev = &before[*start as usize..];
            assert_eq!(ev[4..8], st[4..8], "same task");
            splits += 1;
        }
    }
    eprintln!("{splits} pages start with a stack");
}
