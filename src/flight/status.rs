//! Errors across the wire: the one mapping from an [`Error`] to a gRPC status and back.
//!
//! The server sends each error as the gRPC code its [`ErrorCode`] implies
//! ([`ErrorCode::remote_kind`]) with the code itself in the `x-tickertable-code` header, so a
//! client rebuilds the same classification the server had ([`Error::Remote`] with the
//! server's `code`); a status from another Flight server, without the header, is classified
//! from its gRPC code. Messages are capped at [`MAX_STATUS_MESSAGE`] bytes: an error never
//! echoes a whole request back (a client's header limit would turn it into another error).

use tonic::{Code, Status};

use crate::error::{Error, ErrorCode, RemoteErrorKind};

/// The header carrying the server's [`ErrorCode`].
pub const CODE_HEADER: &str = "x-tickertable-code";
/// The most bytes of message a status carries.
pub const MAX_STATUS_MESSAGE: usize = 1024;

/// The status a server answers `e` with.
pub(crate) fn to_status(e: &Error) -> Status {
    let code = e.code();
    let grpc = match code.remote_kind() {
        RemoteErrorKind::InvalidArgument => Code::InvalidArgument,
        RemoteErrorKind::ResourceExhausted => Code::ResourceExhausted,
        RemoteErrorKind::FailedPrecondition => Code::FailedPrecondition,
        RemoteErrorKind::NotFound => Code::NotFound,
        RemoteErrorKind::AlreadyExists => Code::AlreadyExists,
        RemoteErrorKind::Unavailable => Code::Unavailable,
        RemoteErrorKind::Unauthenticated => Code::Unauthenticated,
        _ => Code::Internal,
    };
    with_code(Status::new(grpc, capped(e.to_string())), code)
}

/// A status of gRPC code `grpc` and tickertable code `code`, for refusals that are not an
/// [`Error`] of the engine (a bad descriptor, a stream limit).
pub(crate) fn status(grpc: Code, code: ErrorCode, message: impl Into<String>) -> Status {
    with_code(Status::new(grpc, capped(message.into())), code)
}

fn with_code(mut status: Status, code: ErrorCode) -> Status {
    if let Ok(v) = code.as_str().parse() {
        status.metadata_mut().insert(CODE_HEADER, v);
    }
    status
}

/// `message`, cut at a character boundary to at most [`MAX_STATUS_MESSAGE`] bytes.
pub(crate) fn capped(mut message: String) -> String {
    if message.len() > MAX_STATUS_MESSAGE {
        let mut end = MAX_STATUS_MESSAGE - 3;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

/// The error a client gets for a status.
pub(crate) fn from_status(status: &Status) -> Error {
    let kind = match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => RemoteErrorKind::Unauthenticated,
        Code::NotFound => RemoteErrorKind::NotFound,
        Code::InvalidArgument | Code::OutOfRange => RemoteErrorKind::InvalidArgument,
        Code::FailedPrecondition => RemoteErrorKind::FailedPrecondition,
        Code::ResourceExhausted => RemoteErrorKind::ResourceExhausted,
        Code::AlreadyExists => RemoteErrorKind::AlreadyExists,
        Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded | Code::Aborted => {
            RemoteErrorKind::Unavailable
        }
        // A status made on this side from a transport error (a broken connection, a refused
        // handshake, an HTTP/2 stream reset while the server stops) carries that error as its
        // source: the server could not be talked to. A status the server sent has none.
        Code::Unknown | Code::Internal if std::error::Error::source(status).is_some() => {
            RemoteErrorKind::Unavailable
        }
        _ => RemoteErrorKind::Other,
    };
    let code = status
        .metadata()
        .get(CODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(ErrorCode::parse)
        .unwrap_or(match kind {
            RemoteErrorKind::Unauthenticated => ErrorCode::Unauthenticated,
            RemoteErrorKind::NotFound => ErrorCode::TableMissing,
            RemoteErrorKind::InvalidArgument => ErrorCode::Schema,
            RemoteErrorKind::FailedPrecondition => ErrorCode::TableClosed,
            RemoteErrorKind::ResourceExhausted => ErrorCode::ResourceExhausted,
            RemoteErrorKind::AlreadyExists => ErrorCode::TableExists,
            RemoteErrorKind::Unavailable => ErrorCode::Unavailable,
            _ => ErrorCode::Other,
        });
    Error::Remote {
        kind,
        code,
        message: status.message().to_owned(),
    }
}

/// A transport failure: the server could not be reached, or did not answer in time.
pub(crate) fn unavailable(message: String) -> Error {
    Error::Remote {
        kind: RemoteErrorKind::Unavailable,
        code: ErrorCode::Unavailable,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let e = Error::MissingKeyColumn {
            table: "t".into(),
            column: "k".into(),
        };
        let back = from_status(&to_status(&e));
        assert_eq!(back.code(), ErrorCode::Schema);
        assert_eq!(back.code(), e.code(), "the same code locally and remotely");
    }

    #[test]
    fn every_code_survives_the_wire() {
        for code in ErrorCode::ALL {
            let s = status(Code::Internal, code, "x");
            let e = from_status(&s);
            assert_eq!(e.code(), code);
            assert_eq!(e.is_transient(), code.is_transient());
        }
    }

    #[test]
    fn staging_full_is_transient_across_the_wire() {
        let e = Error::StagingFull {
            table: "t".into(),
            staged: 1,
            limit: 1,
        };
        let s = to_status(&e);
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(from_status(&s).is_transient());
    }

    #[test]
    fn a_status_without_the_header_is_classified_by_its_grpc_code() {
        let e = from_status(&Status::not_found("x"));
        assert_eq!(e.code(), ErrorCode::TableMissing);
        assert!(from_status(&Status::unavailable("down")).is_transient());
    }

    #[test]
    fn a_local_transport_failure_is_unavailable_a_server_internal_error_is_not() {
        // A status the server sent arrives as a code and a message, without a source.
        assert!(!from_status(&Status::internal("h2 protocol error")).is_transient());
        let mut with_source = Status::internal("h2 protocol error");
        with_source.set_source(std::sync::Arc::new(std::io::Error::other("h2")));
        let e = from_status(&with_source);
        assert!(e.is_transient(), "{e}");
        assert_eq!(e.code(), ErrorCode::Unavailable);
    }

    #[test]
    fn long_messages_are_capped_at_a_char_boundary() {
        let long = "é".repeat(5000);
        let s = capped(long);
        assert!(s.len() <= MAX_STATUS_MESSAGE);
        assert!(s.ends_with("..."));
    }
}
