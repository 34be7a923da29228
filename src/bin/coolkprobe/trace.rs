//! A live run: the plan installed, its events streamed until a duration,
//! a count, a signal or a closed output ends it, then everything undone.
//! Also the plan both this and `-S` start from.

use anyhow::Context as _;

use coolkprobe::pipeline::{self, BuildError, Built, Source};

use crate::cli::Args;
use crate::diagnostics::render_probes;
use crate::exit::Failure;

pub fn run(args: &Args) -> Result<(), Failure> {
    let built = plan(args, true)?;
    let summary = coolkprobe::live::run(&args.live(), &built.plan).map_err(anyhow::Error::from)?;
    coolkprobe::live::print_summary(&summary);
    Ok(())
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
