//! The refactor-ai binary: process-wide setup, then `refactor_ai::run`.

use std::process::ExitCode;

/// mimalloc for our allocations and, below, for tree-sitter's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // SAFETY: nothing has touched tree-sitter yet.
    unsafe { refactor_ai::tree_sitter_uses_mimalloc() };
    refactor_ai::run(std::env::args_os())
}
