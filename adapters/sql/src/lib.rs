//! Generic SQL adapter (work in progress).
