//! Region writes as a pipeline: chunks (or shards) are assembled and encoded in parallel on the
//! decoding pool while a few I/O threads store the results, so the CPUs keep encoding while
//! values are written (to disk, or uploaded to an object store).
//!
//! The I/O threads are scoped to one call: nothing outlives it, so nothing breaks in a forked
//! child.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::storage::Store;
use crate::thread_pool::thread_pool;

/// The new content of one stored value: its bytes, or `None` to delete it.
pub(super) struct Stored {
    pub(super) key: String,
    pub(super) bytes: Option<Vec<u8>>,
}

impl Stored {
    /// Writes (whole) or deletes the value.
    pub(super) fn store(self, store: &dyn Store) -> Result<()> {
        match self.bytes {
            Some(bytes) => store.put(&self.key, &bytes),
            None => store.delete(&self.key),
        }
    }
}

/// Produces the stored value of items `0..count` in parallel and stores them on I/O threads.
/// The first error (an I/O error before an encoding one) is returned; after an error, items not
/// yet produced are skipped. A single item is produced on the caller's thread (its own
/// parallel work, if any, runs on the process's pool too).
pub(super) fn produce_and_store(
    store: &dyn Store,
    count: usize,
    produce: impl Fn(usize) -> Result<Stored> + Sync,
) -> Result<()> {
    if count <= 1 {
        return (0..count).try_for_each(|item| produce(item)?.store(store));
    }
    let pool = thread_pool()?;
    // Uploads wait on the network, not the disk: many more of them are kept in flight.
    let writers = if store.is_remote() {
        32
    } else {
        (2 * pool.current_num_threads()).clamp(4, 16)
    }
    .min(count);
    let (sender, receiver) = sync_channel::<Stored>(2 * writers);
    let receiver = Mutex::new(receiver);
    let failed = AtomicBool::new(false);
    let io_error: Mutex<Option<Error>> = Mutex::new(None);
    let produced = std::thread::scope(|scope| {
        let mut started = 0;
        for _ in 0..writers {
            let writer = std::thread::Builder::new().spawn_scoped(scope, || loop {
                // Writers drain the channel until every sender is gone, even after a failure,
                // so producers never block on a full channel.
                let next = receiver
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .recv();
                let Ok(stored) = next else { return };
                if failed.load(Ordering::Relaxed) {
                    continue;
                }
                if let Err(e) = stored.store(store) {
                    failed.store(true, Ordering::Relaxed);
                    io_error
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .get_or_insert(e);
                }
            });
            started += usize::from(writer.is_ok());
        }
        if started == 0 {
            // Nothing would drain the channel: fail rather than block on it.
            return Err(Error::Resource(
                "cannot start a thread to write chunks".to_string(),
            ));
        }
        pool.install(|| {
            (0..count)
                .into_par_iter()
                .try_for_each_with(sender, |sender, item| -> Result<()> {
                    if failed.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    let stored = produce(item).inspect_err(|_| {
                        failed.store(true, Ordering::Relaxed);
                    })?;
                    // The receiver lives until the scope ends, so sending cannot fail.
                    let _ = sender.send(stored);
                    Ok(())
                })
        })
        // The senders are dropped here, so the writers finish and the scope joins them.
    });
    match io_error
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
    {
        Some(e) => Err(e),
        None => produced,
    }
}
