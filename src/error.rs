//! The one error type of the library. Both backends produce it; tools turn it into an
//! `isError` result with [`Error::for_model`]. `Display` never contains a token, and
//! never a full URL with its query string.

/// Everything that can go wrong below the tool layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool argument failed validation. `name` is the argument, `message` says what is
    /// wrong and how to fix it.
    #[error("invalid argument '{name}': {message}")]
    InvalidArgument { name: String, message: String },

    /// The thing asked for does not exist (IVCAP 404, or a missing local file).
    #[error("no such {kind}: {id}")]
    NotFound { kind: &'static str, id: String },

    /// A name matched more than one thing.
    #[error("'{name}' matches more than one {kind}: {candidates}; pass the full URN instead")]
    Ambiguous { kind: &'static str, name: String, candidates: String },

    /// IVCAP answered 401 or 403.
    #[error("not authorised ({status}): check IVCAP_JWT / IVCAP_ACCESS_TOKEN, or log in again{detail}")]
    Unauthorised { status: u16, detail: String },

    /// The platform kept answering 429/502/503/504 (or could not be reached) after retries.
    #[error("platform busy or unreachable after {attempts} attempts ({last}); try again later")]
    Busy { attempts: u32, last: String },

    /// The platform rejected the request (400, 409, 415, 422, 424, 5xx …); `message` is the
    /// platform's own text.
    #[error("IVCAP refused the request ({status}): {message}")]
    Platform { status: u16, message: String },

    /// The HTTP exchange itself failed (connect, timeout, reset) and was not retried.
    #[error("could not reach IVCAP: {0}")]
    Transport(String),

    /// The platform answered something we could not understand.
    #[error("unexpected answer from IVCAP: {0}")]
    Protocol(String),

    /// A local store operation failed.
    #[error("local store: {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// The client cancelled the call before there was anything to report.
    #[error("cancelled: {0}")]
    Cancelled(String),

    /// Startup configuration is wrong; printed on stderr before exiting non-zero.
    #[error("{0}")]
    Config(String),
}

/// Library result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for an argument error.
    pub fn invalid(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument { name: name.into(), message: message.into() }
    }

    /// Wraps an I/O error with what we were doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// True for failures worth retrying on an idempotent request.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Platform { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            Error::Transport(_) => true,
            _ => false,
        }
    }

    /// The message an agent sees: what went wrong and the next call to make.
    pub fn for_model(&self) -> String {
        match self {
            Error::NotFound { kind, .. } => {
                let hint = match *kind {
                    "service" => "call list_services to find the right id or name",
                    "job" => "check the job URN; call list_jobs with its service",
                    "artifact" => "call list_artifacts to find the right id",
                    "aspect" => "call list_aspects to find the right id",
                    _ => "check the identifier",
                };
                format!("{self}; {hint}")
            }
            _ => self.to_string(),
        }
    }
}
