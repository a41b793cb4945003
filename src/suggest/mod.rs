//! `suggest`: for the top findings, ask the model for a refactor and prove it. Every
//! proposal passes, in order: (a) its edits touch only the finding's files, (b) they apply,
//! (c) the result parses, (d) re-analysis shows the finding resolved or reduced, (e) the
//! project's build and tests pass in a sandbox copy at least as well as the baseline. The
//! first failure is the verdict; the model gets the failure and another try, up to
//! `--retries`. Sandbox runs happen on worker threads while the model writes the next
//! proposal. The session is saved under `.refactor-ai/` for `apply`.
//!
//! Nothing here writes to the user's files: only `.refactor-ai/` (session and logs) and
//! `.git/info/exclude`.

pub(crate) mod apply;
pub(crate) mod check;
pub(crate) mod differences;
pub(crate) mod edit;
pub(crate) mod interrupt;
pub(crate) mod prompt;
pub(crate) mod sandbox;
pub(crate) mod session;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::analysis::Analysis;
use crate::config::Config;
use crate::finding::Finding;
use crate::lang::Language;
use crate::llm::{Generator, Message, Params, Prompt, Role};
use edit::EditFormat;
use sandbox::{Isolation, RunSpec, TestRun};
use session::{Check, CheckKind, FileChange, GenerationStats, Proposal, Session, Verdict};

/// What `suggest` was asked for.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) max: usize,
    pub(crate) findings: Vec<String>,
    pub(crate) rules: Vec<String>,
    pub(crate) file: Option<String>,
    pub(crate) lines: Option<(u32, u32)>,
    pub(crate) edit_format: EditFormat,
    pub(crate) retries: u32,
    pub(crate) allow_test_edits: bool,
    /// Sandbox runs at once (default: from the cores and memory).
    pub(crate) jobs: Option<usize>,
    pub(crate) max_tokens: usize,
    pub(crate) prompts: Option<PathBuf>,
    /// Whether stderr is a terminal (progress lines are redrawn in place).
    pub(crate) live_progress: bool,
}

/// The findings to attempt: duplicates by value, then smells by severity, narrowed by
/// the selections, test-only findings left out unless test edits are allowed.
pub(crate) fn select(analysis: &Analysis, options: &Options) -> Vec<Finding> {
    let mut smells: Vec<&Finding> = analysis
        .files
        .iter()
        .flat_map(|file| file.findings.iter())
        .collect();
    smells.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
    let file = options
        .file
        .as_deref()
        .map(|file| edit::normalize_path(file).unwrap_or_else(|| file.to_string()));
    analysis
        .duplicates
        .iter()
        .chain(smells)
        .filter(|finding| options.findings.is_empty() || options.findings.contains(&finding.id))
        .filter(|finding| {
            options.rules.is_empty()
                || options.rules.iter().any(|rule| {
                    finding.rule == *rule || finding.rule.starts_with(&format!("{rule}/"))
                })
        })
        .filter(|finding| {
            let Some(file) = &file else {
                return true;
            };
            finding.locations.iter().any(|location| {
                &location.path == file
                    && options.lines.is_none_or(|(start, end)| {
                        location.start_line <= end && start <= location.end_line
                    })
            })
        })
        .filter(|finding| {
            options.allow_test_edits
                || !finding.locations.iter().all(|location| {
                    Language::for_path(Path::new(&location.path)).is_some_and(|language| {
                        language.syntax.is_test_path(Path::new(&location.path))
                    })
                })
        })
        .take(options.max)
        .cloned()
        .collect()
}

/// A request to the model: a finding, which attempt, the conversation so far.
struct Task {
    finding: usize,
    attempt: u32,
    messages: Vec<Message>,
}

enum Job {
    Baseline,
    Candidate {
        slot: usize,
        files: Vec<(String, String)>,
        modules: Vec<String>,
    },
}

enum Done {
    Baseline(Result<TestRun, String>),
    Candidate {
        slot: usize,
        result: Result<TestRun, String>,
    },
}

/// Sandbox runs at once: one per two cores and 2 GiB of available memory, at least one.
fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = crate::hw::detect().memory.available_bytes;
    let by_memory = (memory / (2 << 30)).max(1) as usize;
    (cores / 2).clamp(1, 8).min(by_memory)
}

/// Everything the run needs to decide a proposal's verdict.
struct Run<'a> {
    root: &'a Path,
    config: &'a Config,
    analysis: &'a Analysis,
    options: &'a Options,
    prompts: prompt::Prompts,
    findings: Vec<Finding>,
    sources: BTreeMap<String, String>,
    /// Characters of prompt the model's context leaves room for.
    budget_chars: usize,
    proposals: Vec<Proposal>,
    tasks: VecDeque<Task>,
    /// Conversation of each proposal, for a retry.
    conversations: Vec<Vec<Message>>,
    baseline: Option<Result<TestRun, String>>,
    /// Candidate results that arrived before the baseline.
    early: Vec<(usize, Result<TestRun, String>)>,
    /// Why no sandbox run can prove anything, if none can.
    validation_problem: Option<String>,
    /// Said in every test verdict when the sandbox could not be cut off the network.
    isolation_note: String,
    /// A signal stopped the run: no further finding is attempted.
    interrupted: bool,
    progress: &'a mut dyn Write,
}

/// Runs `suggest` over `root`: returns the session (saved) with every proposal.
pub(crate) fn suggest(
    root: &Path,
    config: &Config,
    analysis: &Analysis,
    generator: &mut dyn Generator,
    context_length: usize,
    options: &Options,
    progress: &mut dyn Write,
) -> Result<Session> {
    let started = Instant::now();
    interrupt::install();
    let id = Session::new_id();
    let dir = session::ensure_dir(root)?;
    let logs = dir.join("logs").join(&id);
    let prompts = prompt::Prompts::load(prompt::user_dir(options.prompts.as_deref()).as_deref())?;
    for path in &prompts.overrides {
        writeln!(progress, "using the prompt template {}", path.display())?;
    }
    let findings = select(analysis, options);
    let mut sources = BTreeMap::new();
    let mut files_read = BTreeMap::new();
    let mut readable = Vec::new();
    for finding in findings {
        let mut ok = true;
        for location in &finding.locations {
            if sources.contains_key(&location.path) {
                continue;
            }
            match std::fs::read_to_string(root.join(&location.path)) {
                Ok(text) => {
                    files_read.insert(location.path.clone(), session::hash(text.as_bytes()));
                    sources.insert(location.path.clone(), text);
                }
                Err(error) => {
                    writeln!(
                        progress,
                        "skipping finding {}: cannot read {}: {error}",
                        finding.id, location.path
                    )?;
                    ok = false;
                }
            }
        }
        if ok {
            readable.push(finding);
        }
    }
    let findings = readable;
    let prompt_tokens = context_length
        .min(8192)
        .saturating_sub(options.max_tokens + 64);
    let command = sandbox::detect(root, &config.validate);
    let isolation = Isolation::detect();
    remove_stale_sandboxes();
    let scratch = tempfile::Builder::new()
        .prefix(SANDBOX_PREFIX)
        .tempdir()
        .context("cannot create a sandbox directory")?;
    let mut run = Run {
        root,
        config,
        analysis,
        options,
        prompts,
        tasks: VecDeque::new(),
        conversations: Vec::new(),
        budget_chars: prompt_tokens * 3,
        sources,
        findings,
        proposals: Vec::new(),
        baseline: None,
        early: Vec::new(),
        validation_problem: None,
        isolation_note: match &isolation {
            Isolation::Network(_) => String::new(),
            Isolation::None(reason) => format!(" [{reason}]"),
        },
        interrupted: false,
        progress,
    };
    for index in 0..run.findings.len() {
        run.tasks.push_back(Task {
            finding: index,
            attempt: 0,
            messages: Vec::new(),
        });
    }
    let (spec, test_display) = match command {
        Ok(command) => {
            let display = command.display.clone();
            let timeout = Duration::from_secs(config.validate.timeout.unwrap_or(600));
            (
                Some(RunSpec {
                    command,
                    isolation: isolation.clone(),
                    timeout,
                    cargo_target: scratch.path().join("target"),
                }),
                Some(display),
            )
        }
        Err(error) => {
            run.validation_problem = Some(format!("{error:#}"));
            (None, None)
        }
    };
    if let Isolation::None(reason) = &isolation {
        writeln!(run.progress, "warning: {reason}")?;
    }
    if run.findings.is_empty() {
        writeln!(run.progress, "no findings match; nothing to suggest")?;
    } else if let Some(spec) = &spec {
        let jobs = options.jobs.unwrap_or_else(default_jobs).max(1);
        run.pipeline(generator, spec, scratch.path(), &logs, jobs)?;
    } else {
        run.pipeline_without_tests(generator)?;
    }
    let Run {
        findings,
        proposals,
        baseline,
        validation_problem,
        sources,
        interrupted,
        ..
    } = run;
    let mut session = Session {
        format: Session::FORMAT,
        id,
        created: crate::time::utc_now_rfc3339(),
        root: root.to_path_buf(),
        model: generator.name().to_string(),
        edit_format: options.edit_format,
        test_command: test_display,
        isolation: isolation.describe(),
        validation_problem,
        baseline: baseline.and_then(Result::ok),
        findings,
        proposals,
        files_read,
        summary: Default::default(),
        interrupted,
        sources,
    };
    session.summarize(started.elapsed().as_secs_f64());
    session.save(root)?;
    Ok(session)
}

impl Run<'_> {
    /// Generation on this thread, sandbox runs on `jobs` workers, the baseline first.
    fn pipeline(
        &mut self,
        generator: &mut dyn Generator,
        spec: &RunSpec,
        scratch: &Path,
        logs: &Path,
        jobs: usize,
    ) -> Result<()> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let root = self.root;
        std::thread::scope(|scope| -> Result<()> {
            for _ in 0..jobs {
                let job_rx = Arc::clone(&job_rx);
                let done_tx = done_tx.clone();
                scope.spawn(move || {
                    loop {
                        let job = match job_rx.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let done = work(job, root, spec, scratch, logs);
                        if done_tx.send(done).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(done_tx);
            writeln!(
                self.progress,
                "baseline: running `{}` on an untouched copy ({})",
                spec.command.display,
                spec.isolation.describe()
            )?;
            let _ = job_tx.send(Job::Baseline);
            let mut in_flight = 1;
            // Since when the main thread, with nothing left to generate, waits on the sandbox.
            let mut waiting: Option<Instant> = None;
            loop {
                while let Ok(done) = done_rx.try_recv() {
                    in_flight -= 1;
                    self.finish(done)?;
                }
                self.check_interrupt()?;
                if let Some(task) = self.tasks.pop_front() {
                    if let Some(job) = self.attempt(generator, task)? {
                        // Set when the baseline failed or could not run.
                        if self.validation_problem.is_some() {
                            let Job::Candidate { slot, .. } = job else {
                                continue;
                            };
                            self.unvalidated(slot)?;
                        } else {
                            let _ = job_tx.send(job);
                            in_flight += 1;
                        }
                    }
                    continue;
                }
                if in_flight == 0 {
                    break;
                }
                // Nothing left to generate: wait for the sandbox runs, showing how long
                // (on a terminal).
                match done_rx.recv_timeout(Duration::from_millis(250)) {
                    Ok(done) => {
                        if self.options.live_progress && waiting.take().is_some() {
                            write!(self.progress, "\r\x1b[2K")?;
                        }
                        in_flight -= 1;
                        self.finish(done)?;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if self.options.live_progress {
                            let what = if self.baseline.is_none() {
                                "the baseline".to_string()
                            } else {
                                format!("{in_flight} proposal(s)")
                            };
                            write!(
                                self.progress,
                                "\r  validating {what} in the sandbox: {:.0} s ",
                                waiting
                                    .get_or_insert_with(Instant::now)
                                    .elapsed()
                                    .as_secs_f64()
                            )?;
                            self.progress.flush()?;
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            drop(job_tx);
            Ok(())
        })
    }

    /// Without a test command: checks (a)-(d) only, every passing proposal unvalidated.
    fn pipeline_without_tests(&mut self, generator: &mut dyn Generator) -> Result<()> {
        if let Some(problem) = &self.validation_problem {
            writeln!(
                self.progress,
                "warning: proposals cannot be validated: {problem}"
            )?;
        }
        while let Some(task) = self.tasks.pop_front() {
            if let Some(Job::Candidate { slot, .. }) = self.attempt(generator, task)? {
                self.unvalidated(slot)?;
            }
            self.check_interrupt()?;
        }
        Ok(())
    }

    /// After a signal: no further finding or retry; sandbox runs in flight stop on their
    /// own (they watch the same flag) and their proposals stay unvalidated.
    fn check_interrupt(&mut self) -> Result<()> {
        if self.interrupted || !interrupt::requested() {
            return Ok(());
        }
        self.interrupted = true;
        self.tasks.clear();
        writeln!(
            self.progress,
            "interrupted: stopping; the session keeps what was done so far, and no file of \
             the project was changed"
        )?;
        Ok(())
    }

    fn unvalidated(&mut self, slot: usize) -> Result<()> {
        let problem = self.validation_problem.clone().unwrap_or_else(|| {
            "the baseline run failed, so the tests cannot tell a good proposal from a bad one"
                .to_string()
        });
        let proposal = &mut self.proposals[slot];
        proposal.checks.push(Check {
            check: CheckKind::Tests,
            passed: false,
            message: format!("not validated: {problem}"),
            seconds: 0.0,
            log: None,
        });
        proposal.verdict = Verdict::Unvalidated;
        self.report(slot)
    }

    /// Asks the model, runs checks (a)-(d); returns the sandbox job if they pass.
    fn attempt(&mut self, generator: &mut dyn Generator, task: Task) -> Result<Option<Job>> {
        let finding = self.findings[task.finding].clone();
        let number = task.finding + 1;
        let total = self.findings.len();
        let retry = if task.attempt > 0 {
            format!(" (retry {})", task.attempt)
        } else {
            String::new()
        };
        writeln!(
            self.progress,
            "[{number}/{total}] {} {}:{}{retry}",
            finding.rule,
            finding.primary().path,
            finding.primary().start_line
        )?;
        let new_file_allowed = prompt::allows_new_file(&finding);
        let messages = if task.messages.is_empty() {
            self.prompts.task(&prompt::TaskInput {
                finding: &finding,
                sources: &self.sources,
                analysis: self.analysis,
                format: self.options.edit_format,
                budget_chars: self.budget_chars,
                new_file_allowed,
                max_parameters: Language::for_path(Path::new(&finding.primary().path))
                    .map_or(5, |language| self.config.thresholds(language).parameters),
            })
        } else {
            Ok(task.messages.clone())
        };
        let slot = self.proposals.len();
        let mut proposal = Proposal {
            id: if task.attempt == 0 {
                finding.id.clone()
            } else {
                format!("{}.{}", finding.id, task.attempt)
            },
            finding: finding.id.clone(),
            attempt: task.attempt,
            model: generator.name().to_string(),
            edit_format: self.options.edit_format,
            messages: Vec::new(),
            answer: String::new(),
            edits: Vec::new(),
            files: Vec::new(),
            diff: String::new(),
            checks: Vec::new(),
            verdict: Verdict::Rejected,
            generation: GenerationStats::default(),
            tests: None,
        };
        let messages = match messages {
            Ok(messages) => messages,
            Err(message) => {
                proposal
                    .checks
                    .push(failed(CheckKind::Generate, message, 0.0));
                self.proposals.push(proposal);
                self.conversations.push(Vec::new());
                self.report(slot)?;
                return Ok(None);
            }
        };
        proposal.messages = messages.clone();
        let started = Instant::now();
        // A retry samples (with a fixed seed): greedy decoding tends to repeat the
        // rejected answer word for word, whatever the feedback says.
        let params = Params {
            max_tokens: self.options.max_tokens,
            temperature: if task.attempt > 0 { 0.8 } else { 0.0 },
            top_k: 40,
            seed: 299_792_458 + u64::from(task.attempt),
            ..Params::default()
        };
        let live = self.options.live_progress;
        let mut pieces = 0usize;
        let mut last_draw = Instant::now();
        let progress = &mut *self.progress;
        let generation = generator.generate(
            &Prompt::Chat(messages.clone()),
            &params,
            &mut |_piece| {
                pieces += 1;
                if live && last_draw.elapsed() > Duration::from_millis(250) {
                    last_draw = Instant::now();
                    let seconds = started.elapsed().as_secs_f64().max(0.001);
                    let _ = write!(
                        progress,
                        "\r  generating: {pieces} tokens, {:.1} tokens/s ",
                        pieces as f64 / seconds
                    );
                    let _ = progress.flush();
                }
            },
            interrupt::flag(),
        );
        if live {
            write!(self.progress, "\r\x1b[2K")?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let generation = match generation {
            Ok(_) if interrupt::requested() => {
                proposal.checks.push(failed(
                    CheckKind::Generate,
                    "interrupted while the model was answering".to_string(),
                    seconds,
                ));
                self.proposals.push(proposal);
                self.conversations.push(messages);
                self.report(slot)?;
                return Ok(None);
            }
            Ok(generation) => generation,
            Err(error) => {
                proposal
                    .checks
                    .push(failed(CheckKind::Generate, error.to_string(), seconds));
                self.proposals.push(proposal);
                self.conversations.push(messages);
                self.report(slot)?;
                return Ok(None);
            }
        };
        proposal.generation = GenerationStats {
            prompt_tokens: generation.prompt_tokens,
            reused_tokens: generation.reused_tokens,
            tokens: generation.tokens.len(),
            seconds,
            prompt_seconds: generation.prompt_seconds,
            generation_seconds: generation.generation_seconds,
            stop_reason: serde_json::to_value(generation.stop_reason)
                .ok()
                .and_then(|value| value.as_str().map(str::to_string))
                .unwrap_or_default(),
        };
        proposal.answer = generation.text.clone();
        proposal.checks.push(Check {
            check: CheckKind::Generate,
            passed: true,
            message: format!(
                "{} tokens in {seconds:.1} s ({})",
                generation.tokens.len(),
                proposal.generation.stop_reason
            ),
            seconds,
            log: None,
        });
        let job = self.precheck(&mut proposal, &finding, new_file_allowed, slot);
        self.proposals.push(proposal);
        self.conversations.push(messages);
        match job {
            Some(job) => {
                writeln!(
                    self.progress,
                    "  checks (a)-(d) passed; validating in a sandbox"
                )?;
                Ok(Some(job))
            }
            None => {
                self.report(slot)?;
                Ok(None)
            }
        }
    }

    /// Checks (a)-(d) on a generated proposal. Returns the sandbox job when they pass.
    fn precheck(
        &self,
        proposal: &mut Proposal,
        finding: &Finding,
        new_file_allowed: bool,
        slot: usize,
    ) -> Option<Job> {
        let timed = |check: CheckKind, result: Result<String, String>, started: Instant| Check {
            check,
            passed: result.is_ok(),
            message: result.unwrap_or_else(|error| error),
            seconds: started.elapsed().as_secs_f64(),
            log: None,
        };
        // (a)
        let started = Instant::now();
        // A block without a path belongs to the finding's file, when it names only one.
        let files: BTreeSet<&str> = finding
            .locations
            .iter()
            .map(|location| location.path.as_str())
            .collect();
        let only_file = (files.len() == 1).then(|| files.first().copied()).flatten();
        let edits = edit::parse(self.options.edit_format, &proposal.answer, only_file).and_then(
            |mut edits| {
                let allowed = check::Allowed {
                    finding,
                    root: self.root,
                    allow_test_edits: self.options.allow_test_edits,
                    new_file_allowed,
                };
                check::paths(&mut edits, &allowed).map(|()| edits)
            },
        );
        let edits = match edits {
            Ok(edits) => {
                proposal.checks.push(timed(
                    CheckKind::Edits,
                    Ok(format!("{} edit(s)", edits.len())),
                    started,
                ));
                edits
            }
            Err(error) => {
                proposal
                    .checks
                    .push(timed(CheckKind::Edits, Err(error), started));
                return None;
            }
        };
        proposal.edits = edits;
        // (b)
        let started = Instant::now();
        let workspace = match check::apply(&proposal.edits, &self.sources, finding) {
            Ok(workspace) => workspace,
            Err(error) => {
                proposal
                    .checks
                    .push(timed(CheckKind::Apply, Err(error), started));
                return None;
            }
        };
        proposal.files = workspace
            .iter()
            .map(|(path, (before, after))| FileChange {
                path: path.clone(),
                before_hash: before.as_deref().map(|text| session::hash(text.as_bytes())),
                after: after.clone(),
            })
            .collect();
        proposal.diff = unified_diff(&workspace);
        proposal.checks.push(timed(
            CheckKind::Apply,
            Ok(format!("{} file(s) changed", workspace.len())),
            started,
        ));
        // (c)
        let started = Instant::now();
        let syntax = check::syntax(&workspace).map(|()| "no new syntax errors".to_string());
        let ok = syntax.is_ok();
        proposal
            .checks
            .push(timed(CheckKind::Syntax, syntax, started));
        if !ok {
            return None;
        }
        // (d)
        let started = Instant::now();
        let improved = check::improvement(finding, &workspace, &self.sources, self.config);
        let ok = improved.is_ok();
        proposal
            .checks
            .push(timed(CheckKind::Improve, improved, started));
        if !ok {
            return None;
        }
        let roots = sandbox::python_source_roots(self.root);
        let modules = workspace
            .keys()
            .filter_map(|path| {
                let module = sandbox::python_module(path, &roots)?;
                // Importing runs a module's top level: only package modules and library
                // modules, never setup scripts.
                let in_package = Path::new(path)
                    .parent()
                    .is_some_and(|dir| self.root.join(dir).join("__init__.py").is_file());
                let script = ["setup", "conftest", "noxfile", "manage", "__main__"]
                    .iter()
                    .any(|name| module == *name || module.ends_with(&format!(".{name}")));
                (in_package || !module.contains('.'))
                    .then_some(module)
                    .filter(|_| !script)
            })
            .collect();
        Some(Job::Candidate {
            slot,
            files: workspace
                .into_iter()
                .map(|(path, (_, after))| (path, after))
                .collect(),
            modules,
        })
    }

    /// A sandbox run finished.
    fn finish(&mut self, done: Done) -> Result<()> {
        match done {
            Done::Baseline(result) => {
                match &result {
                    Ok(run) if run.succeeded() => {
                        writeln!(self.progress, "baseline: {}", run.summary())?;
                    }
                    Ok(run) => {
                        writeln!(
                            self.progress,
                            "warning: the baseline fails ({}; log: {}), so no proposal can be \
                             proven; fix the build or tests first",
                            run.summary(),
                            run.log.display()
                        )?;
                        self.validation_problem = Some(format!(
                            "the project's own tests fail without any change ({})",
                            run.summary()
                        ));
                    }
                    Err(error) => {
                        writeln!(
                            self.progress,
                            "warning: the baseline could not run: {error}"
                        )?;
                        self.validation_problem =
                            Some(format!("the baseline could not run: {error}"));
                    }
                }
                self.baseline = Some(result);
                for (slot, result) in std::mem::take(&mut self.early) {
                    self.decide(slot, result)?;
                }
            }
            Done::Candidate { slot, result } => {
                if self.baseline.is_none() {
                    self.early.push((slot, result));
                } else {
                    self.decide(slot, result)?;
                }
            }
        }
        Ok(())
    }

    /// The verdict of a candidate's sandbox run against the baseline.
    fn decide(&mut self, slot: usize, result: Result<TestRun, String>) -> Result<()> {
        if result.is_err() && interrupt::requested() {
            let proposal = &mut self.proposals[slot];
            proposal.checks.push(failed(
                CheckKind::Tests,
                "not validated: suggest was interrupted before the tests finished".to_string(),
                0.0,
            ));
            proposal.verdict = Verdict::Unvalidated;
            return self.report(slot);
        }
        let baseline = match &self.baseline {
            Some(Ok(run)) if run.succeeded() => run.clone(),
            _ => return self.unvalidated(slot),
        };
        let proposal = &mut self.proposals[slot];
        let (check, retry_details) = match result {
            Err(error) => (
                Check {
                    check: CheckKind::Tests,
                    passed: false,
                    message: error,
                    seconds: 0.0,
                    log: None,
                },
                None,
            ),
            Ok(run) => {
                let mut problems = Vec::new();
                if run.timed_out {
                    problems.push(format!(
                        "the tests ran past the time limit ({:.0} s)",
                        run.seconds
                    ));
                } else if !run.succeeded() {
                    problems.push(if run.summary_found && run.failed > 0 {
                        format!("{} test(s) fail", run.failed)
                    } else {
                        "the build or the tests fail".to_string()
                    });
                }
                if run.summary_found && baseline.summary_found {
                    if run.passed < baseline.passed {
                        problems.push(format!(
                            "{} tests pass, {} in the baseline",
                            run.passed, baseline.passed
                        ));
                    }
                    if run.total < baseline.total {
                        problems.push(format!(
                            "{} tests ran, {} in the baseline (tests were removed)",
                            run.total, baseline.total
                        ));
                    }
                }
                let passed = problems.is_empty();
                let note = &self.isolation_note;
                let message = if passed {
                    format!(
                        "{} (baseline: {} passed of {}){note}",
                        run.summary(),
                        baseline.passed,
                        baseline.total
                    )
                } else {
                    format!("{}: {}{note}", problems.join("; "), run.summary())
                };
                let check = Check {
                    check: CheckKind::Tests,
                    passed,
                    message,
                    seconds: run.seconds,
                    log: Some(run.log.clone()),
                };
                let details = (!passed).then(|| run.failures.clone());
                proposal.tests = Some(run);
                (check, details)
            }
        };
        let passed = check.passed;
        proposal.checks.push(check);
        proposal.verdict = if passed {
            Verdict::Proven
        } else {
            Verdict::Rejected
        };
        // An import check failure is not the model's to fix: no retry.
        let retry_details = retry_details.unwrap_or_default();
        self.report_with_details(slot, retry_details)
    }

    fn report(&mut self, slot: usize) -> Result<()> {
        self.report_with_details(slot, Vec::new())
    }

    /// Prints a finished proposal's verdict, and queues a retry if it failed and retries
    /// remain.
    fn report_with_details(&mut self, slot: usize, details: Vec<String>) -> Result<()> {
        let proposal = &self.proposals[slot];
        let finding_index = self
            .findings
            .iter()
            .position(|finding| finding.id == proposal.finding)
            .unwrap_or(0);
        match (proposal.verdict, proposal.failed_check()) {
            (Verdict::Proven, _) => writeln!(
                self.progress,
                "  {}: proven ({})",
                proposal.id,
                proposal
                    .checks
                    .last()
                    .map_or("", |check| check.message.as_str())
            )?,
            (verdict, Some(check)) => writeln!(
                self.progress,
                "  {}: {} at {}: {}",
                proposal.id,
                verdict.as_str(),
                check.check.as_str(),
                first_line(&check.message)
            )?,
            (verdict, None) => writeln!(self.progress, "  {}: {}", proposal.id, verdict.as_str())?,
        }
        let retryable = proposal.verdict == Verdict::Rejected
            && proposal.failed_check().is_some_and(|check| {
                check.check != CheckKind::Generate
                    && !(check.check == CheckKind::Tests && check.log.is_none())
            })
            && proposal.attempt < self.options.retries;
        if retryable {
            let check = proposal.failed_check().map(|check| {
                format!(
                    "the {} check failed: {}",
                    check.check.as_str(),
                    check.message
                )
            });
            let mut messages = self.conversations[slot].clone();
            messages.push(Message::new(Role::Assistant, proposal.answer.clone()));
            match self.prompts.retry(&check.unwrap_or_default(), &details) {
                Ok(text) => {
                    messages.push(Message::new(Role::User, text));
                    let attempt = proposal.attempt + 1;
                    // Retries go first: they finish a finding before the next starts.
                    self.tasks.push_front(Task {
                        finding: finding_index,
                        attempt,
                        messages,
                    });
                }
                Err(error) => writeln!(self.progress, "warning: {error}")?,
            }
        }
        Ok(())
    }
}

fn failed(check: CheckKind, message: String, seconds: f64) -> Check {
    Check {
        check,
        passed: false,
        message,
        seconds,
        log: None,
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

const SANDBOX_PREFIX: &str = "refactor-ai-sandbox-";

/// Sandboxes a `suggest` left behind when it was killed (a finished run removes its own),
/// a day after they were last touched.
fn remove_stale_sandboxes() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(24 * 3600));
        if stale
            && entry
                .file_name()
                .to_string_lossy()
                .starts_with(SANDBOX_PREFIX)
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// One sandbox run on a worker thread.
fn work(job: Job, root: &Path, spec: &RunSpec, scratch: &Path, logs: &Path) -> Done {
    match job {
        Job::Baseline => {
            let dir = scratch.join("baseline");
            let result = sandbox::copy_project(root, &dir)
                .and_then(|_| sandbox::run_tests(spec, &dir, &logs.join("baseline.log")))
                .map_err(|error| format!("{error:#}"));
            let _ = std::fs::remove_dir_all(&dir);
            Done::Baseline(result)
        }
        Job::Candidate {
            slot,
            files,
            modules,
        } => {
            let dir = scratch.join(format!("candidate-{slot}"));
            let result = (|| -> Result<TestRun> {
                sandbox::copy_project(root, &dir)?;
                for (path, text) in &files {
                    let target = dir.join(path);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::write(&target, text)
                        .with_context(|| format!("cannot write {}", target.display()))?;
                }
                sandbox::check_imports(
                    spec,
                    &dir,
                    &modules,
                    &logs.join(format!("candidate-{slot}-imports.log")),
                )?;
                sandbox::run_tests(spec, &dir, &logs.join(format!("candidate-{slot}.log")))
            })()
            .map_err(|error| format!("{error:#}"));
            let _ = std::fs::remove_dir_all(&dir);
            Done::Candidate { slot, result }
        }
    }
}

/// A unified diff of every changed file, `git apply`-able from the project root.
pub(crate) fn unified_diff(workspace: &edit::Workspace) -> String {
    let mut out = String::new();
    for (path, (before, after)) in workspace {
        let old = before.as_deref().unwrap_or("");
        let diff = similar::TextDiff::from_lines(old, after.as_str());
        let old_name = if before.is_some() {
            format!("a/{path}")
        } else {
            "/dev/null".to_string()
        };
        out.push_str(&format!("diff --git a/{path} b/{path}\n"));
        if before.is_none() {
            out.push_str("new file mode 100644\n");
        }
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&old_name, &format!("b/{path}"))
                .to_string(),
        );
    }
    out
}
