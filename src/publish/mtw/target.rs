//! Where a multithreaded writer's batches go, and how failures are retried.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::Result;
use crate::graph::{stage, Core};
use crate::table::Table;

/// The target of a [`MultithreadedTableWriter`](crate::MultithreadedTableWriter).
#[derive(Clone)]
#[non_exhaustive]
pub enum WriteTarget {
    /// A table of a local engine (not a derived table).
    Local(Table),
    /// A table on a remote engine, over Arrow Flight `DoPut`.
    ///
    /// Each writer thread drives its own single-threaded tokio runtime, so the writer works
    /// from plain threads. Its calls block: from inside a tokio runtime, create the writer and
    /// call `insert`, `flush` and `wait_for_completion` on a blocking task
    /// (`tokio::task::spawn_blocking`), never directly on an async worker.
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

impl WriteTarget {
    /// The target table's schema, name and key columns; a remote target asks its server.
    pub(crate) fn describe(&self) -> Result<(SchemaRef, String, Vec<usize>)> {
        match self {
            WriteTarget::Local(t) => {
                if t.is_derived() {
                    return Err(crate::Error::DerivedTable {
                        table: t.name().to_owned(),
                    });
                }
                Ok((
                    t.schema().clone(),
                    t.name().to_owned(),
                    t.key_columns().to_vec(),
                ))
            }
            #[cfg(feature = "flight")]
            WriteTarget::Remote { url, table, token } => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let remote = rt.block_on(async {
                    // A short limit: a server that never answers fails `new` quickly.
                    let mut c = crate::flight::Client::connect(url)
                        .await?
                        .with_timeout(crate::flight::CONNECT_TIMEOUT);
                    if let Some(t) = token {
                        c = c.with_token(t)?;
                    }
                    c.table(table).await
                })?;
                let key = remote
                    .key
                    .iter()
                    .map(|k| {
                        remote
                            .schema
                            .index_of(k)
                            .map_err(|_| crate::Error::Protocol {
                                message: format!(
                                    "table {table:?}: key column {k:?} not in its schema"
                                ),
                            })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok((remote.schema, table.clone(), key))
            }
        }
    }

    /// Waits until what was published is visible: for a local table of an engine with a
    /// cycle thread, the next cycle to start; otherwise nothing (a manual engine's caller runs
    /// the cycle, a remote server's rows are visible after its next cycle).
    pub(crate) fn sync(&self) {
        if let WriteTarget::Local(t) = self {
            if let Ok(core) = t.core() {
                if core.config.threaded && !core.is_shut_down() {
                    crate::graph::wait::sync(&core);
                }
            }
        }
    }
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
                let core = table.core()?;
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

    /// The most rows one [`publish`](Self::publish) takes without being refused as too
    /// large: a local table's staging limit. A remote table takes one batch at a time
    /// (`usize::MAX` rows would risk the server's `DoPut` limits), so it says 0.
    pub(crate) fn max_rows_per_publish(&self) -> usize {
        match self {
            Connection::Local { table, .. } => table.shared.staging.limit(),
            #[cfg(feature = "flight")]
            Connection::Remote { .. } => 0,
        }
    }

    /// Publishes the batches, all in one cycle. Never blocks for long: a full staging buffer
    /// is reported as [`Error::StagingFull`] for the caller to retry.
    pub(crate) fn publish(&mut self, batches: &[RecordBatch]) -> Result<()> {
        match self {
            Connection::Local { table, core } => {
                stage::batches(core, &table.shared, batches, false)
                    .map(drop)
                    .map_err(|e| e.into_error(core, &table.shared))
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
