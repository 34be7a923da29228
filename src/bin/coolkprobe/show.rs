//! `-S`: the tracefs commands of the plan as a shell script on stdout;
//! nothing is applied, so neither root nor tracefs is needed. With several
//! kernels (`-v` more than once, or a directory) one script for all of
//! them: it installs on each the definitions compiled for its types.

use std::io::Write as _;

use anyhow::Context as _;

use coolkprobe::agg::Path;
use coolkprobe::diag::Diagnostic;
use coolkprobe::fleet;
use coolkprobe::live::AggRun;
use coolkprobe::pipeline::{aggregation_why, BuildError, Built, Source};
use coolkprobe::tracefs::commands::InstallOptions;
use coolkprobe::tracefs::script::{fleet_script, show_script, ScriptKernel};

use crate::cli::Args;
use crate::diagnostics::{render, render_probes};
use crate::exit::Failure;

pub fn run(args: &Args) -> Result<(), Failure> {
    if crate::cli::fleet(args) {
        return run_fleet(args);
    }
    let crate::cli::Planned {
        built,
        agg,
        latency,
    } = crate::cli::plan(args, false)?;
    let (mut opts, mut comments) = install_options(args, agg.as_ref());
    if let Some(l) = &latency {
        opts.latency = (l.path == coolkprobe::latency::Path::Kernel).then_some(l.features);
        comments.insert(0, coolkprobe::pipeline::latency_why(l));
    }
    if let Some(why) = &built.arg_access {
        comments.push(format!("%N is read from {why}"));
    }
    comments.extend(built.return_arg_access.clone());
    emit(args, &show_script(&built.plan, opts, &comments))
}

/// The script to `-o`, else stdout.
fn emit(args: &Args, script: &str) -> Result<(), Failure> {
    if let Some(path) = &args.output {
        return std::fs::write(path, script)
            .with_context(|| format!("cannot write the script to {}", path.display()))
            .map_err(Failure::from);
    }
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = out.write_all(script.as_bytes()).and_then(|_| out.flush());
    Ok(())
}

/// What the install writes besides the plan, and the header's comments.
fn install_options(args: &Args, agg: Option<&AggRun>) -> (InstallOptions, Vec<String>) {
    let mut opts = InstallOptions {
        stack: args.stack,
        pid: args.pid_filter(),
        ..InstallOptions::default()
    };
    let mut comments = Vec::new();
    if let Some(a) = agg {
        opts.hist = (a.path == Path::Kernel).then_some(a.features);
        opts.agg_size = a.size;
        comments.push(aggregation_why(a));
    }
    (opts, comments)
}

/// One script for every kernel of `-v`; every probe must compile on every
/// kernel, and every kernel must be one the script can recognise.
fn run_fleet(args: &Args) -> Result<(), Failure> {
    let sources = crate::cli::sources(args)?;
    let opts = args.pipeline(false);
    let fleet = match fleet::build(&sources, &opts, &args.vmlinux) {
        Ok(f) => f,
        Err(BuildError::Probes(d)) => return Err(Failure::Input(render_probes(&d, &sources))),
        Err(e) => return Err(Failure::Runtime(e.into())),
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut kernels: Vec<(ScriptKernel, Built)> = Vec::new();
    // The file each of `kernels` came from.
    let mut files: Vec<String> = Vec::new();
    for (kernel, build) in fleet.kernels.iter().zip(fleet.builds) {
        let name = kernel.name();
        let built = match build {
            Ok(b) => {
                let arch = b.arch;
                match b.into_built() {
                    Ok(built) => Some((arch, built)),
                    Err(BuildError::Probes(d)) => {
                        errors.push((name.clone(), d));
                        None
                    }
                    Err(e) => return Err(Failure::Runtime(e.into())),
                }
            }
            Err(e) => return Err(Failure::Runtime(e.into())),
        };
        let Some((arch, built)) = built else { continue };
        if !built.diagnostics.is_empty() {
            warnings.push((name.clone(), built.diagnostics.clone()));
        }
        if kernel.build_id.is_none() && kernel.release.is_none() {
            return Err(Failure::Input(format!(
                "error: nothing tells which kernel {name} is: it has no build-id and no release\n\
                 help: name the file after the kernel's release (`vmlinux-$(uname -r).btf`), or \
                 put a copy of that kernel's /sys/kernel/notes beside it as {name}.notes\n"
            )));
        }
        let k = ScriptKernel {
            name: name.clone(),
            release: kernel.release.clone(),
            arch,
            build_id: kernel.build_id_hex(),
        };
        let file = kernel
            .path
            .as_ref()
            .map_or_else(|| name.clone(), |p| p.display().to_string());
        let same = kernels
            .iter()
            .position(|(o, _)| match (&o.build_id, &k.build_id) {
                (Some(a), Some(b)) => a == b,
                (None, None) => o.release == k.release && o.arch == k.arch,
                _ => false,
            });
        if let Some(o) = same {
            if kernels[o].0.build_id.is_some() {
                // The same build twice (a file and its copy): one is enough.
                continue;
            }
            return Err(Failure::Input(format!(
                "error: {} and {file} are both {} {} and have no build-id: the script could not tell them apart\n\
                 help: put a copy of each kernel's /sys/kernel/notes beside its file (NAME.notes)\n",
                files[o],
                k.release.as_deref().unwrap_or(""),
                k.arch
            )));
        }
        files.push(file);
        kernels.push((k, built));
    }
    eprint!("{}", per_kernel(&warnings, &sources));
    if !errors.is_empty() {
        let mut text = per_kernel(&errors, &sources);
        text.push_str(
            "help: every probe must compile for every kernel of the script; --check shows each probe on each kernel\n",
        );
        return Err(Failure::Input(text));
    }
    // Every kernel is another machine: aggregations are decided as for one.
    let agg = match kernels.first() {
        Some((_, b)) => coolkprobe::pipeline::aggregation(&b.plan, &opts, &args.aggregation())
            .map_err(|d| Failure::Input(render(&d, None, None)))?,
        None => None,
    };
    let (install, mut comments) = install_options(args, agg.as_ref());
    if kernels.iter().any(|(_, b)| b.arg_access.is_some()) {
        comments.push(
            "%N is read from each kernel's argument registers: the targets are other kernels \
             (--arg-fetch argn for $argN)"
                .into(),
        );
    }
    // Kept from the entry only where the kernels keep them (--arg-fetch argn).
    if let Some(why) = kernels
        .iter()
        .find_map(|(_, b)| b.return_arg_access.clone())
    {
        comments.push(why);
    }
    let plans: Vec<(ScriptKernel, &coolkprobe::compile::plan::Plan)> =
        kernels.iter().map(|(k, b)| (k.clone(), &b.plan)).collect();
    emit(args, &fleet_script(&plans, install, &comments))
}

/// Diagnostics of several kernels: each one once, with the kernels it
/// holds on.
fn per_kernel(by_kernel: &[(String, Vec<(usize, Diagnostic)>)], sources: &[Source]) -> String {
    let mut seen: Vec<((usize, Diagnostic), Vec<String>)> = Vec::new();
    for (kernel, diags) in by_kernel {
        for d in diags {
            match seen.iter_mut().find(|(e, _)| e == d) {
                Some((_, ks)) => ks.push(kernel.clone()),
                None => seen.push((d.clone(), vec![kernel.clone()])),
            }
        }
    }
    seen.sort_by_key(|((i, _), _)| *i);
    let mut out = String::new();
    for ((i, d), ks) in seen {
        out.push_str(&format!("on {}:\n", ks.join(", ")));
        let s = sources.get(i);
        out.push_str(&render(
            &d,
            s.map(|s| s.text.as_str()),
            s.and_then(|s| s.origin.as_deref()),
        ));
    }
    out
}
