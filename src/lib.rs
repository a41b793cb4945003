//! refactor-ai: a local, LLM-assisted refactoring assistant. See ARCHITECTURE.md for the map.
//!
//! `main.rs` only calls [`run`]; tests drive the same entry point through [`run_with`].

pub(crate) mod analysis;
pub(crate) mod cache;
pub(crate) mod cli;
pub(crate) mod config;
pub(crate) mod finding;
pub(crate) mod hw;
pub(crate) mod lang;
pub(crate) mod llm;
pub(crate) mod model_cli;
pub(crate) mod models;
pub(crate) mod report;
pub(crate) mod suggest;
pub(crate) mod time;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::cli::{Cli, ColorChoice, Command, Common, FailOn, MetricsFormat, ScanFormat};
use crate::config::Config;
use crate::finding::Severity;

/// Exit codes, the same for every command.
pub mod exit_code {
    /// Success; findings below `--fail-on` (or no `--fail-on`) do not change it.
    pub const OK: u8 = 0;
    /// Findings at or above `--fail-on`.
    pub const FINDINGS: u8 = 1;
    /// A usage, configuration or I/O error.
    pub const ERROR: u8 = 2;
    /// `suggest` or `apply` stopped by Ctrl-C or a signal (128 + SIGINT, as shells report
    /// it); what was done is saved (the session, or the journal `undo` reads).
    pub const INTERRUPTED: u8 = 130;
}

/// Runs the CLI with the process's stdout and stderr.
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    suggest::interrupt::own_process();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let colors = Colors {
        stdout: stdout.is_terminal(),
        stderr: stderr.is_terminal(),
    };
    let code = run_with(args, &mut stdout.lock(), &mut stderr.lock(), colors);
    ExitCode::from(code)
}

/// Whether each stream is a terminal (colour is only ever used on one).
#[derive(Clone, Copy, Debug, Default)]
pub struct Colors {
    pub stdout: bool,
    pub stderr: bool,
}

/// Runs the CLI against the given streams and returns the exit code.
pub fn run_with<I: IntoIterator<Item = OsString>>(
    args: I,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    terminals: Colors,
) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let is_error = error.use_stderr();
            let text = error.render().ansi().to_string();
            let out: &mut dyn Write = if is_error { stderr } else { stdout };
            let _ = out.write_all(anstream::adapter::strip_str(&text).to_string().as_bytes());
            return if is_error {
                exit_code::ERROR
            } else {
                exit_code::OK
            };
        }
    };
    match execute(&cli, stdout, stderr, terminals) {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                return exit_code::OK;
            }
            let _ = writeln!(stderr, "error: {error:#}");
            exit_code::ERROR
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn execute(
    cli: &Cli,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    terminals: Colors,
) -> Result<u8> {
    match &cli.command {
        Command::Scan(args) => {
            without_huge_pages();
            let (analysis, config) = analyze(&args.common, true, stderr)?;
            let color = use_color(args.common.color, terminals);
            let text = match args.format {
                ScanFormat::Text => {
                    emit(
                        stderr,
                        &report::text::diagnostics(&analysis.diagnostics),
                        color.1,
                    )?;
                    report::text::scan(&analysis)
                }
                ScanFormat::Json => report::scan_json(&analysis),
                ScanFormat::Sarif => report::sarif::scan(&analysis, &args.common.path, &config),
            };
            emit(stdout, &text, color.0)?;
            let threshold = args.fail_on.map(|fail_on| match fail_on {
                FailOn::Error => Severity::Error,
                FailOn::Warning => Severity::Warning,
                FailOn::Note => Severity::Note,
            });
            let failed = threshold.is_some_and(|threshold| {
                analysis
                    .findings()
                    .any(|finding| finding.severity >= threshold)
            });
            Ok(if failed {
                exit_code::FINDINGS
            } else {
                exit_code::OK
            })
        }
        Command::Hw(args) => {
            let cache_dir = cache::default_dir();
            let mut profile = hw::detect();
            if let Some(dir) = &cache_dir {
                hw::load_calibrations(dir, &mut profile);
            }
            if args.calibrate {
                model_cli::calibrate(&mut profile, args.threads.threads, stderr)?;
            }
            let catalog = models::catalog::Catalog::load(cache_dir.as_deref())?;
            let mut needs = if args.batch {
                models::select::Needs::BATCH
            } else {
                models::select::Needs::INTERACTIVE
            };
            needs.context = args.context.max(1);
            if let Some(speed) = args.min_speed {
                if !(speed.is_finite() && speed >= 0.0) {
                    bail!("--min-speed must be a number of tokens per second, 0 or more");
                }
                needs.min_tokens_per_second = speed;
            }
            let choice = models::select::select_model(&profile, &catalog, &needs);
            let color = use_color(ColorChoice::Auto, terminals);
            let text = match args.format {
                MetricsFormat::Text => {
                    let installed = choice.as_ref().ok().and_then(|choice| {
                        let model = catalog.models.iter().find(|m| m.id == choice.model)?;
                        let store = models::store::Store::new(cache_dir.as_deref()?);
                        match store.installed(model) {
                            models::store::Installed::Missing => None,
                            models::store::Installed::Verified(path)
                            | models::store::Installed::Unverified(path) => Some(path),
                        }
                    });
                    report::hw::text(&profile, &choice, &needs, installed.as_deref())
                }
                MetricsFormat::Json => report::hw::json(&profile, &choice),
            };
            emit(stdout, &text, color.0)?;
            Ok(exit_code::OK)
        }
        Command::Models(args) => models_command(&args.action, stdout, stderr),
        Command::Suggest(args) => suggest_command(args, stdout, stderr, terminals),
        Command::Apply(args) => {
            let root = project_root(&args.path)?;
            let options = suggest::apply::ApplyOptions {
                ids: args.id.clone(),
                all: args.all,
                commit: args.commit,
                allow_dirty: args.allow_dirty,
            };
            let applied = suggest::apply::apply(&root, &options, stdout)?;
            writeln!(
                stdout,
                "{} proposal(s) applied: {}; changed {}{}. Undo with `refactor-ai undo`.",
                applied.proposals.len(),
                applied.proposals.join(", "),
                applied.files.join(", "),
                if applied.commits.is_empty() {
                    String::new()
                } else {
                    format!(" in {} commit(s)", applied.commits.len())
                }
            )?;
            Ok(if applied.interrupted {
                exit_code::INTERRUPTED
            } else {
                exit_code::OK
            })
        }
        Command::Undo(args) => {
            let root = project_root(&args.path)?;
            if args.steps == 0 {
                bail!("--steps must be 1 or more");
            }
            suggest::apply::undo(&root, args.steps, stdout)?;
            Ok(exit_code::OK)
        }
        Command::Metrics(args) => {
            without_huge_pages();
            let (analysis, _) = analyze(&args.common, false, stderr)?;
            let color = use_color(args.common.color, terminals);
            let text = match args.format {
                MetricsFormat::Text => {
                    emit(
                        stderr,
                        &report::text::diagnostics(&analysis.diagnostics),
                        color.1,
                    )?;
                    report::text::metrics(&analysis)
                }
                MetricsFormat::Json => report::metrics_json(&analysis),
            };
            emit(stdout, &text, color.0)?;
            Ok(exit_code::OK)
        }
    }
}

/// A project directory, made absolute.
fn project_root(path: &Path) -> Result<std::path::PathBuf> {
    if !path.is_dir() {
        bail!(
            "{} is not a directory; give the project's root",
            path.display()
        );
    }
    path.canonicalize()
        .with_context(|| format!("cannot resolve {}", path.display()))
}

/// `suggest`: scan, ask the model, prove, report; the session is saved for `apply`.
fn suggest_command(
    args: &cli::SuggestArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    terminals: Colors,
) -> Result<u8> {
    let root = project_root(&args.common.path)?;
    let lines = match &args.lines {
        None => None,
        Some(text) => {
            let parsed = text.split_once('-').and_then(|(a, b)| {
                Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?))
            });
            match parsed {
                Some((a, b)) if a >= 1 && a <= b => Some((a, b)),
                _ => bail!("--lines must be A-B with 1 <= A <= B, e.g. 10-25"),
            }
        }
    };
    let common = Common {
        path: root.clone(),
        config: args.common.config.clone(),
        color: args.common.color,
        threads: args.common.threads,
        no_cache: args.common.no_cache,
        cache_dir: args.common.cache_dir.clone(),
    };
    let (analysis, config) = analyze(&common, true, stderr)?;
    let options = suggest::Options {
        max: args.max,
        findings: args.finding.clone(),
        rules: args.rule.clone(),
        file: args.file.clone(),
        lines,
        edit_format: args.edit_format,
        retries: args.retries,
        allow_test_edits: args.allow_test_edits,
        jobs: args.jobs,
        max_tokens: args.max_tokens.max(16),
        prompts: args.prompts.clone(),
        live_progress: terminals.stderr,
    };
    // No model is loaded when there is nothing to ask it.
    let (mut generator, context) = if suggest::select(&analysis, &options).is_empty() {
        (
            Box::new(llm::fake::FakeGenerator::new(Vec::<String>::new()))
                as Box<dyn llm::Generator>,
            32_768,
        )
    } else {
        model_cli::suggest_generator(args.model.as_deref(), args.common.threads, stderr)?
    };
    let session = suggest::suggest(
        &root,
        &config,
        &analysis,
        generator.as_mut(),
        context,
        &options,
        stderr,
    )?;
    let color = use_color(args.common.color, terminals);
    let text = match args.format {
        cli::SuggestFormat::Text => report::suggest::text(&session),
        cli::SuggestFormat::Json => report::suggest::json(&session),
        cli::SuggestFormat::Sarif => report::sarif::suggest(&session, &config),
        cli::SuggestFormat::Diff => report::suggest::diff(&session),
    };
    emit(
        stdout,
        &text,
        color.0 && matches!(args.format, cli::SuggestFormat::Text),
    )?;
    Ok(if session.interrupted {
        exit_code::INTERRUPTED
    } else {
        exit_code::OK
    })
}

/// Routes tree-sitter's allocations to mimalloc: parsing allocates node by node, and
/// glibc's allocator cost a tenth of `scan`'s time. The binary calls it first thing; so do
/// benchmarks that time parsing the way the binary parses.
///
/// # Safety
///
/// No tree-sitter object may exist yet, or one allocated by one allocator could be freed
/// by the other.
pub unsafe fn tree_sitter_uses_mimalloc() {
    // SAFETY: the caller guarantees no tree-sitter object exists; mimalloc's functions have
    // the C signatures tree-sitter expects.
    unsafe {
        tree_sitter::set_allocator(Some(tree_sitter::Allocator {
            malloc: libmimalloc_sys::mi_malloc,
            calloc: libmimalloc_sys::mi_calloc,
            realloc: libmimalloc_sys::mi_realloc,
            free: libmimalloc_sys::mi_free,
        }));
    }
}

/// Turns transparent huge pages off for this process. Analysis allocates and frees many
/// small syntax trees: with huge pages, a first touch zeroes 2 MiB at a time and now and
/// then waits for the kernel to compact memory, which made one `scan` in four 0.1 s slower
/// and took a third more memory. Commands that load a model keep them (large weights read
/// in order are what huge pages are for).
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only changes how this process's
    // later page faults are served; failure (an old kernel) leaves things as they were.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn analyze(
    common: &Common,
    with_smells: bool,
    stderr: &mut dyn Write,
) -> Result<(analysis::Analysis, Config)> {
    let root = common.path.as_path();
    if !root.exists() {
        bail!(
            "{} does not exist; give a directory or a .py/.rs file to analyse",
            root.display()
        );
    }
    let config = Config::load(root, common.config.as_deref())?;
    let cache_dir = match (&common.cache_dir, common.no_cache) {
        (_, true) => None,
        (Some(dir), false) => Some(dir.clone()),
        (None, false) => cache::default_dir(),
    };
    let command = if with_smells { "scan" } else { "metrics" };
    let cache = cache_dir.map(|dir| cache::ResultCache::open(&dir, root, command, &config));
    let run = || analysis::analyze(root, &config, with_smells, cache);
    let analysis = match common.threads {
        Some(threads) => rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .context("cannot start worker threads")?
            .install(run),
        None => run(),
    };
    if let Some(warning) = &analysis.cache_warning {
        writeln!(stderr, "warning: {warning}")?;
    }
    Ok((analysis, config))
}

/// (stdout, stderr) colour decisions: `--color`, then `NO_COLOR`/`CLICOLOR_FORCE`, then
/// whether the stream is a terminal.
fn use_color(choice: ColorChoice, terminals: Colors) -> (bool, bool) {
    match choice {
        ColorChoice::Always => (true, true),
        ColorChoice::Never => (false, false),
        ColorChoice::Auto => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
            let forced = std::env::var_os("CLICOLOR_FORCE")
                .is_some_and(|value| !value.is_empty() && value != "0");
            if no_color {
                (false, false)
            } else if forced {
                (true, true)
            } else {
                (terminals.stdout, terminals.stderr)
            }
        }
    }
}

/// `models ...`: the catalog and installed files here; running a model in `model_cli`.
fn models_command(
    action: &cli::ModelsAction,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8> {
    use models::store::{Check, Installed};
    let local = model_cli::Local::open()?;
    let (cache_dir, catalog, store) = (&local.cache_dir, &local.catalog, &local.store);
    let find = |id: &str| {
        catalog
            .models
            .iter()
            .find(|model| model.id == id)
            .with_context(|| {
                let ids: Vec<&str> = catalog
                    .models
                    .iter()
                    .map(|model| model.id.as_str())
                    .collect();
                format!("unknown model `{id}`; the catalog has: {}", ids.join(", "))
            })
    };
    match action {
        cli::ModelsAction::List { format } => {
            let mut profile = hw::detect();
            hw::load_calibrations(cache_dir, &mut profile);
            let budget = models::select::budget_bytes(&profile);
            let mut rows = Vec::new();
            for model in &catalog.models {
                let installed = match store.installed(model) {
                    Installed::Missing => None,
                    Installed::Verified(path) | Installed::Unverified(path) => Some(path),
                };
                let needs = models::select::needs_bytes(
                    &profile,
                    model,
                    models::select::Needs::INTERACTIVE.context,
                );
                // Measured here by `hw --calibrate` (the CPU figure: GPUs are not used yet).
                let speed = profile
                    .calibrations
                    .iter()
                    .find(|c| c.model == model.id && c.device == models::select::Device::Cpu)
                    .map(|c| c.generation_tokens_per_second);
                rows.push(serde_json::json!({
                    "id": model.id,
                    "name": model.name,
                    "size_bytes": model.size,
                    "installed": installed.is_some(),
                    "path": installed.map(|path| path.display().to_string()),
                    "needs_bytes": needs,
                    "fits": needs <= budget,
                    "calibrated_tokens_per_second": speed,
                }));
            }
            let text = match format {
                cli::MetricsFormat::Json => {
                    let mut text =
                        serde_json::to_string_pretty(&serde_json::json!({ "models": rows }))?;
                    text.push('\n');
                    text
                }
                cli::MetricsFormat::Text => {
                    let mut text = String::new();
                    for row in &rows {
                        let speed = row["calibrated_tokens_per_second"]
                            .as_f64()
                            .map_or_else(|| "-".to_string(), |speed| format!("{speed:.1} tok/s"));
                        text.push_str(&format!(
                            "{:<20} {:>9}  {:<13} {:>11}  {}\n",
                            row["id"].as_str().unwrap_or_default(),
                            models::select::gib(row["size_bytes"].as_u64().unwrap_or(0)),
                            if row["fits"] == true {
                                "fits"
                            } else {
                                "does not fit"
                            },
                            speed,
                            row["path"].as_str().unwrap_or("not installed"),
                        ));
                    }
                    text
                }
            };
            stdout.write_all(text.as_bytes())?;
            Ok(exit_code::OK)
        }
        cli::ModelsAction::Pull { id, hub_timeout } => {
            let model = find(id)?;
            let path = models::pull::pull(
                model,
                store,
                std::time::Duration::from_secs((*hub_timeout).max(1)),
                stderr,
            )?;
            writeln!(stdout, "{}", path.display())?;
            Ok(exit_code::OK)
        }
        cli::ModelsAction::Verify { id } => {
            let selected: Vec<_> = match id {
                Some(id) => vec![find(id)?],
                None => catalog.models.iter().collect(),
            };
            let mut bad = 0;
            for model in selected {
                let path = match store.installed(model) {
                    Installed::Missing if id.is_some() => {
                        anyhow::bail!(
                            "{} is not installed: `refactor-ai models pull {}`",
                            model.id,
                            model.id
                        )
                    }
                    Installed::Missing => continue,
                    Installed::Verified(path) | Installed::Unverified(path) => path,
                };
                let check = models::store::check(model, &path, |_| {})?;
                let verdict = match &check {
                    Check::Good => {
                        store.record(model, model.sha256.as_deref().unwrap_or_default())?;
                        "ok".to_string()
                    }
                    Check::NoHashToCompare => {
                        "size ok; the catalog has no sha256 to compare".to_string()
                    }
                    Check::WrongSize { expected, actual } => {
                        bad += 1;
                        format!(
                            "CORRUPT: {actual} bytes, expected {expected} (truncated?); pull it again"
                        )
                    }
                    Check::WrongHash { expected, actual } => {
                        bad += 1;
                        format!("CORRUPT: sha256 {actual}, expected {expected}; pull it again")
                    }
                };
                writeln!(stdout, "{}: {verdict} ({})", model.id, path.display())?;
            }
            Ok(if bad > 0 {
                exit_code::FINDINGS
            } else {
                exit_code::OK
            })
        }
        cli::ModelsAction::Path { id } => {
            let model = find(id)?;
            match store.installed(model) {
                Installed::Missing => anyhow::bail!(
                    "{} is not installed: `refactor-ai models pull {}`",
                    model.id,
                    model.id
                ),
                Installed::Verified(path) | Installed::Unverified(path) => {
                    writeln!(stdout, "{}", path.display())?;
                    Ok(exit_code::OK)
                }
            }
        }
        cli::ModelsAction::Run(args) => model_cli::run(&local, args, stdout, stderr),
        cli::ModelsAction::Tokenize {
            model,
            text,
            file,
            format,
        } => model_cli::tokenize(
            &local,
            model,
            text.as_deref(),
            file.as_deref(),
            *format,
            stdout,
            stderr,
        ),
        cli::ModelsAction::Bench(args) => model_cli::bench_command(&local, args, stdout, stderr),
        cli::ModelsAction::Rm { id } => {
            let model = find(id)?;
            if store.remove(model)? {
                writeln!(stdout, "removed {}", model.id)?;
            } else {
                writeln!(stdout, "{} was not installed", model.id)?;
            }
            Ok(exit_code::OK)
        }
    }
}

fn emit(out: &mut dyn Write, text: &str, color: bool) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    if color {
        out.write_all(text.as_bytes())?;
    } else {
        out.write_all(anstream::adapter::strip_str(text).to_string().as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// Parses and analyses `data` as one file, for the fuzz target: the first byte picks the
/// language, the rest is the source (invalid UTF-8 replaced). Clone detection runs over the
/// file and a copy of it. Must never panic.
#[doc(hidden)]
pub fn fuzz_analyze(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let language = &lang::LANGUAGES[usize::from(selector) % lang::LANGUAGES.len()];
    let text = String::from_utf8_lossy(rest);
    let config = Config::default();
    let mut parsers = analysis::Parsers::default();
    let source = analysis::Source {
        language,
        relative: "fuzz",
        text: &text,
        is_test: false,
        clones: true,
    };
    let (report, _) =
        analysis::analyze_source(&mut parsers, &source, &config, analysis::Smells::Wait);
    if let Some(report) = report {
        // The file and a copy of it: every unit big enough is a clone.
        let units = [&report.clones, &report.clones].map(|units| analysis::clones::FileUnits {
            language: language.index(),
            is_test: false,
            units,
        });
        let files = ["a", "b"].map(|path| analysis::clones::report::ReportFile {
            path,
            units: &report.clones,
            language,
        });
        let classes = analysis::clones::detect(&units, &config.duplicates);
        let duplicates = analysis::clones::report::findings(&classes, &files, &config);
        let analysis = analysis::Analysis {
            files: vec![report],
            duplicates,
            ..Default::default()
        };
        let _ = report::scan_json(&analysis);
        let _ = report::sarif::scan(&analysis, Path::new("."), &config);
        let _ = report::text::scan(&analysis);
    }
}
