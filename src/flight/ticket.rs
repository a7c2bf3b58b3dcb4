//! Tickets: which table a `DoGet` reads, and how.
//!
//! A ticket is UTF-8 text, so any Flight client can also build one by hand:
//! `tickertable:snapshot:<table>` (the table at one step, then the stream ends) or
//! `tickertable:live:<table>` (the snapshot, then every update until the client goes away).

use std::fmt;

const PREFIX: &str = "tickertable:";

/// What a `DoGet` ticket asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketKind {
    /// The table at one step.
    Snapshot,
    /// The table's snapshot, then every update.
    Live,
}

/// A parsed `DoGet` ticket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlightTicket {
    /// The table's name.
    pub table: String,
    /// Snapshot or live.
    pub kind: TicketKind,
}

impl FlightTicket {
    /// A snapshot ticket for `table`.
    pub fn snapshot(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            kind: TicketKind::Snapshot,
        }
    }

    /// A live ticket for `table`.
    pub fn live(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            kind: TicketKind::Live,
        }
    }

    /// The ticket's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Parses a ticket's bytes; `None` if they are not a tickertable ticket.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let rest = text.strip_prefix(PREFIX)?;
        let (kind, table) = rest.split_once(':')?;
        let kind = match kind {
            "snapshot" => TicketKind::Snapshot,
            "live" => TicketKind::Live,
            _ => return None,
        };
        (!table.is_empty()).then(|| Self {
            table: table.to_owned(),
            kind,
        })
    }
}

impl fmt::Display for FlightTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            TicketKind::Snapshot => "snapshot",
            TicketKind::Live => "live",
        };
        write!(f, "{PREFIX}{kind}:{}", self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let t = FlightTicket::live("trades");
        assert_eq!(t.to_string(), "tickertable:live:trades");
        assert_eq!(FlightTicket::parse(&t.to_bytes()), Some(t));
    }

    #[test]
    fn names_with_colons_round_trip_and_junk_is_refused() {
        let t = FlightTicket::snapshot("a:b");
        assert_eq!(FlightTicket::parse(&t.to_bytes()), Some(t));
        for junk in [
            "",
            "tickertable:",
            "tickertable:live:",
            "other:live:x",
            "tickertable:x:y",
        ] {
            assert_eq!(FlightTicket::parse(junk.as_bytes()), None, "{junk:?}");
        }
    }
}
