//! Render tests (filled below).
