//! The App: all the viewer's state, changed only by [`App::update`] with an [`Action`]. Keys
//! become actions in one function, [`App::map_key`]. Views read the App and never change it;
//! [`App::prepare`] formats what the next frame shows, outside of drawing.
//!
//! Every table has a [`Mirror`], the copy its source's last event brought (so opening one is
//! instant and the list's counts are exact); the open table also has a [`TableState`]. The
//! App never applies an update to a mirror: the source did (see `source`).

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tickertable::{Mirror, Step};

use crate::action::Action;
use crate::filter::Filter;
use crate::source::{DataEvent, Link, SourceStatus, TableInfo};
use crate::stats::Activity;
use crate::table_state::{FilterState, TableState, SORT_ROWS};
use crate::view;

/// How long a status message stays.
const MESSAGE_TTL: Duration = Duration::from_secs(5);
/// How long the status line mentions the last lag.
const LAG_TTL: Duration = Duration::from_secs(10);

/// A popup or a full-body view over the table screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overlay {
    None,
    Help,
    Detail,
    Chart,
}

/// What the prompt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PromptKind {
    Search,
    Filter,
}

/// The line being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prompt {
    pub(crate) kind: PromptKind,
    pub(crate) text: String,
}

/// A transient status message.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) text: String,
    pub(crate) error: bool,
    pub(crate) at: Instant,
}

/// One table: what it is, its rows, its activity.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) info: TableInfo,
    pub(crate) mirror: Mirror,
    pub(crate) activity: Activity,
    /// Updates received.
    pub(crate) updates: u64,
    /// Rows the shown end position moved over, or a keyed table's rows modified and added
    /// (not while the table is paused, not those missed in a lag).
    pub(crate) shown: u64,
    /// A keyed table's rows modified and added by the updates received: its rows in when the
    /// source does not count them.
    pub(crate) written: u64,
    /// Set when the stream ended or failed.
    pub(crate) ended: Option<String>,
    /// Whether the source still lists the table: a dropped one leaves the table list (its
    /// entry stays, so indexes stay put).
    pub(crate) listed: bool,
    /// The step of the last snapshot, until an update of a later step: updates of that step
    /// are the rest of the snapshot (a remote source sends a large one in parts).
    reset_step: Option<Step>,
}

impl Entry {
    fn new(info: TableInfo) -> Self {
        Self {
            mirror: Mirror::new(info.schema.clone()),
            activity: Activity::default(),
            updates: 0,
            shown: 0,
            written: 0,
            ended: None,
            listed: true,
            reset_step: None,
            info,
        }
    }
}

/// The viewer's state.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) source: String,
    pub(crate) tables: Vec<Entry>,
    pub(crate) list_selected: usize,
    pub(crate) view: Option<TableState>,
    pub(crate) overlay: Overlay,
    pub(crate) prompt: Option<Prompt>,
    pub(crate) message: Option<Message>,
    pub(crate) status: SourceStatus,
    /// Rates over all tables.
    pub(crate) total: Activity,
    /// Rows refused by table limits, per second.
    pub(crate) dropped: Activity,
    /// Times a stream lagged, updates missed, and when it last did.
    pub(crate) lags: u64,
    pub(crate) missed: u64,
    pub(crate) last_lag: Option<Instant>,
    pub(crate) size: (u16, u16),
    pub(crate) quit: bool,
    /// The time of the last tick (or data event).
    pub(crate) now: Instant,
    dirty: bool,
}

impl App {
    /// An App over `tables`, for a terminal of `size`.
    pub(crate) fn new(
        source: String,
        tables: Vec<TableInfo>,
        size: (u16, u16),
        now: Instant,
    ) -> Self {
        Self {
            source,
            tables: tables.into_iter().map(Entry::new).collect(),
            list_selected: 0,
            view: None,
            overlay: Overlay::None,
            prompt: None,
            message: None,
            status: SourceStatus::default(),
            total: Activity::default(),
            dropped: Activity::default(),
            lags: 0,
            missed: 0,
            last_lag: None,
            size,
            quit: false,
            now,
            dirty: true,
        }
    }

    /// The action for a key, given the screen, overlay and prompt. The only key mapping.
    pub(crate) fn map_key(&self, key: KeyEvent) -> Option<Action> {
        use KeyCode::{
            Backspace, Char, Down, End, Enter, Esc, Home, Left, PageDown, PageUp, Right, Up,
        };
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == Char('c') {
            return Some(Action::Quit);
        }
        if self.prompt.is_some() {
            return match key.code {
                Esc => Some(Action::InputCancel),
                Enter => Some(Action::InputSubmit),
                Backspace => Some(Action::InputBackspace),
                Char(c) if !ctrl => Some(Action::Input(c)),
                _ => None,
            };
        }
        let in_table = self.view.is_some();
        let action = match (self.overlay, key.code) {
            (_, Char('q')) => Action::Quit,
            (Overlay::Help, Esc | Char('?') | Enter | Backspace)
            | (Overlay::Detail, Esc | Enter | Backspace)
            | (Overlay::Chart, Esc | Backspace | Char('c')) => Action::Back,
            (Overlay::Help, _) => return None,
            (Overlay::Detail | Overlay::Chart, Left | Char('h')) => Action::Left,
            (Overlay::Detail | Overlay::Chart, Right | Char('l')) => Action::Right,
            (_, Char('?')) => Action::Help,
            (_, Up | Char('k')) => Action::Up,
            (_, Down | Char('j')) => Action::Down,
            (_, Char('b' | 'u')) if ctrl => Action::PageUp,
            (_, Char('f' | 'd')) if ctrl => Action::PageDown,
            (_, PageUp) => Action::PageUp,
            (_, PageDown | Char(' ')) => Action::PageDown,
            (_, Home | Char('g')) => Action::Top,
            (_, End | Char('G')) => Action::Bottom,
            (Overlay::None, Enter | Right | Char('l')) if !in_table => Action::Open,
            (Overlay::None, _) if !in_table => return None,
            (_, Char('p')) => Action::Pause,
            (Overlay::Detail, _) => return None,
            (_, Esc | Backspace) => Action::Back,
            (Overlay::Chart, _) => return None,
            (_, Left | Char('h')) => Action::Left,
            (_, Right | Char('l')) => Action::Right,
            (_, Enter) => Action::Detail,
            (_, Char('c')) => Action::Chart,
            (_, Char('/')) => Action::Search,
            (_, Char('n')) => Action::NextMatch,
            (_, Char('N')) => Action::PrevMatch,
            (_, Char('f')) => Action::Filter,
            (_, Char('s')) => Action::Sort,
            _ => return None,
        };
        Some(action)
    }

    /// Applies one action. The only place the App's state changes.
    pub(crate) fn update(&mut self, action: Action) {
        match action {
            Action::Data { table, event, at } => return self.on_data(table, event, at),
            Action::Tick { at, status } => return self.on_tick(at, status),
            Action::Quit => self.quit = true,
            Action::Back => self.back(),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-self.page()),
            Action::PageDown => self.move_by(self.page()),
            Action::Top => self.with_view(TableState::go_top, |app| {
                app.list_selected = app.listed().first().copied().unwrap_or(0);
            }),
            Action::Bottom => self.with_view(TableState::go_bottom, |app| {
                app.list_selected = app.listed().last().copied().unwrap_or(0);
            }),
            Action::Left => self.move_col(-1),
            Action::Right => self.move_col(1),
            Action::Open => self.open(self.list_selected),
            Action::Detail => {
                if self.view.is_some() {
                    self.overlay = Overlay::Detail;
                    self.touch_view();
                }
            }
            Action::Chart => self.open_chart(),
            Action::Help => {
                self.overlay = if self.overlay == Overlay::Help {
                    Overlay::None
                } else {
                    Overlay::Help
                };
            }
            Action::Pause => self.with_view(TableState::toggle_pause, |_| {}),
            Action::Sort => self.sort(),
            Action::Search => self.start_prompt(PromptKind::Search),
            Action::Filter => self.start_prompt(PromptKind::Filter),
            Action::NextMatch => self.find(true),
            Action::PrevMatch => self.find(false),
            Action::Input(c) => {
                if let Some(p) = &mut self.prompt {
                    p.text.push(c);
                }
            }
            Action::InputBackspace => {
                if let Some(p) = &mut self.prompt {
                    p.text.pop();
                }
            }
            Action::InputSubmit => self.submit(),
            Action::InputCancel => self.prompt = None,
            Action::Resize(w, h) => {
                self.size = (w, h);
                let height = view::body_height(h);
                self.with_view(|v, m| v.set_height(height, m), |_| {});
            }
            Action::Ended { table } => {
                if let Some(e) = self.tables.get_mut(table) {
                    e.ended.get_or_insert_with(|| "ended".to_owned());
                }
            }
            Action::AddTable(info) => {
                if !self.tables.iter().any(|e| e.info.name == info.name) {
                    self.tables.push(Entry::new(info));
                }
            }
        }
        self.dirty = true;
    }

    /// Whether the next frame tick must redraw.
    pub(crate) fn needs_redraw(&self) -> bool {
        self.dirty
            || self
                .view
                .as_ref()
                .is_some_and(|v| v.is_animating() || v.is_stale())
    }

    /// Formats what the next frame shows (outside of drawing, which only reads).
    pub(crate) fn prepare(&mut self, now: Instant) {
        let detail = self.overlay == Overlay::Detail;
        if let Some(v) = &mut self.view {
            if let Some(e) = self.tables.get(v.table()) {
                v.prepare(&e.mirror, now, detail);
            }
        }
    }

    /// A frame was drawn.
    pub(crate) fn drawn(&mut self) {
        self.dirty = false;
    }

    /// The open table's entry.
    pub(crate) fn open_entry(&self) -> Option<&Entry> {
        self.view.as_ref().and_then(|v| self.tables.get(v.table()))
    }

    /// Whether the status line should mention a lag.
    pub(crate) fn recently_lagged(&self) -> bool {
        self.last_lag
            .is_some_and(|t| self.now.saturating_duration_since(t) < LAG_TTL)
    }

    fn page(&self) -> isize {
        isize::try_from(view::body_height(self.size.1).max(1)).unwrap_or(1)
    }

    fn with_view(
        &mut self,
        f: impl FnOnce(&mut TableState, &Mirror),
        list: impl FnOnce(&mut Self),
    ) {
        if self.view.is_none() {
            list(self);
        } else if let Some(v) = &mut self.view {
            if let Some(e) = self.tables.get(v.table()) {
                f(v, &e.mirror);
            }
        }
    }

    fn touch_view(&mut self) {
        if let Some(v) = &mut self.view {
            v.touch();
        }
    }

    /// The indexes of the tables the list shows (those still listed), in order.
    pub(crate) fn listed(&self) -> Vec<usize> {
        (0..self.tables.len())
            .filter(|&i| self.tables[i].listed)
            .collect()
    }

    fn move_by(&mut self, delta: isize) {
        self.with_view(
            |v, m| v.move_by(delta, m),
            |app| {
                let listed = app.listed();
                let at = listed
                    .iter()
                    .position(|&i| i >= app.list_selected)
                    .unwrap_or(listed.len().saturating_sub(1));
                let to = at
                    .saturating_add_signed(delta)
                    .min(listed.len().saturating_sub(1));
                app.list_selected = listed.get(to).copied().unwrap_or(0);
            },
        );
    }

    /// Keeps the list's selection on a listed table: the next one down, else the last.
    fn clamp_selection(&mut self) {
        let listed = self.listed();
        if !listed.contains(&self.list_selected) {
            self.list_selected = listed
                .iter()
                .copied()
                .find(|&i| i > self.list_selected)
                .or_else(|| listed.last().copied())
                .unwrap_or(0);
        }
    }

    fn move_col(&mut self, delta: isize) {
        self.with_view(|v, m| v.move_col(delta, m), |_| {});
    }

    fn back(&mut self) {
        if self.overlay != Overlay::None {
            self.overlay = Overlay::None;
            if let Some(v) = &mut self.view {
                v.close_chart();
            }
        } else if self.view.is_some() {
            self.view = None;
        }
    }

    /// Opens table `index`, if it is listed.
    pub(crate) fn open(&mut self, index: usize) {
        let height = view::body_height(self.size.1);
        if let Some(e) = self.tables.get(index).filter(|e| e.listed) {
            self.list_selected = index;
            self.view = Some(TableState::new(index, &e.info, &e.mirror, height, self.now));
            self.overlay = Overlay::None;
        }
    }

    fn open_chart(&mut self) {
        let mut result = Ok(());
        self.with_view(|v, m| result = v.open_chart(m), |_| {});
        match result {
            Ok(()) if self.view.is_some() => self.overlay = Overlay::Chart,
            Ok(()) => {}
            Err(e) => self.say(e, true),
        }
    }

    fn sort(&mut self) {
        self.with_view(TableState::cycle_sort, |_| {});
        let text = self.view.as_ref().map(|v| match v.sort() {
            Some(s) => format!(
                "sorted by {} {} (the newest {} rows)",
                v.schema().field(s.column).name(),
                if s.descending {
                    "descending"
                } else {
                    "ascending"
                },
                tickertable_tools::demo::fmt_count(SORT_ROWS as u64)
            ),
            None => "sort off".to_owned(),
        });
        if let Some(t) = text {
            self.say(t, false);
        }
    }

    fn start_prompt(&mut self, kind: PromptKind) {
        let Some(v) = &self.view else {
            return;
        };
        let text = match kind {
            PromptKind::Search => String::new(),
            PromptKind::Filter => v
                .filter()
                .map(|f| f.filter().to_string())
                .unwrap_or_default(),
        };
        self.prompt = Some(Prompt { kind, text });
    }

    fn submit(&mut self) {
        let Some(prompt) = self.prompt.take() else {
            return;
        };
        let text = prompt.text.trim().to_owned();
        match prompt.kind {
            PromptKind::Search => {
                if text.is_empty() {
                    return;
                }
                if let Some(v) = &mut self.view {
                    v.set_search(text);
                }
                self.find(true);
            }
            PromptKind::Filter => {
                let mut outcome: Result<String, String> = Ok(String::new());
                self.with_view(
                    |v, m| {
                        if text.is_empty() {
                            v.set_filter(None, m);
                            outcome = Ok("filter off".to_owned());
                            return;
                        }
                        match Filter::parse(&text, v.schema()) {
                            Ok(f) => {
                                let shown = f.to_string();
                                v.set_filter(Some(f), m);
                                let n = v.len(m);
                                outcome = match v.filter().and_then(FilterState::error) {
                                    Some(e) => Err(format!("filter {shown}: {e}")),
                                    None => Ok(format!(
                                        "filter {shown}: {} rows match",
                                        tickertable_tools::demo::fmt_count(n as u64)
                                    )),
                                };
                            }
                            Err(e) => outcome = Err(format!("filter: {e}")),
                        }
                    },
                    |_| {},
                );
                match outcome {
                    Ok(t) => self.say(t, false),
                    Err(e) => self.say(e, true),
                }
            }
        }
    }

    fn find(&mut self, forward: bool) {
        let mut outcome = Ok(0);
        self.with_view(|v, m| outcome = v.find(m, forward), |_| {});
        match outcome {
            Ok(pos) => {
                let q = self
                    .view
                    .as_ref()
                    .and_then(|v| v.search().map(str::to_owned))
                    .unwrap_or_default();
                self.say(format!("{q:?}: row #{pos}"), false);
            }
            Err(e) => self.say(e, true),
        }
    }

    fn say(&mut self, text: String, error: bool) {
        self.message = Some(Message {
            text,
            error,
            at: self.now,
        });
    }

    fn on_data(&mut self, table: usize, event: DataEvent, at: Instant) {
        let Some(entry) = self.tables.get_mut(table) else {
            return;
        };
        let open = self.view.as_mut().filter(|v| v.table() == table);
        let is_open = open.is_some();
        match event {
            DataEvent::Snapshot(mirror) => {
                // A fresh snapshot (a remote source resubscribed): the stream is live again.
                entry.ended = None;
                entry.reset_step = Some(mirror.step());
                entry.mirror = mirror;
                if let Some(v) = open {
                    v.on_reset(&entry.mirror);
                }
            }
            DataEvent::Lagged { missed, mirror } => {
                entry.reset_step = Some(mirror.step());
                entry.mirror = mirror;
                self.lags += 1;
                self.missed += missed;
                self.last_lag = Some(at);
                if let Some(v) = open {
                    v.on_reset(&entry.mirror);
                }
            }
            DataEvent::Update { mirror, change } if entry.reset_step == Some(change.step) => {
                // The rest of the snapshot: rows that were there, not new ones.
                entry.mirror = mirror;
                if let Some(v) = open {
                    v.on_reset(&entry.mirror);
                }
            }
            DataEvent::Update { mirror, change } => {
                entry.reset_step = None;
                let anchor = open.as_ref().map(|v| v.anchor(&entry.mirror));
                let old_end = entry.mirror.rows().end;
                // A remote step may come in several parts: count it once.
                if change.step != entry.mirror.step() {
                    entry.updates += 1;
                }
                let keyed = entry.info.is_keyed();
                if keyed {
                    entry.written += change.rows_written();
                }
                entry.mirror = mirror;
                if !open.as_ref().is_some_and(|v| v.is_paused()) {
                    entry.shown += if keyed {
                        change.rows_written()
                    } else {
                        // The end moved past every row the cycle took, those a ring evicted
                        // at once included: the view is up to date with all of them.
                        entry.mirror.rows().end.saturating_sub(old_end)
                    };
                }
                if let (Some(v), Some(a)) = (open, anchor) {
                    v.on_update(&entry.mirror, &change, a, at);
                }
            }
            DataEvent::Failed(e) => entry.ended = Some(format!("failed: {e}")),
        }
        if is_open || self.view.is_none() {
            self.dirty = true;
        }
    }

    fn on_tick(&mut self, at: Instant, status: SourceStatus) {
        self.now = at;
        let (mut ins, mut shown, mut updates) = (0, 0, 0);
        let mut relisted = false;
        for (i, e) in self.tables.iter_mut().enumerate() {
            let listed = status.listed.get(i).copied().unwrap_or(true);
            relisted |= listed != e.listed;
            e.listed = listed;
            let end = match status.ends.get(i).copied().flatten() {
                Some(n) => n,
                None if e.info.is_keyed() => e.written,
                None => e.mirror.rows().end,
            };
            e.activity.sample(at, end, e.shown, e.updates);
            ins += end;
            shown += e.shown;
            updates += e.updates;
        }
        if relisted {
            self.clamp_selection();
            self.dirty = true;
        }
        self.total.sample(at, ins, shown, updates);
        self.dropped.sample(at, status.dropped, 0, 0);
        if status != self.status {
            if matches!(self.status.link, Link::Disconnected { .. })
                && status.link == Link::Connected
            {
                self.say(format!("reconnected to {}", self.source), false);
            }
            self.status = status;
            self.dirty = true;
        }
        if self
            .message
            .as_ref()
            .is_some_and(|m| at.saturating_duration_since(m.at) >= MESSAGE_TTL)
        {
            self.message = None;
            self.dirty = true;
        }
        if let Some(v) = &mut self.view {
            v.purge_flashes(at);
        }
    }
}

#[cfg(test)]
mod tests;
