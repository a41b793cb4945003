//! The CLI side of running a model: which file a command uses (a catalog id or any GGUF
//! path), the resource guard before loading, and `models run`, `models tokenize`,
//! `models bench` and `hw --calibrate`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};

use crate::cli::{self, MetricsFormat};
use crate::hw::{self, Calibration, HardwareProfile};
use crate::llm::bench::{self, BenchSpec};
use crate::llm::candle::CandleGenerator;
use crate::llm::gguf::ModelFile;
use crate::llm::threads::{self, ThreadChoice};
use crate::llm::{Generator, Message, Overflow, Params, Prompt, Role};
use crate::models::catalog::{Catalog, ModelEntry};
use crate::models::select::{self, Device, Guard};
use crate::models::store::{self, Check, Installed, Store};

/// A model file ready to load, with what the memory guard needs to know about it.
pub(crate) struct Resolved {
    /// The catalog id, or the file name of a model given by path.
    pub(crate) name: String,
    pub(crate) file: ModelFile,
    /// The catalog entry, or one made from the file's own metadata.
    pub(crate) entry: ModelEntry,
}

/// Finds the model `spec` names: a catalog id (installed, its hash checked if the file
/// changed since it was verified) or a path to a GGUF file.
pub(crate) fn resolve(
    spec: &str,
    catalog: &Catalog,
    store: &Store,
    stderr: &mut dyn Write,
) -> Result<Resolved> {
    if let Some(entry) = catalog.models.iter().find(|model| model.id == spec) {
        let path = match store.installed(entry) {
            Installed::Missing => bail!(
                "{} is not installed; run `refactor-ai models pull {}` first",
                entry.id,
                entry.id
            ),
            Installed::Verified(path) => path,
            Installed::Unverified(path) => {
                writeln!(
                    stderr,
                    "checking {} (it changed since its hash was checked)...",
                    path.display()
                )?;
                match store::check(entry, &path, |_| {})? {
                    Check::Good => {
                        store.record(entry, entry.sha256.as_deref().unwrap_or_default())?
                    }
                    Check::NoHashToCompare => {}
                    Check::WrongSize { expected, actual } => bail!(
                        "{} is corrupt: {actual} bytes, expected {expected}; run `refactor-ai models pull {}` again",
                        path.display(),
                        entry.id
                    ),
                    Check::WrongHash { expected, actual } => bail!(
                        "{} is corrupt: sha256 {actual}, expected {expected}; run `refactor-ai models pull {}` again",
                        path.display(),
                        entry.id
                    ),
                }
                path
            }
        };
        let file = ModelFile::open(&path)?;
        return Ok(Resolved {
            name: entry.id.clone(),
            file,
            entry: entry.clone(),
        });
    }
    let path = Path::new(spec);
    if !path.is_file() {
        let ids: Vec<&str> = catalog.models.iter().map(|m| m.id.as_str()).collect();
        bail!(
            "`{spec}` is neither a catalog model ({}) nor a GGUF file",
            ids.join(", ")
        );
    }
    let file = ModelFile::open(path)?;
    let entry = entry_from_file(&file)?;
    Ok(Resolved {
        name: entry.id.clone(),
        file,
        entry,
    })
}

/// A catalog entry for a GGUF file given by path, from its metadata: what the memory
/// estimate needs.
fn entry_from_file(file: &ModelFile) -> Result<ModelEntry> {
    let size = std::fs::metadata(&file.path)
        .with_context(|| format!("cannot read {}", file.path.display()))?
        .len();
    let params = &file.params;
    let quantization = file
        .quantizations()
        .first()
        .map_or_else(String::new, |(dtype, _)| format!("{dtype:?}"));
    let name = file.display_name();
    Ok(ModelEntry {
        id: name.clone(),
        name,
        architecture: file.arch.name().to_string(),
        parameters: 0,
        quantization,
        file: file.display_name(),
        size,
        size_is_estimate: false,
        sha256: None,
        context_length: params.context_length as u64,
        layers: params.layers as u64,
        kv_heads: params.kv_heads as u64,
        head_dim: params.head_dim as u64,
        vocab: params.vocab as u64,
        embedding: params.embedding as u64,
        fast_kernels: true,
        license: String::new(),
        sources: Vec::new(),
        reference: None,
    })
}

/// Checks that the model fits in the memory free now, sets the thread count and loads it.
/// A pinned model that does not fit is an error, never a load the OOM killer would end.
pub(crate) fn load(
    resolved: &Resolved,
    context: u64,
    threads: &ThreadChoice,
    cache_dir: Option<&Path>,
    convert: bool,
    stderr: &mut dyn Write,
) -> Result<CandleGenerator> {
    let profile = hw::detect();
    let single = Catalog {
        models: vec![resolved.entry.clone()],
    };
    match select::guard(&profile, &single, &resolved.entry.id, context, true) {
        Ok(Guard::Load(_)) => {}
        Ok(Guard::FallBack { reason, .. }) | Err(reason) => bail!("{reason}"),
    }
    threads::apply(threads.threads);
    let generator = CandleGenerator::load(&resolved.file, &resolved.name, cache_dir, convert)
        .with_context(|| format!("cannot load {}", resolved.file.path.display()))?;
    if let Some(conversion) = &generator.load.conversion
        && let Some(seconds) = conversion.seconds
    {
        writeln!(
            stderr,
            "converted {} {} tensors of {} to Q8_0 (candle runs those slowly) in {seconds:.1} s; \
             kept in {} for the next load",
            conversion.tensors,
            conversion.from.join("/"),
            resolved.name,
            conversion.path.display()
        )?;
    }
    if generator.load.template_is_fallback {
        writeln!(
            stderr,
            "warning: {} has no chat template in its metadata; using ChatML",
            resolved.name
        )?;
    }
    Ok(generator)
}

/// The cache directory, with the model catalog and the installed models in it.
pub(crate) struct Local {
    pub(crate) cache_dir: PathBuf,
    pub(crate) catalog: Catalog,
    pub(crate) store: Store,
}

impl Local {
    pub(crate) fn open() -> Result<Local> {
        let cache_dir = crate::cache::default_dir().context(
            "no cache directory: set REFACTOR_AI_CACHE_DIR (or HOME) to say where models go",
        )?;
        Ok(Local {
            catalog: Catalog::load(Some(&cache_dir))?,
            store: Store::new(&cache_dir),
            cache_dir,
        })
    }
}

/// The text given on the command line, or the contents of `file`.
fn text_or_file(text: Option<&str>, file: Option<&Path>) -> Result<String> {
    match (text, file) {
        (Some(text), _) => Ok(text.to_string()),
        (None, Some(file)) => {
            std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
        }
        (None, None) => bail!("give a text or --file"),
    }
}

pub(crate) fn run(
    local: &Local,
    args: &cli::RunArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8> {
    let Local {
        cache_dir,
        catalog,
        store,
    } = local;
    let text = text_or_file(args.prompt.as_deref(), args.file.as_deref())?;
    let prompt = if args.raw {
        Prompt::Text(text)
    } else {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(Message::new(Role::System, system.clone()));
        }
        messages.push(Message::new(Role::User, text));
        Prompt::Chat(messages)
    };
    for (name, value) in [("--temperature", args.temperature), ("--top-p", args.top_p)] {
        if !value.is_finite() || value < 0.0 {
            bail!("{name} must be a number, 0 or more");
        }
    }
    let params = Params {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        repeat_penalty: args.repeat_penalty,
        seed: args.seed,
        stop: args.stop.clone(),
        overflow: if args.truncate {
            Overflow::TruncateStart
        } else {
            Overflow::Error
        },
        ..Params::default()
    };
    let resolved = resolve(&args.model, catalog, store, stderr)?;
    let threads = threads::choose(args.threads.threads);
    let mut generator = load(
        &resolved,
        select::Needs::INTERACTIVE.context,
        &threads,
        Some(cache_dir),
        !args.no_convert,
        stderr,
    )?;
    let stream = matches!(args.format, MetricsFormat::Text);
    // JSON shows the rendered prompt; text output has no use for it.
    let prompt_text = (!stream)
        .then(|| generator.prompt_text(&prompt))
        .transpose()?;
    let cancel = AtomicBool::new(false);
    let mut write_error = None;
    let generation = generator.generate(
        &prompt,
        &params,
        &mut |piece| {
            if stream
                && write_error.is_none()
                && let Err(error) = stdout
                    .write_all(piece.as_bytes())
                    .and_then(|()| stdout.flush())
            {
                write_error = Some(error);
            }
        },
        &cancel,
    )?;
    if let Some(error) = write_error {
        return Err(error.into());
    }
    match args.format {
        MetricsFormat::Text => writeln!(stdout)?,
        MetricsFormat::Json => {
            let json = serde_json::json!({
                "model": generator.name(),
                "prompt": prompt_text,
                "text": generation.text,
                "tokens": generation.tokens,
                "prompt_tokens": generation.prompt_tokens,
                "generated_tokens": generation.tokens.len(),
                "stop_reason": generation.stop_reason,
                "prompt_seconds": generation.prompt_seconds,
                "generation_seconds": generation.generation_seconds,
                "threads": threads.threads,
            });
            writeln!(stdout, "{}", serde_json::to_string_pretty(&json)?)?;
        }
    }
    Ok(crate::exit_code::OK)
}

pub(crate) fn tokenize(
    local: &Local,
    model: &str,
    text: Option<&str>,
    file: Option<&Path>,
    format: MetricsFormat,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8> {
    let Local { catalog, store, .. } = local;
    let text = text_or_file(text, file)?;
    let resolved = resolve(model, catalog, store, stderr)?;
    let tokenizer = crate::llm::tokenizer::GgufTokenizer::from_metadata(resolved.file.metadata())?;
    let ids = tokenizer.encode(&text).map_err(anyhow::Error::msg)?;
    match format {
        MetricsFormat::Text => {
            let list: Vec<String> = ids.iter().map(u32::to_string).collect();
            writeln!(stdout, "[{}]", list.join(", "))?;
        }
        MetricsFormat::Json => {
            let json =
                serde_json::json!({ "model": resolved.name, "count": ids.len(), "ids": ids });
            writeln!(stdout, "{}", serde_json::to_string(&json)?)?;
        }
    }
    Ok(crate::exit_code::OK)
}

/// One model's figures in `models bench`.
#[derive(serde::Serialize)]
struct BenchRow {
    model: String,
    file: String,
    threads: usize,
    threads_reason: String,
    load_seconds: f64,
    conversion: Option<crate::llm::convert::Conversion>,
    #[serde(flatten)]
    result: bench::BenchResult,
    peak_rss_bytes: Option<u64>,
    reference: Option<crate::models::catalog::Reference>,
}

/// The catalog models installed here, smallest first (so the process's peak memory, which
/// only grows, is the current model's).
fn installed_models<'a>(catalog: &'a Catalog, store: &Store) -> Vec<&'a ModelEntry> {
    let mut models: Vec<&ModelEntry> = catalog
        .models
        .iter()
        .filter(|model| !matches!(store.installed(model), Installed::Missing))
        .collect();
    models.sort_by_key(|model| model.size);
    models
}

pub(crate) fn bench_command(
    local: &Local,
    args: &cli::BenchArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8> {
    let Local {
        cache_dir,
        catalog,
        store,
    } = local;
    let specs: Vec<String> = match &args.model {
        Some(model) => vec![model.clone()],
        None => installed_models(catalog, store)
            .into_iter()
            .map(|model| model.id.clone())
            .collect(),
    };
    if specs.is_empty() {
        bail!("no model is installed; `refactor-ai models pull smollm2-135m` gets the smallest");
    }
    let threads = threads::choose(args.threads.threads);
    let spec = BenchSpec {
        prompt_tokens: args.prompt_tokens,
        generation_tokens: args.gen_tokens,
        repetitions: args.repetitions,
    };
    let mut rows = Vec::new();
    for model in &specs {
        let resolved = resolve(model, catalog, store, stderr)?;
        let context = (args.prompt_tokens.max(args.gen_tokens) + 1) as u64;
        let mut generator = load(
            &resolved,
            context,
            &threads,
            Some(cache_dir),
            !args.no_convert,
            stderr,
        )?;
        let result = bench::run(&mut generator, spec)
            .with_context(|| format!("benchmarking {}", resolved.name))?;
        rows.push(BenchRow {
            model: resolved.name.clone(),
            file: resolved.file.path.display().to_string(),
            threads: threads.threads,
            threads_reason: threads.reason.clone(),
            load_seconds: generator.load.seconds,
            conversion: generator.load.conversion.clone(),
            result,
            peak_rss_bytes: bench::peak_rss_bytes(),
            reference: resolved.entry.reference.clone(),
        });
    }
    let text = match args.format {
        MetricsFormat::Json => {
            format!(
                "{}\n",
                serde_json::to_string_pretty(&serde_json::json!({ "models": rows }))?
            )
        }
        MetricsFormat::Text => bench_text(&rows),
    };
    stdout.write_all(text.as_bytes())?;
    Ok(crate::exit_code::OK)
}

fn bench_text(rows: &[BenchRow]) -> String {
    let mut text = String::new();
    let Some(first) = rows.first() else {
        return text;
    };
    text.push_str(&format!(
        "threads: {} ({})\n\n",
        first.threads, first.threads_reason
    ));
    text.push_str(&format!(
        "{:<22} {:>7} {:>12} {:>12} {:>10}   {}\n",
        "model",
        "load s",
        format!("pp{} tok/s", first.result.prompt_tokens),
        format!("tg{} tok/s", first.result.generation_tokens),
        "peak RSS",
        "llama.cpp reference pp / tg (ratio)"
    ));
    for row in rows {
        let reference = row.reference.as_ref().map_or_else(
            || "-".to_string(),
            |reference| {
                format!(
                    "{:.0} / {:.0} ({:.2} / {:.2})",
                    reference.prompt_tokens_per_second,
                    reference.generation_tokens_per_second,
                    row.result.prompt_tokens_per_second / reference.prompt_tokens_per_second,
                    row.result.generation_tokens_per_second
                        / reference.generation_tokens_per_second,
                )
            },
        );
        text.push_str(&format!(
            "{:<22} {:>7.2} {:>12.1} {:>12.1} {:>10}   {}\n",
            row.model,
            row.load_seconds,
            row.result.prompt_tokens_per_second,
            row.result.generation_tokens_per_second,
            row.peak_rss_bytes
                .map_or_else(|| "-".to_string(), |bytes| format!("{} MiB", bytes >> 20)),
            reference
        ));
    }
    if let Some(reference) = rows.iter().find_map(|row| row.reference.as_ref()) {
        text.push_str(&format!("\nreference: {}\n", reference.measured_on));
    }
    text
}

/// `hw --calibrate`: a short bench of every installed model that fits, stored where
/// `select_model` reads it.
pub(crate) fn calibrate(
    profile: &mut HardwareProfile,
    requested_threads: Option<usize>,
    stderr: &mut dyn Write,
) -> Result<()> {
    let Local {
        cache_dir,
        catalog,
        store,
    } = Local::open()?;
    let models = installed_models(&catalog, &store);
    if models.is_empty() {
        bail!(
            "no model is installed to calibrate; `refactor-ai models pull smollm2-135m` gets the smallest"
        );
    }
    let threads = threads::choose(requested_threads);
    let spec = BenchSpec {
        prompt_tokens: 64,
        generation_tokens: 16,
        repetitions: 1,
    };
    let mut results: Vec<Calibration> = profile.calibrations.clone();
    for model in models {
        writeln!(
            stderr,
            "calibrating {} ({} threads)...",
            model.id, threads.threads
        )?;
        let outcome = resolve(&model.id, &catalog, &store, stderr).and_then(|resolved| {
            let mut generator = load(&resolved, 128, &threads, Some(&cache_dir), true, stderr)?;
            let device = match generator.device_name() {
                "cuda" => Device::Cuda,
                "metal" => Device::Metal,
                _ => Device::Cpu,
            };
            Ok((bench::run(&mut generator, spec)?, device))
        });
        match outcome {
            Ok((result, device)) => {
                results.retain(|old| !(old.model == model.id && old.device == device));
                results.push(Calibration {
                    model: model.id.clone(),
                    device,
                    threads: threads.threads,
                    prompt_tokens_per_second: result.prompt_tokens_per_second,
                    generation_tokens_per_second: result.generation_tokens_per_second,
                    measured_at: crate::time::utc_now_rfc3339(),
                });
            }
            Err(error) => writeln!(stderr, "skipped {}: {error:#}", model.id)?,
        }
    }
    hw::store_calibrations(&cache_dir, profile, &results)?;
    profile.calibrations = results;
    Ok(())
}

/// The generator `suggest` uses and its context length: `replay:FILE` (scripted answers,
/// a JSON array of strings: for tests and for reproducing a session), a catalog id or
/// GGUF path, or else the model the hardware detector picks among the installed ones.
pub(crate) fn suggest_generator(
    spec: Option<&str>,
    threads: Option<usize>,
    stderr: &mut dyn Write,
) -> Result<(Box<dyn Generator>, usize)> {
    if let Some(path) = spec.and_then(|spec| spec.strip_prefix("replay:")) {
        let generator = crate::llm::fake::FakeGenerator::from_file(Path::new(path))?;
        return Ok((Box::new(generator), 32_768));
    }
    let local = Local::open()?;
    let spec = match spec {
        Some(spec) => spec.to_string(),
        None => {
            let mut profile = hw::detect();
            hw::load_calibrations(&local.cache_dir, &mut profile);
            let installed = Catalog {
                models: local
                    .catalog
                    .models
                    .iter()
                    .filter(|model| !matches!(local.store.installed(model), Installed::Missing))
                    .cloned()
                    .collect(),
            };
            let choice = select::select_model(&profile, &installed, &select::Needs::INTERACTIVE);
            match choice {
                Ok(choice) => {
                    writeln!(
                        stderr,
                        "model: {} (the largest installed model that fits this machine; \
                         --model to choose another)",
                        choice.model
                    )?;
                    choice.model
                }
                Err(_) => {
                    let best =
                        select::select_model(&profile, &local.catalog, &select::Needs::INTERACTIVE)
                            .map(|choice| choice.model)
                            .unwrap_or_else(|_| "qwen2.5-coder-0.5b".to_string());
                    bail!(
                        "no installed model fits this machine; run `refactor-ai models pull {best}` \
                         (what `refactor-ai hw` recommends here) or pass --model"
                    );
                }
            }
        }
    };
    let resolved = resolve(&spec, &local.catalog, &local.store, stderr)?;
    let context = select::Needs::INTERACTIVE.context;
    let threads = threads::choose(threads);
    let generator = load(
        &resolved,
        context,
        &threads,
        Some(&local.cache_dir),
        true,
        stderr,
    )?;
    writeln!(
        stderr,
        "loaded {} on {} with {} thread(s) ({})",
        resolved.name,
        generator.device_name(),
        threads.threads,
        threads.reason
    )?;
    let context = generator.context_length().min(context as usize);
    Ok((Box::new(generator), context))
}
