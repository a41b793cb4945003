//! The hardware profile: what this machine offers a local model. Read from the operating
//! system (`/proc`, `/sys/fs/cgroup`) and the CPU's feature flags; never fails: what cannot
//! be read is left out and said so.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::models::select::Device;

/// What the model selection needs to know about a machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct HardwareProfile {
    pub(crate) cpu: Cpu,
    pub(crate) memory: Memory,
    pub(crate) gpus: Vec<Gpu>,
    /// Things the detection could not read, or GPUs this binary cannot use, in plain words.
    pub(crate) notes: Vec<String>,
    /// Speeds measured on this machine (`hw --calibrate`), from the cache directory.
    pub(crate) calibrations: Vec<Calibration>,
}

/// One calibration result: how fast a model ran here. Stored, per machine, as
/// `<cache dir>/calibration/<profile key>.json`:
/// `{"profile_key": "...", "results": [{"model": "qwen2.5-coder-1.5b", "device": "cpu",
/// "threads": 2, "prompt_tokens_per_second": 96.0, "generation_tokens_per_second": 17.0,
/// "measured_at": "2026-11-27T12:00:00Z"}]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Calibration {
    pub(crate) model: String,
    pub(crate) device: Device,
    pub(crate) threads: usize,
    pub(crate) prompt_tokens_per_second: f64,
    pub(crate) generation_tokens_per_second: f64,
    /// UTC, RFC 3339.
    pub(crate) measured_at: String,
}

/// The stored calibrations of one machine.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct CalibrationFile {
    pub(crate) profile_key: String,
    pub(crate) results: Vec<Calibration>,
}

/// Where this machine's calibrations live under the cache directory.
pub(crate) fn calibration_path(cache_dir: &Path, profile: &HardwareProfile) -> PathBuf {
    cache_dir
        .join("calibration")
        .join(format!("{}.json", profile_key(profile)))
}

/// Writes `results` as this machine's calibrations (atomically: a temporary file, then a
/// rename).
pub(crate) fn store_calibrations(
    cache_dir: &Path,
    profile: &HardwareProfile,
    results: &[Calibration],
) -> std::io::Result<()> {
    let path = calibration_path(cache_dir, profile);
    let file = CalibrationFile {
        profile_key: profile_key(profile),
        results: results.to_vec(),
    };
    let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
    let dir = path.parent().unwrap_or(cache_dir);
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".calibration.{}.tmp", std::process::id()));
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, &path)
}

/// Reads the calibrations stored for `profile`; a missing or unreadable file is none (with a
/// note when it exists but cannot be read).
pub(crate) fn load_calibrations(cache_dir: &Path, profile: &mut HardwareProfile) {
    let path = calibration_path(cache_dir, profile);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    match serde_json::from_str::<CalibrationFile>(&text) {
        Ok(file) => profile.calibrations = file.results,
        Err(error) => profile.notes.push(format!(
            "calibration file {} is unreadable ({error}); speeds are estimates until `hw --calibrate` runs again",
            path.display()
        )),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cpu {
    pub(crate) brand: String,
    pub(crate) architecture: String,
    pub(crate) physical_cores: usize,
    pub(crate) logical_cores: usize,
    /// The SIMD features that matter to inference kernels: `avx2`, `avx512f`, `f16c`, `fma`
    /// on x86-64, `neon` on aarch64.
    pub(crate) features: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Memory {
    pub(crate) total_bytes: u64,
    /// What the kernel says can be allocated now without swapping (`MemAvailable`).
    pub(crate) available_bytes: u64,
    /// The container's (cgroup's) limit, when there is one below the machine's memory.
    pub(crate) container_limit_bytes: Option<u64>,
    /// What the container already uses, when it has a limit.
    pub(crate) container_used_bytes: Option<u64>,
}

impl Memory {
    /// What a process may still allocate: the machine's available memory, capped by what is
    /// left under the container limit.
    pub(crate) fn usable_bytes(&self) -> u64 {
        match self.container_limit_bytes {
            Some(limit) => {
                let left = limit.saturating_sub(self.container_used_bytes.unwrap_or(0));
                left.min(self.available_bytes)
            }
            None => self.available_bytes,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Gpu {
    pub(crate) vendor: GpuVendor,
    pub(crate) name: String,
    /// Memory the model may use: VRAM, or for unified memory the share of RAM the GPU gets.
    pub(crate) total_bytes: u64,
    pub(crate) free_bytes: u64,
    /// This binary was built with the backend that drives it (`cuda`, `metal`).
    pub(crate) usable: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum GpuVendor {
    Nvidia,
    Apple,
}

/// Reads this machine's profile.
pub(crate) fn detect() -> HardwareProfile {
    let mut notes = Vec::new();
    let cpu = detect_cpu(&mut notes);
    let memory = detect_memory(&mut notes);
    let gpus = detect_gpus(&mut notes);
    HardwareProfile {
        cpu,
        memory,
        gpus,
        notes,
        calibrations: Vec::new(),
    }
}

/// Physical cores (logical ones where the system does not say), at least 1.
pub(crate) fn physical_core_count() -> usize {
    let logical_cores = std::thread::available_parallelism().map_or(1, |count| count.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    physical_or_logical(&cpuinfo, logical_cores)
}

/// Physical cores in `cpuinfo`, or `logical_cores` where it does not say; at least 1.
fn physical_or_logical(cpuinfo: &str, logical_cores: usize) -> usize {
    physical_cores(cpuinfo)
        .unwrap_or(logical_cores)
        .min(logical_cores)
        .max(1)
}

fn detect_cpu(notes: &mut Vec<String>) -> Cpu {
    let logical_cores = std::thread::available_parallelism().map_or(1, |count| count.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| cpuinfo_field(&cpuinfo, name);
    let brand = field("model name")
        .or_else(|| field("Model"))
        .or_else(|| field("Hardware"))
        .unwrap_or_else(|| {
            notes.push("CPU model name not readable".to_string());
            "unknown CPU".to_string()
        });
    let physical_cores = physical_or_logical(&cpuinfo, logical_cores);
    Cpu {
        brand,
        architecture: std::env::consts::ARCH.to_string(),
        physical_cores,
        logical_cores,
        features: simd_features(),
    }
}

/// The first `name : value` line of `/proc/cpuinfo` text.
fn cpuinfo_field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim().to_string())
    })
}

/// Distinct (physical id, core id) pairs in `/proc/cpuinfo`; `None` where it does not say
/// (many ARM kernels, some VMs).
fn physical_cores(cpuinfo: &str) -> Option<usize> {
    let mut cores = std::collections::BTreeSet::new();
    for block in cpuinfo.split("\n\n") {
        let value = |name: &str| cpuinfo_field(block, name);
        if let Some(core) = value("core id") {
            cores.insert((value("physical id").unwrap_or_default(), core));
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

fn simd_features() -> Vec<String> {
    let mut features = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        for (name, present) in [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            (
                "avx512vnni",
                std::arch::is_x86_feature_detected!("avx512vnni"),
            ),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
        ] {
            if present {
                features.push(name.to_string());
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            features.push("neon".to_string());
        }
    }
    features
}

fn detect_memory(notes: &mut Vec<String>) -> Memory {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |name: &str| {
        meminfo.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            let number = rest.trim().trim_end_matches("kB").trim();
            number.parse::<u64>().ok().map(|value| value * 1024)
        })
    };
    let total_bytes = kib("MemTotal").unwrap_or_else(|| {
        notes.push("total memory not readable (/proc/meminfo)".to_string());
        0
    });
    let available_bytes = kib("MemAvailable")
        .or_else(|| kib("MemFree"))
        .unwrap_or(total_bytes);
    let (limit, used) = cgroup_memory();
    // A limit at or above the machine's memory is no limit.
    let container_limit_bytes = limit.filter(|&limit| total_bytes == 0 || limit < total_bytes);
    Memory {
        total_bytes,
        available_bytes,
        container_limit_bytes,
        container_used_bytes: container_limit_bytes.and(used),
    }
}

/// The cgroup memory limit and usage of this process.
fn cgroup_memory() -> (Option<u64>, Option<u64>) {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    cgroup_memory_at(Path::new("/sys/fs/cgroup"), &own)
}

/// The memory limit and usage under the cgroup file system mounted at `root`, for a process
/// whose `/proc/self/cgroup` reads `own`: v2 (`memory.max`, `memory.current` in the
/// process's own group, else the root's), else v1 (`memory/memory.limit_in_bytes`,
/// `memory/memory.usage_in_bytes`). `max` (v2) or a huge v1 value means no limit.
fn cgroup_memory_at(root: &Path, own: &str) -> (Option<u64>, Option<u64>) {
    let read = |path: PathBuf| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
    };
    // v2: one line "0::/path".
    if let Some(group) = own.lines().find_map(|line| line.strip_prefix("0::")) {
        let group = group.trim().trim_start_matches('/');
        for dir in [root.join(group), root.to_path_buf()] {
            let max = std::fs::read_to_string(dir.join("memory.max")).ok();
            if let Some(max) = max {
                let limit = max.trim().parse::<u64>().ok();
                return (limit, limit.and(read(dir.join("memory.current"))));
            }
        }
    }
    let v1 = root.join("memory");
    let limit = read(v1.join("memory.limit_in_bytes")).filter(|&limit| limit < 1 << 60);
    (limit, limit.and(read(v1.join("memory.usage_in_bytes"))))
}

fn detect_gpus(notes: &mut Vec<String>) -> Vec<Gpu> {
    let mut gpus = nvidia_gpus(notes);
    let cuda = cfg!(feature = "cuda");
    let metal = cfg!(feature = "metal");
    if !gpus.is_empty() && !cuda {
        notes.push(
            "NVIDIA GPU found, but this binary was built without GPU inference: models run \
             on the CPU (rebuild with `cargo install --features cuda`, which needs the CUDA \
             toolkit)"
                .to_string(),
        );
    }
    for gpu in &mut gpus {
        gpu.usable = cuda;
    }
    if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
        gpus.push(Gpu {
            vendor: GpuVendor::Apple,
            name: "Apple Silicon (unified memory)".to_string(),
            total_bytes: 0,
            free_bytes: 0,
            usable: metal,
        });
        if !metal {
            notes.push(
                "Apple Silicon GPU found, but this binary was built without GPU inference: \
                 models run on the CPU (rebuild with `cargo install --features metal`)"
                    .to_string(),
            );
        }
    }
    gpus
}

/// NVIDIA GPUs through NVML, loaded at run time: no NVIDIA library means no NVIDIA GPU, not
/// an error. Without NVML (no driver, or a container without it), the driver's `/proc`
/// listing still names the GPUs, without their memory.
fn nvidia_gpus(notes: &mut Vec<String>) -> Vec<Gpu> {
    let mut gpus = Vec::new();
    match nvml_wrapper::Nvml::init() {
        Ok(nvml) => {
            let count = nvml.device_count().unwrap_or(0);
            for index in 0..count {
                let Ok(device) = nvml.device_by_index(index) else {
                    notes.push(format!("NVIDIA GPU {index}: NVML cannot open it"));
                    continue;
                };
                let name = device.name().unwrap_or_else(|_| "NVIDIA GPU".to_string());
                let (total_bytes, free_bytes) = device
                    .memory_info()
                    .map_or((0, 0), |memory| (memory.total, memory.free));
                gpus.push(Gpu {
                    vendor: GpuVendor::Nvidia,
                    name,
                    total_bytes,
                    free_bytes,
                    usable: true,
                });
            }
            return gpus;
        }
        Err(error) => {
            if std::path::Path::new("/proc/driver/nvidia/gpus").exists() {
                notes.push(format!(
                    "NVIDIA driver present but NVML is unusable ({error}): GPU memory unknown"
                ));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc/driver/nvidia/gpus") {
        for entry in entries.flatten() {
            let information =
                std::fs::read_to_string(entry.path().join("information")).unwrap_or_default();
            let name = information
                .lines()
                .find_map(|line| line.strip_prefix("Model:"))
                .map_or("NVIDIA GPU".to_string(), |name| name.trim().to_string());
            gpus.push(Gpu {
                vendor: GpuVendor::Nvidia,
                name,
                total_bytes: 0,
                free_bytes: 0,
                usable: false,
            });
        }
    }
    gpus
}

/// A stable key for this machine's calibration results: CPU, cores and memory size.
pub(crate) fn profile_key(profile: &HardwareProfile) -> String {
    let text = format!(
        "{}|{}|{}|{}|{}",
        profile.cpu.brand,
        profile.cpu.physical_cores,
        profile.cpu.logical_cores,
        profile.cpu.features.join(","),
        profile.memory.total_bytes / (1024 * 1024 * 1024)
    );
    blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_cores_count_distinct_cores_of_each_package() {
        let two_hyperthreaded = "processor\t: 0\nphysical id\t: 0\ncore id\t: 0\n\n\
                                 processor\t: 1\nphysical id\t: 0\ncore id\t: 0\n\n\
                                 processor\t: 2\nphysical id\t: 0\ncore id\t: 1\n\n\
                                 processor\t: 3\nphysical id\t: 0\ncore id\t: 1\n";
        assert_eq!(physical_cores(two_hyperthreaded), Some(2));
        assert_eq!(physical_cores("processor\t: 0\nBogoMIPS\t: 50\n"), None);
    }

    #[test]
    fn cgroup_limits_are_read_from_v2_and_v1() {
        let root = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        // No cgroup files at all: no limit.
        assert_eq!(cgroup_memory_at(root.path(), "0::/\n"), (None, None));
        // v1, unlimited (the kernel writes a huge number), then limited.
        write("memory/memory.limit_in_bytes", "9223372036854771712\n");
        write("memory/memory.usage_in_bytes", "1000\n");
        assert_eq!(
            cgroup_memory_at(root.path(), "4:memory:/docker/x\n"),
            (None, None)
        );
        write("memory/memory.limit_in_bytes", "4294967296\n");
        assert_eq!(
            cgroup_memory_at(root.path(), "4:memory:/docker/x\n"),
            (Some(4 << 30), Some(1000))
        );
        // v2: the process's own group wins; `max` is no limit.
        write("app/memory.max", "2147483648\n");
        write("app/memory.current", "5000\n");
        assert_eq!(
            cgroup_memory_at(root.path(), "0::/app\n"),
            (Some(2 << 30), Some(5000))
        );
        write("app/memory.max", "max\n");
        assert_eq!(cgroup_memory_at(root.path(), "0::/app\n"), (None, None));
    }

    #[test]
    fn a_container_limit_caps_what_is_usable() {
        let memory = Memory {
            total_bytes: 64 << 30,
            available_bytes: 60 << 30,
            container_limit_bytes: Some(4 << 30),
            container_used_bytes: Some(1 << 30),
        };
        assert_eq!(memory.usable_bytes(), 3 << 30);
    }

    #[test]
    fn this_machine_is_read() {
        let profile = detect();
        assert!(profile.cpu.logical_cores >= 1);
        assert!(profile.cpu.physical_cores <= profile.cpu.logical_cores);
        if cfg!(target_os = "linux") {
            assert!(profile.memory.total_bytes > 0);
            assert!(profile.memory.usable_bytes() <= profile.memory.total_bytes);
        }
    }
}
