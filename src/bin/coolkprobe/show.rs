//! `-S`: the tracefs commands of the plan as a shell script on stdout;
//! nothing is applied, so neither root nor tracefs is needed.

use std::io::Write as _;

use anyhow::Context as _;

use coolkprobe::agg::Path;
use coolkprobe::pipeline::aggregation_why;
use coolkprobe::tracefs::commands::InstallOptions;
use coolkprobe::tracefs::script::show_script;

use crate::cli::Args;
use crate::exit::Failure;

pub fn run(args: &Args) -> Result<(), Failure> {
    let crate::cli::Planned {
        built,
        agg,
        latency,
    } = crate::cli::plan(args, false)?;
    let mut opts = InstallOptions {
        stack: args.stack,
        pid: args.pid_filter(),
        ..InstallOptions::default()
    };
    let mut comments = Vec::new();
    if let Some(l) = &latency {
        opts.latency = (l.path == coolkprobe::latency::Path::Kernel).then_some(l.features);
        comments.push(coolkprobe::pipeline::latency_why(l));
    }
    if let Some(a) = &agg {
        opts.hist = (a.path == Path::Kernel).then_some(a.features);
        opts.agg_size = a.size;
        comments.push(aggregation_why(a));
    }
    if let Some(why) = &built.arg_access {
        comments.push(format!("%N is read from {why}"));
    }
    comments.extend(built.return_arg_access.clone());
    let script = show_script(&built.plan, opts, &comments);
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
