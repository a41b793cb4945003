//! The refactor-ai binary: process-wide setup, then `refactor_ai::run`.

use std::process::ExitCode;

/// mimalloc for our allocations and, below, for tree-sitter's: parsing allocates node by
/// node, and glibc's allocator cost a tenth of `scan`'s time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // SAFETY: no tree-sitter object exists yet, so nothing allocated by one allocator can be
    // freed by the other; mimalloc's functions have the C signatures tree-sitter expects.
    unsafe {
        tree_sitter::set_allocator(Some(tree_sitter::Allocator {
            malloc: libmimalloc_sys::mi_malloc,
            calloc: libmimalloc_sys::mi_calloc,
            realloc: libmimalloc_sys::mi_realloc,
            free: libmimalloc_sys::mi_free,
        }));
    }
    refactor_ai::run(std::env::args_os())
}
