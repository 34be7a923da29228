//! `--check`: every probe compiled for every kernel of `-v`, and a table,
//! probes by kernels (README, "Fleets"): what each probe is on each
//! kernel, then why, for every one that is not simply `ok`. `--json`
//! prints the same as one JSON object, for CI gates. Exit 1 when a probe
//! fails on some kernel.

use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::{json, Value};

use coolkprobe::diag::Diagnostic;
use coolkprobe::fleet::{self, Cell, Report};
use coolkprobe::pipeline::{BuildError, Source};

use crate::cli::Args;
use crate::diagnostics::{render, render_probes};
use crate::exit::Failure;

pub fn run(args: &Args) -> Result<(), Failure> {
    let sources = crate::cli::sources(args)?;
    let opts = args.pipeline(false);
    let fleet = match fleet::build(&sources, &opts, &args.vmlinux) {
        Ok(f) => f,
        Err(BuildError::Probes(d)) => return Err(Failure::Input(render_probes(&d, &sources))),
        Err(e) => return Err(Failure::Runtime(e.into())),
    };
    let report = Report::new(fleet, &sources);
    let out = if args.json {
        let mut s = json(&report, &sources).to_string();
        s.push('\n');
        s
    } else {
        text(&report, &sources)
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush());
    let failing = failing(&report);
    if failing.is_empty() {
        return Ok(());
    }
    Err(Failure::Verdict(format!(
        "{} of {} probe(s) fail on some kernel: {}\n",
        failing.len(),
        sources.len(),
        failing.join(", ")
    )))
}

/// The events of the probes that fail on some kernel.
fn failing(report: &Report) -> Vec<String> {
    let n = report.rows.first().map_or(0, Vec::len);
    (0..n)
        .filter(|&j| report.rows.iter().any(|r| r[j].status.fails()))
        .map(|j| format!("f{j}"))
        .collect()
}

fn arch_name(report: &Report, k: usize) -> String {
    report.arches[k]
        .or(report.kernels[k].arch)
        .map_or_else(|| "?".to_string(), |a| a.to_string())
}

/// The probes, the table, then each cell that says more than `ok`.
fn text(report: &Report, sources: &[Source]) -> String {
    let mut s = String::from("probes:\n");
    for (j, src) in sources.iter().enumerate() {
        let _ = writeln!(s, "  f{j}  {}", src.text.replace(['\n', '\r'], " "));
    }
    s.push('\n');
    let mut table: Vec<Vec<String>> = vec![{
        let mut h = vec!["kernel".to_string(), "arch".to_string()];
        h.extend((0..sources.len()).map(|j| format!("f{j}")));
        h
    }];
    for (k, row) in report.rows.iter().enumerate() {
        let mut line = vec![report.kernels[k].name(), arch_name(report, k)];
        line.extend(row.iter().map(|c| c.status.name().to_string()));
        table.push(line);
    }
    let cols = table[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in &table {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    for (k, row) in report.rows.iter().enumerate() {
        if let Some(c) = row.first().filter(|c| c.status == fleet::Status::Types) {
            // Said once for the kernel, not once per probe.
            let _ = writeln!(s, "\n{}: types", report.kernels[k].name());
            for d in &c.diagnostics {
                s.push_str(&render(d, None, None));
            }
            continue;
        }
        for (j, cell) in row.iter().enumerate() {
            if cell.status == fleet::Status::Ok && cell.diagnostics.is_empty() {
                continue;
            }
            s.push('\n');
            s.push_str(&details(report, k, j, cell, &sources[j]));
        }
    }
    s
}

/// What one cell says besides its status.
fn details(report: &Report, k: usize, j: usize, cell: &Cell, src: &Source) -> String {
    let kernel = report.kernels[k].name();
    let mut s = format!("f{j} on {kernel}: {}", cell.status.name());
    match (cell.status, cell.reference) {
        (fleet::Status::Differs, Some(r)) => {
            let _ = writeln!(s, " from {}", report.kernels[r].name());
            for d in &cell.differences {
                let _ = writeln!(s, "  {}: {} -> {}", d.name, d.was, d.here);
            }
        }
        _ => s.push('\n'),
    }
    for d in &cell.diagnostics {
        // A kernel whose types cannot be read has no spec to point into.
        let text = d.span.map(|_| src.text.as_str());
        s.push_str(&render(d, text, src.origin.as_deref()));
    }
    s
}

fn json(report: &Report, sources: &[Source]) -> Value {
    let kernels: Vec<Value> = report
        .kernels
        .iter()
        .enumerate()
        .map(|(k, kernel)| {
            json!({
                "name": kernel.name(),
                "release": kernel.release,
                "release_from": (!kernel.release_from.is_empty()).then_some(kernel.release_from),
                "arch": report.arches[k].or(kernel.arch).map(|a| a.to_string()),
                "arch_from": (!kernel.arch_from.is_empty()).then_some(kernel.arch_from),
                "build_id": kernel.build_id_hex(),
                "file": kernel.path.as_ref().map(|p| p.display().to_string()),
            })
        })
        .collect();
    let probes: Vec<Value> = sources
        .iter()
        .enumerate()
        .map(|(j, s)| json!({"event": format!("f{j}"), "probe": s.text, "origin": s.origin}))
        .collect();
    let mut results = Vec::new();
    for (k, row) in report.rows.iter().enumerate() {
        for (j, cell) in row.iter().enumerate() {
            results.push(json!({
                "kernel": report.kernels[k].name(),
                "event": format!("f{j}"),
                "status": cell.status.name(),
                "fails": cell.status.fails(),
                "compared_with": cell.reference.map(|r| report.kernels[r].name()),
                "fetchargs": cell.fetchargs,
                "differences": cell.differences.iter().map(|d| json!({
                    "name": d.name, "was": d.was, "here": d.here,
                })).collect::<Vec<_>>(),
                "diagnostics": cell.diagnostics.iter().map(diagnostic).collect::<Vec<_>>(),
            }));
        }
    }
    json!({
        "kernels": kernels,
        "probes": probes,
        "results": results,
        "failing": failing(report),
    })
}

fn diagnostic(d: &Diagnostic) -> Value {
    json!({
        "level": d.level.to_string(),
        "message": d.message,
        "help": d.help,
        "span": d.span.map(|s| [s.start, s.end]),
    })
}
