//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "refactor-ai",
    version,
    about = "Find duplicated and tangled code in Rust and Python, and propose proven refactors.",
    after_help = "Exit codes: 0 ok, 1 findings at or above --fail-on, 2 error."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Report smells: functions over metric thresholds and anti-patterns.
    Scan(ScanArgs),
    /// Print per-function metrics (lines, parameters, nesting, cyclomatic and cognitive
    /// complexity, returns).
    Metrics(MetricsArgs),
    /// Show this machine's hardware profile and the local model refactor-ai would run on
    /// it, with the reasons.
    Hw(HwArgs),
    /// Manage local models: list the catalog, pull, verify, locate and remove model files.
    Models(ModelsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ModelsArgs {
    #[command(subcommand)]
    pub(crate) action: ModelsAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ModelsAction {
    /// Every catalog model: installed or not, size, where, whether it fits this machine.
    List {
        #[arg(long, value_enum, default_value_t = MetricsFormat::Text)]
        format: MetricsFormat,
    },
    /// Download a model from its sources in order, verify its sha256 and install it.
    Pull {
        /// A catalog id (`refactor-ai models list`).
        id: String,
        /// Seconds the Hugging Face Hub may take to start answering before the next source
        /// is tried.
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        hub_timeout: u64,
    },
    /// Hash installed model files again and compare them with the catalog.
    Verify {
        /// One catalog id (default: every installed model).
        id: Option<String>,
    },
    /// Print the path of an installed model file.
    Path { id: String },
    /// Delete an installed model file.
    Rm { id: String },
}

#[derive(Debug, Args)]
pub(crate) struct HwArgs {
    #[arg(long, value_enum, default_value_t = MetricsFormat::Text)]
    pub(crate) format: MetricsFormat,
    /// Tokens of context the model must hold (prompt plus answer).
    #[arg(long, value_name = "TOKENS", default_value_t = 4096)]
    pub(crate) context: u64,
    /// The least acceptable generation speed, in tokens per second (default: 5, or 1 with
    /// --batch).
    #[arg(long, value_name = "TOKENS_PER_SECOND")]
    pub(crate) min_speed: Option<f64>,
    /// Choose for batch runs, where a larger and slower model is acceptable.
    #[arg(long)]
    pub(crate) batch: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Common {
    /// The file or directory to analyse.
    #[arg(default_value = ".")]
    pub(crate) path: PathBuf,
    /// Read this config instead of PATH/refactor-ai.toml.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// When to colour text output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
    /// Worker threads (default: one per logical CPU).
    #[arg(long, short = 'j', value_name = "N")]
    pub(crate) threads: Option<usize>,
    /// Parse every file again instead of reusing the results cached for unchanged files.
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// Where to keep the result cache (default: REFACTOR_AI_CACHE_DIR, else the user cache
    /// directory, e.g. ~/.cache/refactor-ai).
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub(crate) cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    #[arg(long, value_enum, default_value_t = ScanFormat::Text)]
    pub(crate) format: ScanFormat,
    /// Exit with code 1 if any finding is at or above this severity.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub(crate) fail_on: Option<FailOn>,
}

#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    #[arg(long, value_enum, default_value_t = MetricsFormat::Text)]
    pub(crate) format: MetricsFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ScanFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum MetricsFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum FailOn {
    Error,
    Warning,
    Note,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}
