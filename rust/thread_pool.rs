//! The thread pool chunk decoding runs on, rebuilt in a forked child: a pool's threads do not
//! survive `fork`, and a child using its parent's pool would wait forever for them.

use std::sync::{Arc, Mutex};

use rayon::{ThreadPool, ThreadPoolBuilder};

static POOL: Mutex<Option<(u32, Arc<ThreadPool>)>> = Mutex::new(None);

/// Threads per process: `BIOIMAGE_PY_NUM_THREADS` if set, else the available cores.
fn num_threads() -> usize {
    std::env::var("BIOIMAGE_PY_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// This process's pool.
pub fn thread_pool() -> Arc<ThreadPool> {
    let pid = std::process::id();
    let mut guard = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((owner, pool)) = guard.as_ref() {
        if *owner == pid {
            return Arc::clone(pool);
        }
    }
    let pool = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(num_threads())
            .thread_name(|i| format!("bioimage_py-{i}"))
            .build()
            .expect("a thread pool can be built"),
    );
    // A parent's pool inherited through fork has no threads here; dropping it would signal
    // threads that do not exist, so it is leaked (once per fork).
    if let Some(inherited) = guard.replace((pid, Arc::clone(&pool))) {
        std::mem::forget(inherited);
    }
    pool
}
