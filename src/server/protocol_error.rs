//! The one mapping from a backend [`Error`] to a protocol error, for the requests that are not
//! tool calls (a tool's failure is an `isError` result instead: `tools::to_tool_error`).
//!
//! An unknown or malformed id is the caller's mistake: `resources/*` answer the spec's
//! resource-not-found (`-32002`; rmcp sends `-32602` to 2026-07-28 peers), everything else
//! invalid-params (`-32602`). Any other failure (the platform busy, not authorised …) is an
//! internal error. The message always reads `cannot <what the request did>: <what went wrong>`.

use rmcp::ErrorData as McpError;
use serde_json::json;

use crate::error::Error;

/// The protocol request a backend failure ended.
#[derive(Debug, Clone, Copy)]
pub(super) enum Request<'a> {
    /// `resources/read` or `resources/subscribe` of this URI.
    Read(&'a str),
    /// `tasks/get` or `tasks/cancel` of this task (a job URN).
    Task(&'a str),
    /// `resources/list`.
    ListResources,
    /// `completion/complete` of this argument.
    Complete(&'a str),
}

/// The protocol error for `e`, which ended `request`.
pub(super) fn protocol_error(request: Request<'_>, e: Error) -> McpError {
    let callers_mistake = matches!(e, Error::NotFound { .. } | Error::InvalidArgument { .. });
    let (done, data) = match request {
        Request::Read(uri) => (format!("cannot read {uri}"), Some(json!({ "uri": uri }))),
        Request::Task(id) if callers_mistake => {
            return McpError::invalid_params(
                format!(
                    "unknown task '{id}': no IVCAP job with this URN can be read; a taskId is the job URN \
                     (urn:ivcap:job:…) a tools/call answered with"
                ),
                Some(json!({ "taskId": id })),
            );
        }
        Request::Task(id) => (format!("cannot read task '{id}'"), Some(json!({ "taskId": id }))),
        Request::ListResources => ("cannot list resources".to_string(), None),
        Request::Complete(argument) => (format!("cannot complete '{argument}'"), None),
    };
    let message = format!("{done}: {}", e.for_model());
    match request {
        Request::Read(uri) if callers_mistake => not_found(uri, message),
        _ if callers_mistake => McpError::invalid_params(message, data),
        _ => {
            // The caller's mistakes are theirs to read; this one is the operator's.
            tracing::warn!(error = %message, "a protocol request failed");
            McpError::internal_error(message, data)
        }
    }
}

/// The spec's resource-not-found error, with the URI in `data`.
pub(super) fn not_found(uri: &str, message: impl Into<String>) -> McpError {
    McpError::resource_not_found(message.into(), Some(json!({ "uri": uri })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Missing;
    use rmcp::model::ErrorCode;

    #[test]
    fn the_callers_mistakes_and_server_failures_get_their_codes_and_one_text_form() {
        let unknown = || Error::not_found(Missing::Job, "urn:ivcap:job:1");
        let busy = || Error::Busy { attempts: 3, last: "503".into() };
        let read = protocol_error(Request::Read("urn:ivcap:job:1"), unknown());
        assert_eq!(read.code, ErrorCode::RESOURCE_NOT_FOUND);
        assert!(read.message.starts_with("cannot read urn:ivcap:job:1: "), "{}", read.message);
        let task = protocol_error(Request::Task("urn:ivcap:job:1"), unknown());
        assert_eq!(task.code, ErrorCode::INVALID_PARAMS);
        assert!(task.message.starts_with("unknown task 'urn:ivcap:job:1'"), "{}", task.message);
        for request in [Request::Read("u"), Request::Task("t"), Request::ListResources, Request::Complete("service")] {
            let e = protocol_error(request, busy());
            assert_eq!(e.code, ErrorCode::INTERNAL_ERROR, "{request:?}");
            assert!(e.message.starts_with("cannot ") && e.message.contains(": "), "{}", e.message);
        }
    }
}
