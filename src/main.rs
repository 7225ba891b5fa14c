//! The `llmux` binary: see `llmux::cli`.

/// mimalloc rather than the system allocator: a served request allocates and frees many small
/// buffers (JSON, frames, events), which glibc's malloc made ~8% of its CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    llmux::cli::main()
}
