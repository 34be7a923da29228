//! Live mode for `t SYSTEM:EVENT [f:FILTER]` probes only, without the
//! spec compiler: the library's live engine on its own, for benchmarks.
//! `tracepoint [-d TIME] [-c N] [-o FILE] [--json] [--no-names] PROBE...`
//! (`--no-names`: no task events to keep names current, for bench/names.sh)

use coolkprobe::compile::plan::{CompiledProbe, Plan, Target};
use coolkprobe::live::{self, LiveOptions};

fn main() -> std::process::ExitCode {
    let mut opts = LiveOptions {
        echo: true,
        ..Default::default()
    };
    let mut specs = Vec::new();
    let mut argv = std::env::args().skip(1);
    while let Some(a) = argv.next() {
        match a.as_str() {
            "--json" => opts.json = true,
            "--no-names" => opts.no_name_events = true,
            "-o" => opts.output = argv.next().map(Into::into),
            "-d" => opts.duration = argv.next().and_then(|d| live::parse_duration(&d).ok()),
            "-c" => opts.count = argv.next().and_then(|c| c.parse().ok()),
            _ => specs.push(a),
        }
    }
    let mut probes = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let (head, filter) = match spec.split_once(" f:") {
            Some((h, f)) => (h, Some(f.trim().to_string())),
            None => (spec.as_str(), None),
        };
        let Some(("t", place)) = head.trim().split_once(' ') else {
            eprintln!("only `t SYSTEM:EVENT [f:FILTER]` here: {spec}");
            return std::process::ExitCode::FAILURE;
        };
        let Some((system, event)) = place.trim().split_once(':') else {
            eprintln!("bad tracepoint {place}");
            return std::process::ExitCode::FAILURE;
        };
        probes.push(CompiledProbe {
            index,
            spec: spec.clone(),
            target: Target::Tracepoint {
                system: system.into(),
                event: event.into(),
            },
            fetchargs: vec![],
            filter,
            fields: vec![],
            aggs: vec![],
            latency: None,
        });
    }
    let plan = Plan {
        group: format!("coolkprobe_{}", std::process::id()),
        probes,
    };
    match live::run(&opts, &plan) {
        Ok(summary) => {
            live::print_summary(&summary);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("coolkprobe: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
