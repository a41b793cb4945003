//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub(crate) use crate::suggest::edit::EditFormat;

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
    /// Manage and run local models: list the catalog, pull, verify, locate, remove, run,
    /// tokenize with and benchmark model files.
    Models(ModelsArgs),
    /// Ask the local model to refactor the top findings, and prove each proposal: it must
    /// apply, parse, improve the finding and pass the project's tests in a sandbox copy.
    /// Nothing in the project changes (see `apply`).
    Suggest(SuggestArgs),
    /// Apply proven proposals of the last `suggest` to the project, with an undo journal
    /// and a CHANGELOG.md entry.
    Apply(ApplyArgs),
    /// Restore the project exactly as it was before the last `apply`.
    Undo(UndoArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SuggestArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    #[arg(long, value_enum, default_value_t = SuggestFormat::Text)]
    pub(crate) format: SuggestFormat,
    /// A catalog id or a GGUF file (default: the largest installed model that fits this
    /// machine); `replay:FILE` replays answers from a JSON array instead of a model.
    #[arg(long, value_name = "ID|PATH")]
    pub(crate) model: Option<String>,
    /// How many findings to attempt, best first.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub(crate) max: usize,
    /// Only this finding (its id from `scan`; repeatable).
    #[arg(long, value_name = "ID")]
    pub(crate) finding: Vec<String>,
    /// Only findings of this rule (`duplicate-code` covers its three types; repeatable).
    #[arg(long, value_name = "RULE")]
    pub(crate) rule: Vec<String>,
    /// Only findings in this file (relative to PATH).
    #[arg(long, value_name = "FILE")]
    pub(crate) file: Option<String>,
    /// With --file: only findings overlapping these lines (`A-B`).
    #[arg(long, value_name = "A-B", requires = "file")]
    pub(crate) lines: Option<String>,
    /// How the model writes its edits.
    #[arg(long, value_enum, default_value_t = EditFormat::Functions)]
    pub(crate) edit_format: EditFormat,
    /// Further attempts after a rejected proposal, each told why the last failed.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) retries: u32,
    /// Let proposals edit test files.
    #[arg(long)]
    pub(crate) allow_test_edits: bool,
    /// Sandbox runs at once (default: from the cores and memory).
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// The longest answer the model may write, in tokens.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub(crate) max_tokens: usize,
    /// A directory of prompt templates that replace the built-in ones of the same name.
    #[arg(long, value_name = "DIR")]
    pub(crate) prompts: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The project `suggest` ran on.
    #[arg(default_value = ".")]
    pub(crate) path: PathBuf,
    /// A proven proposal (or its finding's id) to apply; repeatable.
    #[arg(long, value_name = "ID", required_unless_present = "all")]
    pub(crate) id: Vec<String>,
    /// Every proven proposal of the last session.
    #[arg(long, conflicts_with = "id")]
    pub(crate) all: bool,
    /// One git commit per applied proposal (only the files it changed, and CHANGELOG.md).
    #[arg(long)]
    pub(crate) commit: bool,
    /// With --commit: go ahead although the git index has staged changes.
    #[arg(long, requires = "commit")]
    pub(crate) allow_dirty: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UndoArgs {
    /// The project `apply` ran on.
    #[arg(default_value = ".")]
    pub(crate) path: PathBuf,
    /// How many applies to undo, newest first.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) steps: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum SuggestFormat {
    Text,
    Json,
    Sarif,
    /// A patch of every proven proposal, for `git apply`.
    Diff,
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
    /// Delete an installed model file (and its converted copy).
    Rm { id: String },
    /// Generate text with a model: the prompt goes through the model's chat template
    /// unless --raw.
    Run(RunArgs),
    /// Print the token ids of a text, as the model's tokenizer splits it.
    Tokenize {
        /// A catalog id or a GGUF file.
        #[arg(value_name = "ID|PATH")]
        model: String,
        /// The text (or --file).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        text: Option<String>,
        /// Read the text from this file.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = MetricsFormat::Text)]
        format: MetricsFormat,
    },
    /// Measure load time, prompt and generation speed and peak memory, like llama-bench.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// A catalog id or a GGUF file.
    #[arg(value_name = "ID|PATH")]
    pub(crate) model: String,
    /// The prompt (or --file).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub(crate) prompt: Option<String>,
    /// Read the prompt from this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// A system message before the prompt (chat mode only).
    #[arg(long, conflicts_with = "raw")]
    pub(crate) system: Option<String>,
    /// Continue the prompt text as it is, without the chat template.
    #[arg(long)]
    pub(crate) raw: bool,
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(crate) max_tokens: usize,
    /// 0 is greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) temperature: f64,
    /// Sample among the K most likely tokens (0: all).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub(crate) top_k: usize,
    /// Sample among the most likely tokens that add up to P.
    #[arg(long, value_name = "P", default_value_t = 1.0)]
    pub(crate) top_p: f64,
    /// Penalise tokens seen in the last 64 (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) repeat_penalty: f32,
    #[arg(long, default_value_t = 299_792_458)]
    pub(crate) seed: u64,
    /// Stop before this text (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub(crate) stop: Vec<String>,
    /// Drop the start of a prompt that does not fit the context, instead of failing.
    #[arg(long)]
    pub(crate) truncate: bool,
    /// Run the file's own quantization even where candle has no fast kernel for it (Q4_1,
    /// Q5_0, Q5_1): several times slower, but the same numbers llama.cpp computes with.
    #[arg(long)]
    pub(crate) no_convert: bool,
    #[command(flatten)]
    pub(crate) threads: ThreadArgs,
    /// `json` adds token ids, counts, timings and the stop reason.
    #[arg(long, value_enum, default_value_t = MetricsFormat::Text)]
    pub(crate) format: MetricsFormat,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// A catalog id or a GGUF file (default: every installed catalog model).
    #[arg(value_name = "ID|PATH")]
    pub(crate) model: Option<String>,
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub(crate) prompt_tokens: usize,
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub(crate) gen_tokens: usize,
    /// Runs of each test; the median is reported.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub(crate) repetitions: usize,
    /// Measure the file's own quantization, without converting slow tensors to Q8_0.
    #[arg(long)]
    pub(crate) no_convert: bool,
    #[command(flatten)]
    pub(crate) threads: ThreadArgs,
    #[arg(long, value_enum, default_value_t = MetricsFormat::Text)]
    pub(crate) format: MetricsFormat,
}

#[derive(Debug, Args)]
pub(crate) struct ThreadArgs {
    /// Inference threads (default: REFACTOR_AI_THREADS, else the physical cores not busy
    /// with other work).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
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
    /// Measure each installed model's speed here first (a short `models bench`) and store
    /// it, so the choice uses measured speeds.
    #[arg(long)]
    pub(crate) calibrate: bool,
    #[command(flatten)]
    pub(crate) threads: ThreadArgs,
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
