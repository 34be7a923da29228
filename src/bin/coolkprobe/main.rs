//! The `coolkprobe` command: options are parsed once into a mode, the
//! mode's command runs on the library, and how it ended becomes the exit
//! code (README, "Options").

mod check;
mod cli;
mod diagnostics;
mod discover;
mod exit;
mod show;
mod trace;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Args::parse();
    if let Err(f) = args.check() {
        return exit::code(Err(f));
    }
    let result = match args.mode() {
        cli::Mode::Discover => discover::run(&args),
        cli::Mode::Show => show::run(&args),
        cli::Mode::Check => check::run(&args),
        cli::Mode::Trace => trace::run(&args),
    };
    exit::code(result)
}
