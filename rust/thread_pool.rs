//! The thread pools chunk decoding runs on, one per process ([`PerProcess`]: a pool's threads
//! do not survive `fork`).
//!
//! Every parallel loop of the crate runs inside [`install`] (rayon's global pool is never used:
//! it is not rebuilt in a forked child). A panic in a task reaches the caller of `install`,
//! as rayon propagates it, where the binding layer turns it into a Python exception.

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};
use crate::per_process::PerProcess;

static POOL: PerProcess<ThreadPool> = PerProcess::new();
static IO_POOL: PerProcess<ThreadPool> = PerProcess::new();

/// The most threads a pool gets, whatever `BIOIMAGE_PY_NUM_THREADS` asks for (rayon sets up
/// every thread at once, and an absurd count would exhaust memory doing so).
const MAX_THREADS: usize = 1024;

/// Threads per process: `BIOIMAGE_PY_NUM_THREADS` if set (at most [`MAX_THREADS`]), else the
/// available cores.
fn num_threads() -> usize {
    env_threads("BIOIMAGE_PY_NUM_THREADS")
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

fn env_threads(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .map(|n| n.min(MAX_THREADS))
}

fn build(threads: usize, prefix: &'static str) -> Result<ThreadPool> {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{prefix}-{i}"))
        .build()
        .map_err(|e| Error::Resource(format!("cannot start the thread pool: {e}")))
}

/// This process's pool, built on first use (and again in a forked child). Fails when its
/// threads cannot be started (process or memory limits).
pub fn thread_pool() -> Result<&'static ThreadPool> {
    POOL.get_or_try_init(|| build(num_threads(), "bioimage_py"))
}

/// The pool chunk reads of remote stores run on: a task there mostly waits for the network,
/// so it has many more threads than cores (`BIOIMAGE_PY_REMOTE_CONCURRENCY`, default 32),
/// which bounds the requests in flight per process.
pub fn io_thread_pool() -> Result<&'static ThreadPool> {
    IO_POOL.get_or_try_init(|| {
        let threads = env_threads("BIOIMAGE_PY_REMOTE_CONCURRENCY").unwrap_or(32);
        build(threads, "bioimage_py-io")
    })
}

/// Runs `f` on this process's pool: parallel iterators inside it use the pool's threads.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R> {
    Ok(thread_pool()?.install(f))
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use rayon::prelude::*;

    use super::*;

    #[test]
    fn one_pool_per_process() {
        assert!(ptr::eq(thread_pool().unwrap(), thread_pool().unwrap()));
        assert_eq!(install(|| 1 + 1).unwrap(), 2);
        // Parallel loops inside `install` run on the pool's threads, not rayon's global pool.
        let names: Vec<String> = install(|| {
            (0..64)
                .into_par_iter()
                .map(|_| std::thread::current().name().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap();
        assert!(
            names.iter().all(|n| n.starts_with("bioimage_py-")),
            "{names:?}"
        );
    }

    #[test]
    fn a_panicking_task_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| {
            install(|| {
                (0..16)
                    .into_par_iter()
                    .for_each(|i| assert!(i != 7, "task {i} fails"));
            })
        });
        assert!(caught.is_err());
        assert_eq!(install(|| 3).unwrap(), 3); // the pool still works
    }
}
