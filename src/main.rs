use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = coolkprobe::cli::Args::parse();
    coolkprobe::app::main(args)
}
