//! The live run's main thread alone (not a test): real pages of one
//! tracepoint, indexed as a reader does, then merged and rendered through
//! the same chain a live run uses (latency pairing, aggregation tap,
//! renderer) into memory. CPU nanoseconds per event, text and JSON.
//!
//! Pages are captured from this machine's kernel first (as root):
//!   cargo run --release --example merge_bench -- capture DIR
//!   cargo run --release --example merge_bench -- DIR [SECONDS_PER_STEP]

use std::hint::black_box;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use coolkprobe::agg::user::{Aggregator, Tap};
use coolkprobe::compile::plan::{CompiledProbe, Plan, Target};
use coolkprobe::latency::Pairer;
use coolkprobe::render::{Kallsyms, Renderer};
use coolkprobe::ring::merge::Merger;
use coolkprobe::ring::page::PageLayout;
use coolkprobe::ring::reader::{index_pages, Batch, Msg};
use coolkprobe::tracefs::format::EventFormat;

const T: &str = "/sys/kernel/tracing";
const EVENT: &str = "syscalls/sys_enter_getppid";

#[path = "common/cpu.rs"]
mod cpu;
use cpu::thread_cpu;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("capture") => capture(Path::new(args.get(1).expect("DIR"))),
        Some(dir) => bench(
            Path::new(dir),
            args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2.0),
        ),
        None => eprintln!("usage: merge_bench capture DIR | merge_bench DIR [SECS]"),
    }
}

/// One CPU's pages of ~200k getppid calls, with the format files.
fn capture(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let inst = format!("{T}/instances/merge_bench_{}", std::process::id());
    std::fs::create_dir(&inst).unwrap();
    std::fs::write(format!("{inst}/buffer_size_kb"), "8192").unwrap();
    std::fs::write(format!("{inst}/events/{EVENT}/enable"), "1").unwrap();
    let cpu = unsafe { libc::sched_getcpu() };
    for _ in 0..200_000 {
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    std::fs::write(format!("{inst}/events/{EVENT}/enable"), "0").unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("{inst}/per_cpu/cpu{cpu}/trace_pipe_raw"))
        .unwrap();
    let mut raw = Vec::new();
    let mut page = vec![0u8; 4096];
    while let Ok(n) = f.read(&mut page) {
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&page[..n]);
    }
    drop(f);
    std::fs::write(dir.join("cpu.raw"), &raw).unwrap();
    for (from, to) in [
        (format!("{T}/events/header_page"), "header_page"),
        (format!("{T}/events/{EVENT}/format"), "format"),
    ] {
        std::fs::copy(from, dir.join(to)).unwrap();
    }
    std::fs::remove_dir(&inst).unwrap();
    println!("{} pages from cpu {cpu}", raw.len() / 4096);
}

fn bench(dir: &Path, secs: f64) {
    let layout = PageLayout::parse(
        &std::fs::read_to_string(dir.join("header_page")).unwrap(),
        4096,
    )
    .unwrap();
    let format = EventFormat::parse(&std::fs::read_to_string(dir.join("format")).unwrap()).unwrap();
    let raw = std::fs::read(dir.join("cpu.raw")).unwrap();
    let plan = Plan {
        group: "coolkprobe_1".into(),
        probes: vec![CompiledProbe {
            index: 0,
            spec: format!("t {}", EVENT.replace('/', ":")),
            target: Target::Tracepoint {
                system: "syscalls".into(),
                event: format.name.clone(),
            },
            fetchargs: vec![],
            filter: None,
            fields: vec![],
            aggs: vec![],
            latency: None,
        }],
    };
    let formats = vec![format];
    for json in [false, true] {
        let mut r = Renderer::new(&plan, formats.clone(), None, json, std::io::sink());
        r.kallsyms = Kallsyms::from_file("/nonexistent");
        r.comms.disable_lookups();
        let r = Tap::new(r, Aggregator::new(vec![], 1), &formats, None);
        let mut r = Pairer::new(r, &plan, &formats, &formats).unwrap();
        // Trials of a tenth of the time each: the best and the median
        // (a shared machine's noise only ever adds).
        let mut trials = Vec::new();
        for _ in 0..10 {
            let t0 = thread_cpu();
            let mut n = 0u64;
            while thread_cpu() - t0 < secs / 10.0 {
                let mut items = Vec::new();
                index_pages(&layout, None, &raw, &mut items).unwrap();
                let mut m = Merger::new(2, Duration::ZERO);
                let before = r.inner.inner.counts.events;
                m.feed(
                    Msg::Batch(Batch {
                        slot: 0,
                        cpu: 0,
                        buf: raw.clone(),
                        items,
                        arrival: Instant::now(),
                    }),
                    &mut r,
                );
                for slot in 0..2 {
                    m.feed(Msg::Done { slot, error: None }, &mut r);
                }
                while m.emit(&mut r, None).1.is_some() {}
                r.inner.inner.flush();
                n += r.inner.inner.counts.events - before;
            }
            trials.push((thread_cpu() - t0) * 1e9 / n as f64);
        }
        trials.sort_by(f64::total_cmp);
        let name = if json { "json" } else { "text" };
        println!(
            "{name}: best {:.1} median {:.1} ns/event (index + merge + render)",
            trials[0], trials[5]
        );
        black_box(&r);
    }
}
