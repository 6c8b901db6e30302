//! Bounded concurrency of host calls: at most `max_concurrency` in flight,
//! the first error stops further starts.

use crate::error::{ProvisionError, Result};

/// The default bound on concurrent host calls; `Provisioner` says why it is
/// this high.
pub(crate) const DEFAULT_MAX_CONCURRENCY: usize = 64;

/// Runs `f` over `items` with at most `limit` in flight. Once one fails no
/// further item is started; the calls in flight settle, then the first
/// error is returned (a `needs_operator` one before any other, since it
/// decides the batch status). Results come back in `items` order.
pub(crate) async fn bounded<I, T, F, Fut>(limit: usize, items: Vec<I>, f: F) -> Result<Vec<T>>
where
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    use futures::StreamExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    let stop = &stop;
    // Futures are built first (lazy: nothing runs before it is polled),
    // then polled at most `limit` at once.
    let calls: Vec<_> = items
        .into_iter()
        .enumerate()
        .map(|(n, item)| {
            let call = f(item);
            async move {
                if stop.load(Ordering::SeqCst) {
                    return (n, None);
                }
                let r = call.await;
                if r.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
                (n, Some(r))
            }
        })
        .collect();
    let mut done: Vec<(usize, Option<Result<T>>)> = futures::stream::iter(calls)
        .buffer_unordered(limit.max(1))
        .collect()
        .await;
    done.sort_by_key(|(n, _)| *n);
    let mut out = Vec::new();
    let mut error: Option<ProvisionError> = None;
    for (_, r) in done {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => {
                let stronger = matches!(e, ProvisionError::NeedsOperator { .. })
                    && !matches!(error, Some(ProvisionError::NeedsOperator { .. }));
                if error.is_none() || stronger {
                    error = Some(e);
                }
            }
            None => {}
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
