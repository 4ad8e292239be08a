//! The thread pool chunk decoding runs on, one per process: a pool's threads do not survive
//! `fork`, and a child using its parent's pool would wait forever for them. The pool is found
//! through a lock-free pointer (never a mutex, which a fork could inherit locked).

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use rayon::{ThreadPool, ThreadPoolBuilder};

struct ProcessPool {
    pid: u32,
    pool: ThreadPool,
}

/// The current process's pool; pools are leaked, never freed (one per process that forked).
static POOL: AtomicPtr<ProcessPool> = AtomicPtr::new(ptr::null_mut());

/// Threads per process: `BIOIMAGE_PY_NUM_THREADS` if set, else the available cores.
fn num_threads() -> usize {
    std::env::var("BIOIMAGE_PY_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// This process's pool, built on first use (and again in a forked child).
pub fn thread_pool() -> &'static ThreadPool {
    let pid = std::process::id();
    loop {
        let current = POOL.load(Ordering::Acquire);
        // SAFETY: non-null pointers in POOL come from `Box::into_raw` and are never freed.
        if let Some(existing) = unsafe { current.as_ref() } {
            if existing.pid == pid {
                return &existing.pool;
            }
        }
        let pool = ThreadPoolBuilder::new()
            .num_threads(num_threads())
            .thread_name(|i| format!("bioimage_py-{i}"))
            .build()
            .expect("a thread pool can be built");
        let candidate = Box::into_raw(Box::new(ProcessPool { pid, pool }));
        match POOL.compare_exchange(current, candidate, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: `candidate` was just leaked from a Box and is never freed.
            Ok(_) => return unsafe { &(*candidate).pool },
            // Another thread of this process installed a pool first: drop ours and use theirs.
            // SAFETY: `candidate` was never shared, so this is its only owner.
            Err(_) => drop(unsafe { Box::from_raw(candidate) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pool_per_process() {
        assert!(ptr::eq(thread_pool(), thread_pool()));
        assert_eq!(thread_pool().install(|| 1 + 1), 2);
    }
}
