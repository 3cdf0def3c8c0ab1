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
    NotFound { kind: Missing, id: String },

    /// A name matched more than one thing.
    #[error("'{name}' matches more than one {kind}: {candidates}; pass the full URN instead")]
    Ambiguous { kind: Missing, name: String, candidates: String },

    /// IVCAP answered 401 or 403, or a login could not be had or renewed; `detail` says
    /// why and names the fix (never the token).
    #[error("not authorised ({status}): {detail}")]
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
    UnexpectedAnswer(String),

    /// A failure of this server, not of the request or the platform (a result that cannot
    /// be encoded, a background task that died).
    #[error("internal error in ivcap-mcp: {0}; please report it")]
    Internal(String),

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

/// What a [`Error::NotFound`] was looking for; each kind has its own next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Service,
    Job,
    Artifact,
    Aspect,
    /// The entity an aspect is about.
    Entity,
    /// A collection (no live definition aspect).
    Collection,
    /// Any other platform resource (a list, the search endpoint).
    Resource,
}

impl Missing {
    /// The next call to make.
    fn hint(self) -> &'static str {
        match self {
            Missing::Service => "call list_services to find the right id or name",
            Missing::Job => "check the job URN; call list_jobs with its service",
            Missing::Artifact => "call list_artifacts to find the right id",
            Missing::Aspect => "call list_aspects to find the right id",
            Missing::Entity => "check the entity URN",
            Missing::Collection => "call list_collections to find it, or create_collection to make it",
            Missing::Resource => "check the identifier; this IVCAP may not offer it",
        }
    }
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Missing::Service => "service",
            Missing::Job => "job",
            Missing::Artifact => "artifact",
            Missing::Aspect => "aspect",
            Missing::Entity => "entity",
            Missing::Collection => "collection",
            Missing::Resource => "resource",
        })
    }
}

/// HTTP statuses that mean "busy, try again later" (see [`Error::is_transient`]).
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 502 | 503 | 504)
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

    /// True for failures worth trying again where a repeat is safe (an idempotent request,
    /// a resumable upload chunk): the platform was busy (408, 429, 502, 503, 504) or the
    /// exchange failed on the way. The one list of what is transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Platform { status, .. } => is_transient_status(*status),
            Error::Transport(_) => true,
            _ => false,
        }
    }

    /// Shorthand for a missing thing.
    pub fn not_found(kind: Missing, id: impl Into<String>) -> Self {
        Error::NotFound { kind, id: id.into() }
    }

    /// The message an agent sees: what went wrong and the next call to make.
    pub fn for_model(&self) -> String {
        match self {
            Error::NotFound { kind, .. } => format!("{self}; {}", kind.hint()),
            _ => self.to_string(),
        }
    }
}
