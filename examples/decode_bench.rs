//! Decode-only benchmark (not a test) on the raw pages saved in
//! tests/fixtures/ring: events decoded per second on one core (record
//! headers, timestamps, every field of every event), and events rendered
//! to text and to JSON (into memory, no I/O).
//!
//!   cargo run --release --example decode_bench [-- SECONDS_PER_STEP]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use coolkprobe::compile::plan::{CompiledProbe, Plan, Target};
use coolkprobe::render::{Kallsyms, Renderer};
use coolkprobe::ring::merge::Merger;
use coolkprobe::ring::page::PageLayout;
use coolkprobe::ring::reader::{index_pages, Batch, Item, Msg};
use coolkprobe::ring::{common_type, EventTable};
use coolkprobe::tracefs::format::EventFormat;

#[path = "common/cpu.rs"]
mod cpu;
use cpu::thread_cpu;

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ring");
    let layout = PageLayout::parse(
        &std::fs::read_to_string(d.join("header_page")).unwrap(),
        4096,
    )
    .unwrap();
    let meta = std::fs::read_to_string(d.join("meta")).unwrap();
    let mut raw = Vec::new();
    for c in 0..64 {
        if let Ok(b) = std::fs::read(d.join(format!("cpu{c}.raw"))) {
            raw.extend_from_slice(&b);
        }
    }
    // The plan the capture ran: f0..f4 by the ids in meta.
    let mut probes = Vec::new();
    let mut formats = Vec::new();
    for l in meta.lines() {
        let Some((k, id)) = l.split_once('=') else {
            continue;
        };
        let Some(idx) = k.strip_prefix('f').and_then(|i| i.parse::<usize>().ok()) else {
            continue;
        };
        let f =
            EventFormat::parse(&std::fs::read_to_string(d.join(format!("format.{id}"))).unwrap())
                .unwrap();
        let target = if f.field("__probe_ip").is_some() || f.field("__probe_func").is_some() {
            Target::Uprobe {
                ret: f.field("__probe_func").is_some(),
                path: "/x".into(),
                offset: 0,
                symbol: None,
            }
        } else {
            Target::Tracepoint {
                system: "s".into(),
                event: f.name.clone(),
            }
        };
        probes.push(CompiledProbe {
            index: idx,
            spec: format!("probe {idx}"),
            target,
            fetchargs: vec![],
            filter: None,
            fields: vec![],
            aggs: vec![],
            latency: None,
        });
        formats.push(f);
    }
    let plan = Plan {
        group: "coolkprobe_1".into(),
        probes,
    };
    let mut table = EventTable::default();
    for f in &formats {
        table.insert(f.clone());
    }
    let mut items = Vec::new();
    index_pages(&layout, None, &raw, &mut items).unwrap();
    let per_pass = items
        .iter()
        .filter(|i| matches!(i, Item::Event { .. }))
        .count() as u64;
    let known = items
        .iter()
        .filter(|i| match i {
            Item::Event { start, .. } => table
                .index(common_type(&raw[*start as usize..]).unwrap())
                .is_some(),
            _ => false,
        })
        .count() as u64;
    println!(
        "capture: {} pages, {per_pass} records ({known} of the plan's events), {} bytes",
        raw.len() / 4096,
        raw.len()
    );

    // Rates per second of this thread's CPU time: the machine may be
    // shared, and wall time would count the other tenants.
    let run = |name: &str, f: &mut dyn FnMut() -> u64| {
        let t0 = thread_cpu();
        let mut n = 0u64;
        while thread_cpu() - t0 < secs {
            n += f();
        }
        let rate = n as f64 / (thread_cpu() - t0);
        println!("{name:<34} {:>8.2} M events/s/core", rate / 1e6);
    };

    run("decode (headers + all fields)", &mut || {
        items.clear();
        index_pages(&layout, None, black_box(&raw), &mut items).unwrap();
        let mut n = 0;
        for it in &items {
            if let Item::Event { start, len, .. } = *it {
                let p = &raw[start as usize..(start + len) as usize];
                if let Some(i) = common_type(p).and_then(|id| table.index(id)) {
                    for f in &table.formats[i].fields {
                        black_box(f.value(p));
                    }
                }
                n += 1;
            }
        }
        n
    });
    for json in [false, true] {
        let mut r = Renderer::new(&plan, formats.clone(), None, json, std::io::sink());
        r.kallsyms = Kallsyms::from_file("/nonexistent");
        r.comms.disable_lookups();
        let mut bytes = 0u64;
        let name = if json {
            "decode + render JSON (to memory)"
        } else {
            "decode + render text (to memory)"
        };
        run(name, &mut || {
            let mut items = Vec::with_capacity(per_pass as usize);
            index_pages(&layout, None, &raw, &mut items).unwrap();
            let mut m = Merger::new(1, Duration::ZERO);
            let before = r.counts.events;
            m.feed(
                Msg::Batch(Batch {
                    slot: 0,
                    cpu: 1,
                    buf: raw.clone(),
                    items,
                    arrival: Instant::now(),
                }),
                &mut r,
            );
            m.feed(
                Msg::Done {
                    slot: 0,
                    error: None,
                },
                &mut r,
            );
            m.emit(&mut r, None);
            bytes += 1;
            r.flush();
            r.counts.events - before
        });
        black_box(bytes);
    }
}
