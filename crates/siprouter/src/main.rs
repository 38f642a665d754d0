//! The `siprouter` binary.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(siprouter::cli::run(&args));
}
