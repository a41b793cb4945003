//! Re-quantizing the tensors candle runs slowly. On x86-64, candle 0.11 has SIMD kernels for
//! Q4_0, Q8_0 and the K-quants, but runs Q4_1, Q5_0 and Q5_1 through a scalar loop: the
//! Qwen2.5-Coder-0.5B file (mostly Q5_0, because its 896-wide rows are not a multiple of 256)
//! ran at 10 tokens/s prompt and 9 generation, against 50 and 31 once those tensors were
//! Q8_0. Q8_0 loses nothing measurable (it holds more bits than the source), so the loader
//! converts them once and keeps the result in the cache directory, keyed by the source
//! file, so the next load reads the converted file directly.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};

use super::gguf::ModelFile;

/// Bump when the conversion changes what it writes, so old results are not reused.
const FORMAT: u32 = 1;

/// A conversion that was needed: how many tensors, and whether it was done now or found.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Conversion {
    pub(crate) tensors: usize,
    pub(crate) from: Vec<String>,
    /// Seconds spent converting now; `None` when an earlier conversion was reused.
    pub(crate) seconds: Option<f64>,
    pub(crate) path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConvertError {
    #[error("converting {source_file} to Q8_0 failed: {message}")]
    Failed {
        source_file: PathBuf,
        message: String,
    },
    #[error("cannot write the converted model {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Quantizations that candle runs on its scalar path.
pub(crate) fn is_slow(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// The converted copy of `model` under `cache_dir` (made now if missing), opened, and what
/// was converted; `None` when every tensor of `model` has a fast kernel.
pub(crate) fn prepare(
    model: &ModelFile,
    cache_dir: &Path,
) -> Result<Option<(ModelFile, Conversion)>, ConvertError> {
    let slow: Vec<GgmlDType> = model
        .content
        .tensor_infos
        .values()
        .map(|info| info.ggml_dtype)
        .filter(|&dtype| is_slow(dtype))
        .collect();
    if slow.is_empty() {
        return Ok(None);
    }
    let mut from: Vec<String> = slow.iter().map(|dtype| format!("{dtype:?}")).collect();
    from.sort();
    from.dedup();
    let target = converted_path(model, cache_dir);
    let (file, seconds) = match ModelFile::open(&target) {
        Ok(file) => (file, None),
        Err(_) => {
            let started = Instant::now();
            write_converted(model, &target)?;
            let file = ModelFile::open(&target).map_err(|error| ConvertError::Failed {
                source_file: model.path.clone(),
                message: format!("the converted file does not read back: {error}"),
            })?;
            (file, Some(started.elapsed().as_secs_f64()))
        }
    };
    let conversion = Conversion {
        tensors: slow.len(),
        from,
        seconds,
        path: target,
    };
    Ok(Some((file, conversion)))
}

/// `<cache>/models/converted/<stem>.<key>.q8_0.gguf`, the key naming the source file's path,
/// size and modification time.
fn converted_path(model: &ModelFile, cache_dir: &Path) -> PathBuf {
    let canonical = model
        .path
        .canonicalize()
        .unwrap_or_else(|_| model.path.clone());
    let (size, modified) = std::fs::metadata(&model.path)
        .map(|meta| {
            let modified = meta
                .modified()
                .ok()
                .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |elapsed| elapsed.as_nanos());
            (meta.len(), modified)
        })
        .unwrap_or((0, 0));
    let key =
        blake3::hash(format!("{FORMAT}|{}|{size}|{modified}", canonical.display()).as_bytes());
    let stem = model
        .path
        .file_stem()
        .map_or_else(|| "model".into(), |stem| stem.to_string_lossy());
    cache_dir
        .join("models")
        .join("converted")
        .join(format!("{stem}.{}.q8_0.gguf", &key.to_hex()[..16]))
}

fn write_converted(model: &ModelFile, target: &Path) -> Result<(), ConvertError> {
    let failed = |message: String| ConvertError::Failed {
        source_file: model.path.clone(),
        message,
    };
    let write_error = |source| ConvertError::Write {
        path: target.to_path_buf(),
        source,
    };
    let file = File::open(&model.path).map_err(|error| failed(error.to_string()))?;
    let mut reader = BufReader::new(file);
    let device = Device::Cpu;
    // Tensors in file order, so the converted file reads like the original.
    let mut names: Vec<(&String, u64)> = model
        .content
        .tensor_infos
        .iter()
        .map(|(name, info)| (name, info.offset))
        .collect();
    names.sort_by_key(|&(_, offset)| offset);
    let mut tensors: Vec<(&str, QTensor)> = Vec::with_capacity(names.len());
    for (name, _) in names {
        let tensor = model
            .content
            .tensor(&mut reader, name, &device)
            .map_err(|error| failed(format!("reading `{name}`: {error}")))?;
        let tensor = if is_slow(tensor.dtype()) {
            let values = tensor
                .dequantize(&device)
                .map_err(|error| failed(format!("dequantizing `{name}`: {error}")))?;
            QTensor::quantize(&values, GgmlDType::Q8_0)
                .map_err(|error| failed(format!("quantizing `{name}`: {error}")))?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }
    // The writer pads tensors to 32 bytes, the default; a different alignment key would lie.
    let mut metadata: Vec<(&str, &Value)> = model
        .content
        .metadata
        .iter()
        .filter(|(key, _)| key.as_str() != "general.alignment")
        .map(|(key, value)| (key.as_str(), value))
        .collect();
    metadata.sort_by_key(|&(key, _)| key);
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();

    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let temporary = dir.join(format!(
        ".{}.{}.partial",
        target
            .file_name()
            .map_or_else(|| "model".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let result = (|| {
        let file = File::create(&temporary).map_err(write_error)?;
        let mut writer = BufWriter::new(file);
        gguf_file::write(&mut writer, &metadata, &tensor_refs)
            .map_err(|error| failed(format!("writing: {error}")))?;
        let file = writer
            .into_inner()
            .map_err(|error| write_error(error.into_error()))?;
        file.sync_all().map_err(write_error)?;
        std::fs::rename(&temporary, target).map_err(write_error)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}
