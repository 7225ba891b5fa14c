//! The `llmux` binary: see `llmux::cli`.

fn main() -> std::process::ExitCode {
    llmux::cli::main()
}
