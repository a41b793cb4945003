//! `hw`: the hardware profile and the model choice, for people (text) and scripts (JSON).

use std::fmt::Write as _;

use serde::Serialize;

use crate::hw::{GpuVendor, HardwareProfile};
use crate::models::select::{Choice, Needs, NoFit, SpeedSource, gib};

/// `hw --format json`: `{"profile": {...}, "choice": {...} | null, "error": "..." | null}`
/// (documented in README).
pub(crate) fn json(profile: &HardwareProfile, choice: &Result<Choice, NoFit>) -> String {
    #[derive(Serialize)]
    struct Document<'a> {
        profile: &'a HardwareProfile,
        profile_key: String,
        choice: Option<&'a Choice>,
        error: Option<String>,
    }
    let document = Document {
        profile,
        profile_key: crate::hw::profile_key(profile),
        choice: choice.as_ref().ok(),
        error: choice.as_ref().err().map(ToString::to_string),
    };
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

/// `hw --format text`. `installed` is where the chosen model's file is, if it is installed.
pub(crate) fn text(
    profile: &HardwareProfile,
    choice: &Result<Choice, NoFit>,
    needs: &Needs,
    installed: Option<&std::path::Path>,
) -> String {
    let mut out = String::new();
    let cpu = &profile.cpu;
    let features = if cpu.features.is_empty() {
        "no SIMD features that inference kernels use".to_string()
    } else {
        cpu.features.join(" ")
    };
    let _ = writeln!(
        out,
        "CPU      {} ({}), {} physical / {} logical cores, {features}",
        cpu.brand, cpu.architecture, cpu.physical_cores, cpu.logical_cores
    );
    let memory = &profile.memory;
    let limit = match memory.container_limit_bytes {
        Some(limit) => format!(
            "container limit {} ({} used)",
            gib(limit),
            gib(memory.container_used_bytes.unwrap_or(0))
        ),
        None => "no container limit".to_string(),
    };
    let _ = writeln!(
        out,
        "Memory   {} total, {} available, {limit}",
        gib(memory.total_bytes),
        gib(memory.available_bytes)
    );
    if profile.gpus.is_empty() {
        let _ = writeln!(out, "GPU      none found");
    }
    for gpu in &profile.gpus {
        let vendor = match gpu.vendor {
            GpuVendor::Nvidia => "NVIDIA",
            GpuVendor::Apple => "Apple",
        };
        let memory = if gpu.total_bytes > 0 {
            format!(", {} ({} free)", gib(gpu.total_bytes), gib(gpu.free_bytes))
        } else {
            String::new()
        };
        let usable = if gpu.usable {
            ""
        } else {
            " (not usable by this build)"
        };
        let _ = writeln!(out, "GPU      {vendor} {}{memory}{usable}", gpu.name);
    }
    for note in &profile.notes {
        let _ = writeln!(out, "Note     {note}");
    }
    let _ = writeln!(out);
    match choice {
        Ok(choice) => {
            let speed = match choice.speed_source {
                SpeedSource::Calibrated => "measured on this machine".to_string(),
                SpeedSource::Estimate => {
                    "an estimate from memory bandwidth, not a measurement; `hw --calibrate` measures it".to_string()
                }
                SpeedSource::Scaled => "an estimate, scaled by the speeds measured here for other models".to_string(),
            };
            let _ = writeln!(
                out,
                "Model    {} on the {}: needs {} for a {}-token context, of a {} budget; about {:.1} tokens/s ({speed})",
                choice.model,
                choice.device.as_str(),
                gib(choice.needs_bytes),
                choice.context,
                gib(choice.budget_bytes),
                choice.tokens_per_second,
            );
            match installed {
                Some(path) => {
                    let _ = writeln!(out, "File     {}", path.display());
                }
                None => {
                    let _ = writeln!(
                        out,
                        "File     not installed yet: `refactor-ai models pull {}`",
                        choice.model
                    );
                }
            }
            if choice.below_speed_floor {
                let _ = writeln!(
                    out,
                    "Warning  nothing that fits reaches {} tokens/s; this is the fastest that fits",
                    needs.min_tokens_per_second
                );
            }
            for (index, reason) in choice.reasons.iter().enumerate() {
                let label = if index == 0 { "Skipped" } else { "" };
                let _ = writeln!(out, "{label:<8} {reason}");
            }
        }
        Err(error) => {
            let _ = writeln!(out, "Model    none: {error}");
        }
    }
    out
}
