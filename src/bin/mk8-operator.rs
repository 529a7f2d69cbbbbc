//! `mk8-operator`: the controller manager of mk8.
#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = mk8::operator::OperatorConfig::parse();
    match mk8::operator::main(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mk8-operator: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
