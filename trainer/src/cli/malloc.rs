//! glibc's allocator, tuned for tensors of hundreds of megabytes, by re-executing once at start.
//!
//! Why: glibc serves every block above its mmap threshold (at most 32 MB by default) with fresh
//! pages from the kernel and unmaps it when freed, so every `[B, T, V]` logits tensor, its
//! gradient and the embedding's gradient of a SmolLM2 training step (100–200 MB each) comes back
//! as newly zeroed pages: 4.8M page faults in `entrl bench`'s three train steps, 16% of an SFT
//! step's profile in the kernel's `clear_page_erms` (docs/LOG.md). With the mmap threshold at
//! 4 GiB and the trim threshold at 8 GiB, freed blocks stay in the heap and are reused (1.3M
//! faults; train step +20%, GRPO step −14% time, peak memory +1–3%). jemalloc and mimalloc were
//! slower. `mallopt` caps the mmap threshold at 32 MB, so the values go in through
//! `GLIBC_TUNABLES`, which glibc reads only at process start: hence one `exec` of the same binary
//! (same PID, arguments and streams) before anything else runs. Skipped when the caller already
//! tunes glibc's malloc, or with `ENTRL_MALLOC=default`.

/// The tunables entrl sets.
pub const TUNABLES: &str = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=8589934592";
/// Set in the re-executed process (and inherited by its children), so that it happens once.
const MARK: &str = "ENTRL_MALLOC";

/// Re-executes this process with [`TUNABLES`] unless it already runs with them, the caller set
/// its own malloc tunables, or `ENTRL_MALLOC` is set. Returns only when no `exec` happened (or it
/// failed: the run continues with glibc's defaults).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(MARK).is_some() {
        return;
    }
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if current.contains("glibc.malloc.") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let tunables = if current.is_empty() {
        TUNABLES.to_string()
    } else {
        format!("{current}:{TUNABLES}")
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let _failed = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .env(MARK, "tuned")
        .exec();
}

/// Other platforms keep their allocator's defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}
