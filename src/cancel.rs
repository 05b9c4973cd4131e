//! A cancel token: one side triggers it (from any thread), the HTTP exchange it was given to
//! stops at once, its connection closed, whatever it was waiting for.
//!
//! The waiting side is a future on the library's HTTP runtime (see `http.rs`), so that
//! triggering interrupts a read the service is not answering, not only a wait for it.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use tokio::sync::Notify;

/// Cheap to clone: clones are the same token.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    triggered: AtomicBool,
    notify: Notify,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Cancels every exchange waiting on this token now, and every later one at once.
    pub fn trigger(&self) {
        self.0.triggered.store(true, SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_triggered(&self) -> bool {
        self.0.triggered.load(SeqCst)
    }

    /// Resolves once the token is triggered.
    pub async fn triggered(&self) {
        loop {
            // Made before the check: `notify_waiters` wakes every `Notified` that exists
            // when it runs, so a trigger between the check and the await is not lost.
            let notified = self.0.notify.notified();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

/// Resolves once any of `tokens` is triggered (never, for none).
pub async fn any(tokens: &[&Cancel]) {
    match tokens {
        [] => std::future::pending().await,
        [one] => one.triggered().await,
        [first, rest @ ..] => {
            tokio::select! {
                () = first.triggered() => {}
                () = Box::pin(any(rest)) => {}
            }
        }
    }
}
