//! The one integration-test binary: drives the real CLI (in-process through
//! `refactor_ai::run_with`, or as a subprocess where exit codes and streams matter).

mod util;

mod cache;
mod cli;
mod clone_recall;
mod clones;
mod docs;
mod llm;
mod metrics_fixtures;
mod regression;
mod smell_fixtures;
mod suggest;
