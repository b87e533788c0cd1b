//! The `viewcast` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() {
    let cli = viewcast::cli::Cli::parse();
    if let Err(e) = viewcast::cli::execute(cli) {
        eprintln!("viewcast: {e}");
        std::process::exit(e.code);
    }
}
