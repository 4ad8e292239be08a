//! Values that belong to one process: thread pools, the async runtime, network clients. Their
//! threads and connections do not survive `fork`, and a child using its parent's would wait
//! forever for them; so a child builds its own on first use. The current value is found
//! through a lock-free pointer (never a mutex, which a fork could inherit locked). A value
//! replaced in a forked child is leaked, never dropped: dropping it would join threads that do
//! not exist in the child.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::error::Result;

struct Owned<T> {
    pid: u32,
    value: T,
}

/// A `T` built lazily once per process (again in a forked child).
pub struct PerProcess<T> {
    current: AtomicPtr<Owned<T>>,
}

impl<T> Default for PerProcess<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> PerProcess<T> {
    pub const fn new() -> Self {
        PerProcess {
            current: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// This process's value, built by `init` on first use in the process. Two threads racing
    /// to build it both run `init`; one value wins and the other is dropped.
    pub fn get_or_try_init(&self, init: impl FnOnce() -> Result<T>) -> Result<&T> {
        let pid = std::process::id();
        let current = self.current.load(Ordering::Acquire);
        // SAFETY: non-null pointers come from `Box::into_raw` and are only freed by `drop`,
        // which has `&mut self`, or never (values of another process are leaked).
        if let Some(existing) = unsafe { current.as_ref() } {
            if existing.pid == pid {
                return Ok(&existing.value);
            }
        }
        let candidate = Box::into_raw(Box::new(Owned {
            pid,
            value: init()?,
        }));
        match self
            .current
            .compare_exchange(current, candidate, Ordering::AcqRel, Ordering::Acquire)
        {
            // SAFETY: `candidate` was just leaked from a Box; it lives as long as `self`.
            Ok(_) => Ok(unsafe { &(*candidate).value }),
            Err(installed) => {
                // SAFETY: `candidate` was never shared, so this is its only owner.
                drop(unsafe { Box::from_raw(candidate) });
                // SAFETY: as above; `installed` was installed by this process (a forked child
                // has one thread until it runs code, so a racing installer is of this pid).
                Ok(unsafe { &(*installed).value })
            }
        }
    }
}

impl<T> Drop for PerProcess<T> {
    fn drop(&mut self) {
        let current = *self.current.get_mut();
        // SAFETY: as in `get_or_try_init`; only this process's value is freed.
        if let Some(owned) = unsafe { current.as_ref() } {
            if owned.pid == std::process::id() {
                drop(unsafe { Box::from_raw(current) });
            }
        }
    }
}

// SAFETY: the value is shared between threads as `&T` only.
unsafe impl<T: Send + Sync> Sync for PerProcess<T> {}
unsafe impl<T: Send> Send for PerProcess<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_once_per_process() {
        let holder = PerProcess::new();
        let first = holder.get_or_try_init(|| Ok(vec![1, 2])).unwrap() as *const Vec<i32>;
        let again = holder.get_or_try_init(|| Ok(vec![3])).unwrap() as *const Vec<i32>;
        assert_eq!(first, again);
        assert_eq!(holder.get_or_try_init(|| Ok(vec![])).unwrap(), &vec![1, 2]);
    }
}
