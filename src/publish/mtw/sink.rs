//! Where a multithreaded writer's batches go, and how failures are retried.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;

use crate::engine::Core;
use crate::error::{Error, Result};
use crate::publish::staging::PushRefused;
use crate::table::Table;

/// The target of a [`MultithreadedTableWriter`](crate::MultithreadedTableWriter).
#[derive(Clone)]
#[non_exhaustive]
pub enum WriteTarget {
    /// A table of a local engine (not a derived table).
    Local(Table),
    /// A table on a remote engine, over Arrow Flight `DoPut`.
    #[cfg(feature = "flight")]
    Remote {
        /// `grpc://host:port`.
        url: String,
        /// The table's name.
        table: String,
        /// The server's token, if it needs one.
        token: Option<String>,
    },
}

impl fmt::Debug for WriteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteTarget::Local(t) => f.debug_tuple("Local").field(&t.name()).finish(),
            #[cfg(feature = "flight")]
            WriteTarget::Remote { url, table, .. } => f
                .debug_struct("Remote")
                .field("url", url)
                .field("table", table)
                .finish_non_exhaustive(),
        }
    }
}

/// Whether retrying can succeed: a full buffer or an unreachable server, not a refusal.
pub(crate) fn is_transient(e: &Error) -> bool {
    match e {
        Error::StagingFull { .. } => true,
        Error::Remote { kind, .. } => kind.is_transient(),
        _ => false,
    }
}

/// The delay before retry `attempt` (0-based): exponential from `base`, capped at `max`, with
/// full jitter in `[delay / 2, delay]` so many writers do not retry in step.
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration, seed: &mut u64) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX));
    let delay = exp.min(max);
    // xorshift64: cheap, good enough to spread retries.
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let frac = f64::from(u32::try_from(*seed >> 40).unwrap_or(0)) / f64::from(1u32 << 24);
    delay.mul_f64(0.5 + frac / 2.0)
}

/// One writer thread's connection to the sink (one per thread, so its size does not matter).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Connection {
    Local {
        table: Table,
        core: Arc<Core>,
    },
    #[cfg(feature = "flight")]
    Remote {
        runtime: tokio::runtime::Runtime,
        url: String,
        table: String,
        token: Option<String>,
        client: Option<crate::flight::Client>,
    },
}

impl Connection {
    pub(crate) fn open(sink: &WriteTarget) -> Result<Self> {
        match sink {
            WriteTarget::Local(table) => {
                let core = table.shared.core()?;
                Ok(Connection::Local {
                    table: table.clone(),
                    core,
                })
            }
            #[cfg(feature = "flight")]
            WriteTarget::Remote { url, table, token } => Ok(Connection::Remote {
                runtime: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
                url: url.clone(),
                table: table.clone(),
                token: token.clone(),
                client: None,
            }),
        }
    }

    /// Publishes the batches, all in one cycle. Never blocks for long: a full staging buffer
    /// is reported as [`Error::StagingFull`] for the caller to retry.
    pub(crate) fn publish(&mut self, batches: &[RecordBatch]) -> Result<()> {
        match self {
            Connection::Local { table, core } => {
                let shared = &table.shared;
                let mut checked = Vec::with_capacity(batches.len());
                for b in batches {
                    checked.push(shared.check_input(b)?);
                }
                match shared.staging.push_all(checked, core.shut_down_flag()) {
                    Ok(notify) => {
                        if notify {
                            core.mark_dirty(shared.id);
                        }
                        Ok(())
                    }
                    Err(PushRefused::Full(staged)) => Err(Error::StagingFull {
                        table: table.name().to_owned(),
                        staged,
                        limit: shared.staging.limit(),
                    }),
                    Err(PushRefused::Closed) if core.is_shut_down() => Err(Error::EngineShutDown),
                    Err(PushRefused::Closed) => Err(Error::TableClosed {
                        table: table.name().to_owned(),
                    }),
                }
            }
            #[cfg(feature = "flight")]
            Connection::Remote {
                runtime,
                url,
                table,
                token,
                client,
            } => {
                let result = runtime.block_on(async {
                    if client.is_none() {
                        let mut c = crate::flight::Client::connect(url).await?;
                        if let Some(t) = token {
                            c = c.with_token(t)?;
                        }
                        *client = Some(c);
                    }
                    let c = client.as_mut().expect("invariant: connected just above");
                    c.publish(table, batches.to_vec()).await
                });
                if result.is_err() {
                    // Reconnect on the next attempt: the channel may be broken.
                    *client = None;
                }
                result.map(|_| ())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let mut seed = 42;
        let d = backoff(
            0,
            Duration::from_millis(100),
            Duration::from_secs(1),
            &mut seed,
        );
        assert!(
            d >= Duration::from_millis(50) && d <= Duration::from_millis(100),
            "{d:?}"
        );
    }

    #[test]
    fn backoff_grows_then_caps_with_jitter() {
        let mut seed = 7;
        let base = Duration::from_millis(10);
        let max = Duration::from_millis(200);
        for attempt in 0..30 {
            let d = backoff(attempt, base, max, &mut seed);
            let full = (base * 2u32.saturating_pow(attempt.min(20))).min(max);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} vs {full:?}"
            );
        }
    }
}
