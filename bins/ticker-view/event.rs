//! Events: the one `tokio::select!` over the terminal, the tables' streams, the data tick and
//! the frame tick.
//!
//! The data tick (`--tick-rate`, default 10 Hz) polls the source's status and drives rates,
//! sparklines and fades; the frame tick (`--fps`, default 30) asks for a redraw, which happens
//! only if something changed. Data events arrive as fast as the engine makes them, bounded by
//! each subscription's queue: a viewer that falls behind lags and resynchronises.

use std::time::Duration;

use anyhow::{Context, Result};
use crossterm::event::{Event as TermEvent, EventStream, KeyEvent, KeyEventKind};
use futures_util::stream::{self, SelectAll};
use futures_util::StreamExt;
use tokio::time::{interval, Interval, MissedTickBehavior};

use crate::source::{DataEvent, DataStream};

/// One thing that happened.
#[derive(Debug)]
pub(crate) enum Event {
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal was resized.
    Resize(u16, u16),
    /// The data tick.
    Tick,
    /// The frame tick.
    Render,
    /// An event of table `.0`'s stream; `None` when the stream ended.
    Update(usize, Option<DataEvent>),
    /// SIGINT (outside raw mode) or the terminal closed.
    Quit,
}

type Tagged = stream::BoxStream<'static, (usize, Option<DataEvent>)>;

/// Table `index`'s events, then `(index, None)` when its stream ends.
fn tagged(index: usize, events: DataStream) -> Tagged {
    events
        .map(move |e| (index, Some(e)))
        .chain(stream::once(async move { (index, None) }))
        .boxed()
}

/// The merged sources of [`Event`]s.
pub(crate) struct Events {
    terminal: EventStream,
    data: SelectAll<Tagged>,
    tick: Interval,
    render: Interval,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// Events from the terminal, `streams` (one per table, in table order) and two timers.
    pub(crate) fn new(streams: Vec<DataStream>, tick: Duration, frame: Duration) -> Self {
        let data = stream::select_all(streams.into_iter().enumerate().map(|(i, s)| tagged(i, s)));
        let mut tick = interval(tick);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut render = interval(frame);
        render.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Self {
            terminal: EventStream::new(),
            data,
            tick,
            render,
        }
    }

    /// Adds the stream of table `index` (a table that appeared after the start).
    pub(crate) fn add(&mut self, index: usize, stream: DataStream) {
        self.data.push(tagged(index, stream));
    }

    /// The next event.
    ///
    /// # Errors
    ///
    /// If reading the terminal fails.
    pub(crate) async fn next(&mut self) -> Result<Event> {
        loop {
            let data_open = !self.data.is_empty();
            tokio::select! {
                term = self.terminal.next() => match term {
                    Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => {
                        return Ok(Event::Key(k));
                    }
                    Some(Ok(TermEvent::Resize(w, h))) => return Ok(Event::Resize(w, h)),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e).context("reading the terminal"),
                    None => return Ok(Event::Quit),
                },
                Some((i, e)) = self.data.next(), if data_open => return Ok(Event::Update(i, e)),
                _ = self.tick.tick() => return Ok(Event::Tick),
                _ = self.render.tick() => return Ok(Event::Render),
                r = tokio::signal::ctrl_c() => {
                    r.context("waiting for Ctrl-C")?;
                    return Ok(Event::Quit);
                }
            }
        }
    }
}
