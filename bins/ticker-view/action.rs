//! What the App can be asked to do: keys map to actions in `App::map_key`, and the event loop
//! turns data, ticks and resizes into actions too. `App::update` is the only place state changes.

use std::time::Instant;

use crate::source::{DataEvent, SourceStatus, TableInfo};

/// One state change of the App.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Leave the viewer.
    Quit,
    /// Close the overlay, or go back to the table list.
    Back,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    /// The first row (and leave follow-tail).
    Top,
    /// The last row (and follow the tail).
    Bottom,
    /// Open the selected table.
    Open,
    /// Show the selected row in full.
    Detail,
    /// A live chart of the selected column.
    Chart,
    /// The key help.
    Help,
    /// Freeze the table (updates keep arriving and are counted).
    Pause,
    /// Sort by the selected column: ascending, descending, off.
    Sort,
    /// Start typing a search.
    Search,
    /// Start typing a filter.
    Filter,
    /// The next search match.
    NextMatch,
    /// The previous search match.
    PrevMatch,
    /// A character typed into the prompt.
    Input(char),
    /// Delete the last character of the prompt.
    InputBackspace,
    /// Run what the prompt holds.
    InputSubmit,
    /// Close the prompt.
    InputCancel,
    /// The terminal's new size.
    Resize(u16, u16),
    /// The data tick: the source's status at `at`.
    Tick {
        at: Instant,
        status: SourceStatus,
    },
    /// An event of table `table`'s stream, received at `at`.
    Data {
        table: usize,
        event: DataEvent,
        at: Instant,
    },
    /// Table `table`'s stream ended.
    Ended {
        table: usize,
    },
    /// A table the source found after the start; it takes the next index.
    AddTable(TableInfo),
}
