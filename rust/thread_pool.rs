//! The thread pool chunk decoding runs on, one per process: a pool's threads do not survive
//! `fork`, and a child using its parent's pool would wait forever for them. The pool is found
//! through a lock-free pointer (never a mutex, which a fork could inherit locked).
//!
//! Every parallel loop of the crate runs inside [`install`] (rayon's global pool is never used:
//! it is not rebuilt in a forked child). A panic in a task reaches the caller of `install`,
//! as rayon propagates it, where the binding layer turns it into a Python exception.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

struct ProcessPool {
    pid: u32,
    pool: ThreadPool,
}

/// The current process's pool; pools are leaked, never freed (one per process that forked).
static POOL: AtomicPtr<ProcessPool> = AtomicPtr::new(ptr::null_mut());

/// The most threads a pool gets, whatever `BIOIMAGE_PY_NUM_THREADS` asks for (rayon sets up
/// every thread at once, and an absurd count would exhaust memory doing so).
const MAX_THREADS: usize = 1024;

/// Threads per process: `BIOIMAGE_PY_NUM_THREADS` if set (at most [`MAX_THREADS`]), else the
/// available cores.
fn num_threads() -> usize {
    std::env::var("BIOIMAGE_PY_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .map(|n| n.min(MAX_THREADS))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// This process's pool, built on first use (and again in a forked child). Fails when its
/// threads cannot be started (process or memory limits).
pub fn thread_pool() -> Result<&'static ThreadPool> {
    let pid = std::process::id();
    loop {
        let current = POOL.load(Ordering::Acquire);
        // SAFETY: non-null pointers in POOL come from `Box::into_raw` and are never freed.
        if let Some(existing) = unsafe { current.as_ref() } {
            if existing.pid == pid {
                return Ok(&existing.pool);
            }
        }
        let pool = ThreadPoolBuilder::new()
            .num_threads(num_threads())
            .thread_name(|i| format!("bioimage_py-{i}"))
            .build()
            .map_err(|e| Error::Resource(format!("cannot start the thread pool: {e}")))?;
        let candidate = Box::into_raw(Box::new(ProcessPool { pid, pool }));
        match POOL.compare_exchange(current, candidate, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: `candidate` was just leaked from a Box and is never freed.
            Ok(_) => return Ok(unsafe { &(*candidate).pool }),
            // Another thread of this process installed a pool first: drop ours and use theirs.
            // SAFETY: `candidate` was never shared, so this is its only owner.
            Err(_) => drop(unsafe { Box::from_raw(candidate) }),
        }
    }
}

/// Runs `f` on this process's pool: parallel iterators inside it use the pool's threads.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R> {
    Ok(thread_pool()?.install(f))
}

#[cfg(test)]
mod tests {
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
