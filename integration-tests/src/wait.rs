//! Bounded polling: the tests synchronise on observable state, never on sleeps.

use std::future::Future;
use std::time::{Duration, Instant};

/// Pause between two probes.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Calls `probe` until it returns `Ok(Some(_))`, at most for `timeout`. `Ok(None)` means "not
/// yet"; an error is remembered (and reported at the timeout) but does not stop the polling,
/// since a server that is starting may refuse a few calls.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(match last_error {
                Some(e) => e.context(format!(
                    "{what}: not reached within {} s; last error",
                    timeout.as_secs_f64()
                )),
                None => anyhow::anyhow!("{what}: not reached within {} s", timeout.as_secs_f64()),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_ready_value() {
        let mut calls = 0;
        let value = until("counter", Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move { Ok((n >= 3).then_some(n)) }
        })
        .await
        .expect("reached");
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn times_out_naming_the_condition_and_the_last_error() {
        let err = until::<(), _, _>("the moon", Duration::from_millis(120), || async {
            Err(anyhow::anyhow!("still dark"))
        })
        .await
        .expect_err("never");
        let message = format!("{err:#}");
        assert!(message.contains("the moon"), "{message}");
        assert!(message.contains("still dark"), "{message}");
    }
}
