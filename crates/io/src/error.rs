//! Fatal adapter errors (bad rows are not errors: see [`crate::badrows`]).

/// An error that stops a replay; its text names the file and the place.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// A file could not be opened or created.
    #[error("{path}: {source}")]
    Open {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The header lacks a required column, or there is no header.
    #[error("{file}: {message}")]
    Header {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing failed part-way.
    #[error("{file}:{line}: {message}")]
    Read {
        /// The file.
        file: String,
        /// Line reached.
        line: u64,
        /// The cause.
        message: String,
    },
    /// Writing an output failed.
    #[error("{file}: write failed: {source}")]
    Write {
        /// The file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
}
