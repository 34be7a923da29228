//! The `coolkprobe` command: options are parsed once into a mode, the
//! mode's command runs on the library, and how it ended becomes the exit
//! code (README, "Options"). `-S` and a live run start from the same plan.

mod cli;
mod diagnostics;
mod discover;
mod exit;
mod show;
mod trace;

use anyhow::Context as _;
use clap::Parser;

use coolkprobe::pipeline::{self, BuildError, Built, Source};

use crate::cli::Args;
use crate::diagnostics::render_probes;
use crate::exit::Failure;

fn main() -> std::process::ExitCode {
    let args = cli::Args::parse();
    let result = match args.mode() {
        cli::Mode::Discover => discover::run(&args),
        cli::Mode::Show => show::run(&args),
        cli::Mode::Trace => trace::run(&args),
    };
    exit::code(result)
}

/// The probes of the command line, then those of `-f FILE`, compiled; the
/// warnings and notes are printed on the way.
pub fn plan(args: &Args, live: bool) -> Result<Built, Failure> {
    let sources = sources(args)?;
    match pipeline::build(&sources, &args.pipeline(live)) {
        Ok(built) => {
            eprint!("{}", render_probes(&built.diagnostics, &sources));
            Ok(built)
        }
        Err(BuildError::Probes(diags)) => Err(Failure::Input(render_probes(&diags, &sources))),
        Err(e @ BuildError::Types { .. }) => Err(Failure::Runtime(e.into())),
    }
}

fn sources(args: &Args) -> Result<Vec<Source>, Failure> {
    let mut v: Vec<Source> = args
        .probes
        .iter()
        .map(|p| Source {
            text: p.clone(),
            origin: None,
        })
        .collect();
    if let Some(path) = &args.file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read probe file {}", path.display()))?;
        v.extend(pipeline::probes_in_file(&text, path));
    }
    if v.is_empty() {
        return Err(Failure::Input(
            "error: no probe given\n\nusage: coolkprobe [OPTIONS] PROBE...   (e.g. coolkprobe -S 'p do_exit')\n       see coolkprobe --help\n"
                .into(),
        ));
    }
    Ok(v)
}
