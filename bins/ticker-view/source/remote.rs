//! A served engine as a [`DataSource`]: Arrow Flight through `tickertable::flight::Client`.
//!
//! # Connection
//!
//! One supervisor task on the tokio runtime owns the connection. A *session* connects, lists
//! the tables and runs one forwarder task per table, which subscribes to the table's live
//! ticket and sends what each message did as a [`DataEvent`] on that table's bounded
//! channel: the [`DataStream`] the viewer reads. Every `poll` the session lists the tables
//! again, which checks that the server still answers, finds tables created since and marks
//! the ones dropped ([`SourceStatus::listed`]: the viewer leaves them out). When the
//! connection is lost the status says why, and the supervisor reconnects after an exponential
//! backoff (250 ms doubling to 5 s by default, back to the start after a session that
//! connected), resubscribing every table from a fresh snapshot. A table's channel outlives
//! sessions, so the viewer keeps reading the same stream across reconnects.
//!
//! A stream that fails while the server still answers a listing is the table's failure, not
//! the connection's: the table's stream gets a [`DataEvent::Failed`] and is not resubscribed
//! until the next session.
//!
//! # Messages to events
//!
//! The library's `RemoteSubscription` applies each message of a live stream (see
//! `tickertable::flight`, "Wire format") to its `tickertable::Mirror`; the forwarder only
//! says what happened, with an O(1) copy of that mirror. The first `reset` of a subscription
//! starts a snapshot ([`DataEvent::Snapshot`]), a later one is a resynchronisation of a
//! viewer that fell behind ([`DataEvent::Lagged`]); every other message is a
//! [`DataEvent::Update`] whose [`Change`] holds its `removed` and `added` positions, or (a
//! keyed table's message with `modified` positions) its rows modified in place, their column
//! masks and the chunks they replaced. The messages of one step that have already arrived
//! make one event ([`Change::merge`]), in order: a keyed table's update is its modified-row
//! messages, the first with the `removed` range, then its added-row messages. The rest of a
//! step that arrives later gives more updates with the same step, each describing what the
//! mirror applied in turn. The server sends a snapshot a stored chunk per message, so a
//! large one often comes in parts: the App takes updates of a snapshot's step as the rest of
//! the snapshot, and they do not count as rows in.
//!
//! # Cycle period and time
//!
//! Every `poll` the session also asks for the server's `stats` (`DoAction`): its configured
//! period ([`Period::Configured`]), its last cycle time and its step. A server that does not
//! answer `stats` (another Flight server) is still shown: the period is then measured from the
//! steps seen go by ([`Period::Observed`]) and the last cycle time is unknown.
//!
//! # What a remote source cannot know
//!
//! Rows dropped by
//! append limits are not counted. The rows "in" are the rows the table's end position moved
//! over while connected (a keyed table's: the rows modified and added), counted when they
//! arrive.
//!
//! # Blocking
//!
//! The viewer never waits for the network: [`DataSource::status`] reads atomics and mutexes
//! that the network tasks hold only to write a field, and data comes through bounded
//! channels. A viewer that stops reading a table stalls only that table's stream, and the
//! server then resynchronises it with a fresh snapshot.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{stream, FutureExt, StreamExt};
use parking_lot::Mutex;
use tickertable::flight::{Client, ClientTls, RemoteMessage, RemoteSubscription, RemoteTable};
use tickertable::{Error, RemoteErrorKind, Step, TableKind};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{timeout, MissedTickBehavior};

use crate::source::{
    Change, DataEvent, DataSource, DataStream, Link, Period, SourceStatus, TableInfo,
};

/// How far back the observed period looks.
const PERIOD_WINDOW: Duration = Duration::from_secs(3);

/// Options of a [`Remote`] source.
#[derive(Clone)]
pub(crate) struct RemoteOptions {
    /// Sent as `authorization: Bearer <token>` with every call.
    pub(crate) token: Option<String>,
    /// For `grpc+tls://` URLs: the CA to trust (and an identity for mutual TLS).
    pub(crate) tls: Option<ClientTls>,
    /// The first wait before reconnecting.
    pub(crate) min_backoff: Duration,
    /// The longest wait before reconnecting.
    pub(crate) max_backoff: Duration,
    /// How often a session lists the tables (liveness, new tables).
    pub(crate) poll: Duration,
    /// How long connecting or listing may take before the link counts as lost.
    pub(crate) timeout: Duration,
    /// Events queued per table for the viewer.
    pub(crate) queue: usize,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            token: None,
            tls: None,
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            queue: 64,
        }
    }
}

impl fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("tls", &self.tls.is_some())
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("poll", &self.poll)
            .field("timeout", &self.timeout)
            .field("queue", &self.queue)
            .finish()
    }
}

/// A served engine, reached over Arrow Flight. Dropping it stops its network tasks.
#[derive(Debug)]
pub(crate) struct Remote {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Remote {
    /// Starts connecting to `url` (`grpc://host:port`) on the current tokio runtime, and
    /// returns at once: the tables show up in [`DataSource::tables`] once listed.
    ///
    /// # Errors
    ///
    /// If `url` is not a `grpc://host:port` (or `http://`) URL, or there is no runtime.
    pub(crate) fn start(url: &str, options: RemoteOptions) -> Result<Self> {
        authority(url)?;
        let runtime = tokio::runtime::Handle::try_current()
            .context("a remote source needs a tokio runtime")?;
        let shared = Arc::new(Shared {
            url: url.to_owned(),
            options,
            slots: Mutex::new(Vec::new()),
            state: watch::Sender::new(State {
                link: LinkState::Connecting,
                tables: 0,
                unlisted: 0,
            }),
            step: AtomicU64::new(0),
            steps: Mutex::new(VecDeque::new()),
            server: Mutex::new(None),
        });
        let task = runtime.spawn(supervise(shared.clone()));
        Ok(Self { shared, task })
    }

    /// The link and table count, to wait for a change.
    #[cfg(test)]
    pub(crate) fn watch(&self) -> watch::Receiver<State> {
        self.shared.state.subscribe()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // The session, its forwarders and their subscriptions are owned by this task.
        self.task.abort();
    }
}

impl DataSource for Remote {
    fn describe(&self) -> String {
        self.shared.url.clone()
    }

    fn tables(&self) -> Vec<TableInfo> {
        self.shared
            .slots
            .lock()
            .iter()
            .map(|s| s.info.clone())
            .collect()
    }

    fn subscribe(&self, index: usize) -> Result<DataStream> {
        let slot = self
            .shared
            .slots
            .lock()
            .get(index)
            .cloned()
            .context("no such table")?;
        let Some(rx) = slot.rx.lock().take() else {
            bail!("table {} is already being read", slot.info.name);
        };
        let events = stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        });
        Ok(events.boxed())
    }

    fn status(&mut self) -> SourceStatus {
        let link = match &self.shared.state.borrow().link {
            LinkState::Connecting => Link::Connecting,
            LinkState::Connected => Link::Connected,
            LinkState::Disconnected { reason, retry_at } => Link::Disconnected {
                reason: reason.clone(),
                retry_in: retry_at.map(|at| tenths(at.saturating_duration_since(Instant::now()))),
            },
        };
        let server = *self.shared.server.lock();
        let period = if let Some(s) = server {
            Period::Configured(s.period)
        } else {
            let steps = self.shared.steps.lock();
            match (steps.front(), steps.back()) {
                (Some(&(t0, s0)), Some(&(t1, s1))) if s1 > s0 => {
                    Period::Observed((t1 - t0) / u32::try_from(s1 - s0).unwrap_or(u32::MAX))
                }
                _ => Period::Unknown,
            }
        };
        let step = self.shared.step.load(Ordering::Relaxed);
        // One lock for both lists (a second `lock()` in the literal would deadlock: the
        // first guard lives to the end of the statement).
        let (ends, listed) = self
            .shared
            .slots
            .lock()
            .iter()
            .map(|s| {
                (
                    Some(s.taken.load(Ordering::Relaxed)),
                    s.listed.load(Ordering::Relaxed),
                )
            })
            .unzip();
        SourceStatus {
            link,
            step: server.map_or(step, |s| s.step.max(step)),
            period,
            last_cycle: server.and_then(|s| s.last_cycle),
            ends,
            dropped: 0,
            listed,
        }
    }
}

/// `d` rounded up to a tenth of a second (a countdown that reads well and changes ten times a
/// second at most).
fn tenths(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().div_ceil(100).try_into().unwrap_or(u64::MAX) * 100)
}

/// What the network tasks share with the viewer.
#[derive(Debug)]
struct Shared {
    url: String,
    options: RemoteOptions,
    /// Every table ever listed, by index; only grows.
    slots: Mutex<Vec<Arc<Slot>>>,
    /// The link and how many slots there are, for the viewer to read and tests to wait on.
    state: watch::Sender<State>,
    /// The newest step seen in this session (`Relaxed`: a number to show, nothing depends on
    /// it).
    step: AtomicU64,
    /// Steps seen in updates and when, over the last [`PERIOD_WINDOW`], oldest first.
    steps: Mutex<VecDeque<(Instant, u64)>>,
    /// What the server's last `stats` said, in this session.
    server: Mutex<Option<ServerCycles>>,
}

/// The server's cycle figures, from its `stats` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ServerCycles {
    period: Duration,
    last_cycle: Option<Duration>,
    step: u64,
}

impl ServerCycles {
    /// The figures of a `stats` result, if it has a period.
    fn parse(stats: &serde_json::Value) -> Option<Self> {
        let period = Duration::from_millis(stats.get("period_ms")?.as_u64()?);
        let last_cycle = stats
            .get("last_cycle_us")
            .and_then(serde_json::Value::as_u64)
            .map(Duration::from_micros);
        let step = stats
            .get("step")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        Some(Self {
            period,
            last_cycle,
            step,
        })
    }
}

/// What changes as the network tasks go: the link, how many tables were ever listed, and how
/// many of them the server's last listing no longer had (dropped).
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) link: LinkState,
    pub(crate) tables: usize,
    pub(crate) unlisted: usize,
}

/// The connection as the supervisor sees it.
#[derive(Debug, Clone)]
pub(crate) enum LinkState {
    Connecting,
    Connected,
    Disconnected {
        reason: String,
        /// The next attempt, or `None` while it runs.
        retry_at: Option<Instant>,
    },
}

/// One table: how the viewer lists it, its channel, and the rows it took.
#[derive(Debug)]
struct Slot {
    index: usize,
    info: TableInfo,
    tx: mpsc::Sender<DataEvent>,
    /// Taken by [`DataSource::subscribe`].
    rx: Mutex<Option<mpsc::Receiver<DataEvent>>>,
    /// Rows the table's end position moved over while connected, or a keyed table's rows
    /// modified and added (`Relaxed`: a counter).
    taken: AtomicU64,
    /// Whether the server's last listing had it (`Relaxed`: a flag to show).
    listed: AtomicBool,
}

impl Shared {
    fn set_link(&self, link: LinkState) {
        self.state.send_modify(|s| s.link = link);
    }

    /// Marks the slots of tables the server no longer lists (dropped) and those it lists
    /// again.
    fn mark_listed(&self, listed: &[RemoteTable]) {
        let mut gone = 0;
        for s in self.slots.lock().iter() {
            let there = listed.iter().any(|t| t.name == s.info.name);
            s.listed.store(there, Ordering::Relaxed);
            gone += usize::from(!there);
        }
        self.state.send_if_modified(|s| {
            let changed = s.unlisted != gone;
            s.unlisted = gone;
            changed
        });
    }

    /// A new session starts: steps restart (the server may be a new process).
    fn new_session(&self) {
        self.step.store(0, Ordering::Relaxed);
        self.steps.lock().clear();
        *self.server.lock() = None;
    }

    /// Records a step seen in an update.
    fn observe_step(&self, step: u64) {
        self.step.fetch_max(step, Ordering::Relaxed);
        let now = Instant::now();
        let mut steps = self.steps.lock();
        if steps.back().is_some_and(|&(_, s)| s >= step) {
            return;
        }
        steps.push_back((now, step));
        while steps.len() > 2 && steps.front().is_some_and(|&(t, _)| now - t > PERIOD_WINDOW) {
            steps.pop_front();
        }
    }

    /// The slot of a listed table, created the first time; `false` if the table changed
    /// schema or kind since the viewer first listed it.
    fn slot_for(&self, table: &RemoteTable) -> (Arc<Slot>, bool) {
        let mut slots = self.slots.lock();
        if let Some(s) = slots.iter().find(|s| s.info.name == table.name) {
            let same = s.info.kind == table.kind && s.info.schema.fields() == table.schema.fields();
            return (s.clone(), same);
        }
        let (tx, rx) = mpsc::channel(self.options.queue.max(1));
        let slot = Arc::new(Slot {
            index: slots.len(),
            info: TableInfo {
                name: table.name.clone(),
                kind: table.kind,
                capacity: match table.kind {
                    TableKind::Ring { capacity } => Some(capacity),
                    _ => table.capacity.and_then(|c| usize::try_from(c).ok()),
                },
                schema: table.schema.clone(),
                // By name on the wire; a name not in the schema is left out.
                key: table
                    .key
                    .iter()
                    .filter_map(|k| table.schema.index_of(k).ok())
                    .collect(),
            },
            tx,
            rx: Mutex::new(Some(rx)),
            taken: AtomicU64::new(0),
            listed: AtomicBool::new(true),
        });
        slots.push(slot.clone());
        let n = slots.len();
        drop(slots);
        self.state.send_modify(|s| s.tables = n);
        (slot, true)
    }
}

/// Connects, runs sessions, and waits out the backoff between them, forever.
async fn supervise(shared: Arc<Shared>) {
    let options = &shared.options;
    let mut backoff = options.min_backoff;
    loop {
        let mut connected = false;
        let reason = session(&shared, &mut connected).await;
        if connected {
            backoff = options.min_backoff;
        }
        shared.set_link(LinkState::Disconnected {
            reason: reason.clone(),
            retry_at: Some(Instant::now() + backoff),
        });
        tokio::time::sleep(backoff).await;
        shared.set_link(LinkState::Disconnected {
            reason,
            retry_at: None,
        });
        backoff = backoff.saturating_mul(2).min(options.max_backoff);
    }
}

/// One connection: list, subscribe, poll, until the connection is lost. Returns why.
async fn session(shared: &Arc<Shared>, connected: &mut bool) -> String {
    let options = &shared.options;
    let mut client = match timeout(
        options.timeout,
        connect(&shared.url, options.token.as_deref(), options.tls.as_ref()),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(reason)) => return reason,
        Err(_) => return format!("no answer in {:?}", options.timeout),
    };
    let listed = match list(&mut client, options.timeout).await {
        Ok(l) => l,
        Err(reason) => return reason,
    };
    shared.new_session();
    *connected = true;
    poll_stats(shared, &mut client).await;
    // Tables with a forwarder in this session, or that failed in it.
    let mut started = HashSet::new();
    let mut forwarders = JoinSet::new();
    start_forwarders(shared, &client, &listed, &mut started, &mut forwarders);
    shared.mark_listed(&listed);
    shared.set_link(LinkState::Connected);
    let mut poll = tokio::time::interval(options.poll);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    poll.tick().await;
    loop {
        tokio::select! {
            _ = poll.tick() => match list(&mut client, options.timeout).await {
                Ok(listed) => {
                    start_forwarders(shared, &client, &listed, &mut started, &mut forwarders);
                    shared.mark_listed(&listed);
                    poll_stats(shared, &mut client).await;
                }
                Err(reason) => return format!("connection lost ({reason})"),
            },
            Some(done) = forwarders.join_next(), if !forwarders.is_empty() => match done {
                // The table failed (its stream was told) or the viewer stopped reading it.
                Ok(Ok(())) => {}
                Ok(Err(reason)) => return format!("connection lost ({reason})"),
                Err(e) => return format!("internal error: a table's stream task ended: {e}"),
            },
        }
    }
}

/// Asks the server for its `stats`; a server without them (or that does not answer in time)
/// leaves the figures unknown.
async fn poll_stats(shared: &Shared, client: &mut Client) {
    let stats = timeout(shared.options.timeout, client.stats()).await;
    *shared.server.lock() = match stats {
        Ok(Ok(v)) => ServerCycles::parse(&v),
        _ => None,
    };
}

/// Starts a forwarder for each listed table that has none in this session yet.
fn start_forwarders(
    shared: &Arc<Shared>,
    client: &Client,
    listed: &[RemoteTable],
    started: &mut HashSet<usize>,
    forwarders: &mut JoinSet<Result<(), String>>,
) {
    for table in listed {
        let (slot, same) = shared.slot_for(table);
        if !started.insert(slot.index) {
            continue;
        }
        if same {
            forwarders.spawn(forward(client.clone(), slot, shared.clone()));
        } else {
            let why = format!(
                "{} changed on the server ({}, other columns or kind); restart the viewer",
                table.name, table.kind
            );
            // Best effort: a full queue means the viewer is far behind on a table it will
            // never get more of anyway.
            let _ = slot.tx.try_send(DataEvent::Failed(why));
        }
    }
}

/// Connects, over TLS if `tls` is given, with the token if any.
async fn connect(
    url: &str,
    token: Option<&str>,
    tls: Option<&ClientTls>,
) -> Result<Client, String> {
    let connected = match tls {
        Some(tls) => Client::connect_tls(url, tls).await,
        None => Client::connect(url).await,
    };
    let client = match connected {
        Ok(c) => c,
        Err(e) => return Err(connect_reason(url, &e).await),
    };
    match token {
        Some(t) => client.with_token(t).map_err(|e| e.to_string()),
        None => Ok(client),
    }
}

/// Why connecting failed, in a few words. The library's message ends in tonic's opaque
/// "transport error" (the cause is in its source chain, which it drops), so a plain TCP
/// connection tells what the network says.
async fn connect_reason(url: &str, e: &Error) -> String {
    if let (Error::Remote { kind, .. }, Ok(addr)) = (e, authority(url)) {
        if *kind == RemoteErrorKind::Unavailable {
            let probe = timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await;
            if let Ok(Err(io)) = probe {
                return format!("cannot connect: {}", lowercase_first(&io.to_string()));
            }
        }
    }
    reason(e)
}

/// Lists the tables, within `limit`.
async fn list(client: &mut Client, limit: Duration) -> Result<Vec<RemoteTable>, String> {
    match timeout(limit, client.list()).await {
        Ok(Ok(tables)) => Ok(tables),
        Ok(Err(e)) => Err(reason(&e)),
        Err(_) => Err(format!("no answer in {limit:?}")),
    }
}

/// A library error as a status-line reason.
fn reason(e: &Error) -> String {
    match e {
        Error::Remote { kind, message, .. } => match kind {
            RemoteErrorKind::Unavailable | RemoteErrorKind::Other => message.clone(),
            kind => format!("{kind}: {message}"),
        },
        e => e.to_string(),
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The `host:port` of a `grpc://host:port` or `http://host:port` URL.
///
/// # Errors
///
/// For any other URL.
fn authority(url: &str) -> Result<&str> {
    let Some(rest) = ["grpc://", "http://", "grpc+tls://", "https://"]
        .iter()
        .find_map(|p| url.strip_prefix(p))
    else {
        bail!("{url:?}: expected grpc://host:port or grpc+tls://host:port");
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
        bail!("{url:?}: expected grpc://host:port");
    }
    Ok(authority)
}

/// Streams one table into its slot's channel until the stream ends. `Err` if the connection
/// is lost, `Ok` if the table failed (the viewer is told) or the viewer stopped reading.
async fn forward(mut client: Client, slot: Arc<Slot>, shared: Arc<Shared>) -> Result<(), String> {
    let sub = match client.subscribe(&slot.info.name).await {
        Ok(sub) => sub,
        Err(e) => return table_or_link(&mut client, &slot, &shared, reason(&e)).await,
    };
    let mut f = Forwarder {
        sub,
        held: None,
        snapshots: 0,
        first_step: None,
        last_step: None,
        last_end: None,
    };
    loop {
        let next = match f.held.take() {
            Some(Ahead::Item(item)) => Some(item),
            Some(Ahead::End) => None,
            None => f.sub.next().await,
        };
        let message = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => return table_or_link(&mut client, &slot, &shared, reason(&e)).await,
            None => {
                let why = "the server ended the stream".to_owned();
                return table_or_link(&mut client, &slot, &shared, why).await;
            }
        };
        let event = f.event(message, &slot, &shared);
        let failed = matches!(event, DataEvent::Failed(_));
        if slot.tx.send(event).await.is_err() || failed {
            return Ok(()); // the viewer is gone, or was told
        }
    }
}

/// After a table's stream failed for `why`: if the server still answers, the table failed
/// (its stream is told, `Ok`); if not, the connection is lost (`Err`).
async fn table_or_link(
    client: &mut Client,
    slot: &Slot,
    shared: &Shared,
    why: String,
) -> Result<(), String> {
    match list(client, shared.options.timeout).await {
        Ok(tables) => {
            let why = if tables.iter().any(|t| t.name == slot.info.name) {
                why
            } else {
                "the table is no longer on the server".to_owned()
            };
            let _ = slot.tx.send(DataEvent::Failed(why)).await;
            Ok(())
        }
        // The stream's error says more about what happened than the listing's.
        Err(_) => Err(why),
    }
}

/// What a stream's `next()` returned, read ahead.
enum Ahead {
    Item(tickertable::Result<RemoteMessage>),
    End,
}

/// What a forwarder remembers between messages.
struct Forwarder {
    sub: RemoteSubscription,
    /// What `next()` returned while merging a step, not handled yet.
    held: Option<Ahead>,
    /// Resets seen in this subscription.
    snapshots: u64,
    /// The step of the first snapshot while its messages may still come: they move the end
    /// over rows that were there before the viewer came, which do not count as rows in.
    first_step: Option<Step>,
    last_step: Option<Step>,
    /// The end position after the last message.
    last_end: Option<u64>,
}

impl Forwarder {
    /// The event for `first`, a message the subscription applied to its mirror, and for the
    /// messages of its step that have already arrived (the mirror applied them too): the
    /// mirror after them, and what they changed. Counts the rows and the step.
    fn event(&mut self, first: RemoteMessage, slot: &Slot, shared: &Shared) -> DataEvent {
        let reset = first.meta.reset;
        let step = first.meta.step;
        let mut change = Change::of_message(first.meta, first.batch, first.replaced);
        let mut mirror = self.sub.mirror().cloned();
        // Merge the rest of the step if it is already here (`next` is cancel-safe: it only
        // awaits the next message, then applies it without awaiting).
        while let Some(next) = self.sub.next().now_or_never() {
            match next {
                Some(Ok(m)) if change.continues(&m.meta) => {
                    let more = Change::of_message(m.meta, m.batch, m.replaced);
                    if let Err(why) = change.merge(more) {
                        return DataEvent::Failed(format!("step {step}: {why}"));
                    }
                    mirror = self.sub.mirror().cloned();
                }
                Some(item) => {
                    self.held = Some(Ahead::Item(item));
                    break;
                }
                None => {
                    self.held = Some(Ahead::End);
                    break;
                }
            }
        }
        let Some(mirror) = mirror else {
            // `next` applies every message it returns to the mirror, which it then has.
            return DataEvent::Failed("a message without the stream's schema".to_owned());
        };
        let end = mirror.rows().end;
        let mut counted = true;
        let mut written = None;
        let event = if reset {
            self.snapshots += 1;
            self.first_step = (self.snapshots == 1).then_some(step);
            if self.snapshots == 1 {
                DataEvent::Snapshot(mirror)
            } else {
                // The steps in between: at most this many updates were missed.
                let missed = self
                    .last_step
                    .map_or(0, |s| step.as_u64().saturating_sub(s.as_u64() + 1));
                DataEvent::Lagged { missed, mirror }
            }
        } else {
            if self.first_step == Some(step) {
                counted = false;
            } else {
                self.first_step = None;
                shared.observe_step(step.as_u64());
            }
            written = Some(change.rows_written());
            DataEvent::Update {
                mirror,
                change: Box::new(change),
            }
        };
        if slot.info.is_keyed() {
            // Its end is its size: count the rows each update wrote instead.
            if let (true, Some(n)) = (counted, written) {
                slot.taken.fetch_add(n, Ordering::Relaxed);
            }
        } else if let Some(last) = self.last_end.filter(|_| counted) {
            // The first snapshot only sets where counting starts.
            slot.taken
                .fetch_add(end.saturating_sub(last), Ordering::Relaxed);
        }
        self.last_end = Some(end);
        self.last_step = Some(step);
        shared.step.fetch_max(step.as_u64(), Ordering::Relaxed);
        event
    }
}

#[cfg(test)]
mod tests;
