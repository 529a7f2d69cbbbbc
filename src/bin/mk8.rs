//! `mk8`: the command-line tool (also usable as the kubectl plugin `kubectl-mk8`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mk8::cli::main()
}
