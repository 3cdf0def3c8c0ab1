//! The W3C Trace Context (`traceparent`, `tracestate`) of the call being served, so that one
//! trace runs from the agent through this server into IVCAP.
//!
//! The server reads it from the request (`_meta`, else the HTTP headers) and runs the call in
//! [`scope`]; the platform backend adds [`current`] to every IVCAP request it sends. The
//! context is a tokio task-local: work a call spawns onto another task does not see it unless
//! that task is started inside a `scope` of its own (today a call's IVCAP requests all run on
//! the call's task). This server records no spans of its own, so it passes the context on
//! unchanged (W3C Trace Context §3.2: a participant that does not trace forwards it as is).

use std::future::Future;

/// Longest `tracestate` passed on (the W3C recommendation is to propagate at least 512).
const MAX_TRACESTATE: usize = 512;

/// A valid `traceparent` and, with it, the `tracestate` that came along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: String,
    tracestate: Option<String>,
}

impl TraceContext {
    /// `None` unless `traceparent` is a version-00 value with a non-zero trace and parent id
    /// (an invalid one is ignored, as the specification says); a `tracestate` that is too
    /// long or not a printable header value is dropped.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let traceparent = traceparent.trim();
        let parts: Vec<&str> = traceparent.split('-').collect();
        let [version, trace_id, parent_id, flags] = parts.as_slice() else { return None };
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
        let valid = *version == "00"
            && hex(trace_id, 32)
            && nonzero(trace_id)
            && hex(parent_id, 16)
            && nonzero(parent_id)
            && hex(flags, 2);
        if !valid {
            return None;
        }
        let tracestate = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE && s.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .map(str::to_string);
        Some(TraceContext { traceparent: traceparent.to_string(), tracestate })
    }

    /// The 32 hex digits that name the trace.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }
}

tokio::task_local! {
    static CURRENT: Option<TraceContext>;
}

/// Runs `call` with `context` as the current trace context.
pub async fn scope<F: Future>(context: Option<TraceContext>, call: F) -> F::Output {
    CURRENT.scope(context, call).await
}

/// The trace context of the call this task is serving, if it came with one.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn valid_contexts_are_kept_and_invalid_ones_ignored() {
        let ctx = TraceContext::parse(GOOD, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!((ctx.trace_id(), ctx.tracestate()), ("0af7651916cd43dd8448eb211c80319c", Some("congo=t61rcWkgMzE")));
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad}");
        }
        assert_eq!(TraceContext::parse(GOOD, Some(&"a=b,".repeat(200))).unwrap().tracestate(), None);
        assert_eq!(TraceContext::parse(GOOD, Some("a=b\n")).unwrap().tracestate(), Some("a=b"));
        assert_eq!(TraceContext::parse(GOOD, Some("a=\u{7}")).unwrap().tracestate(), None);
    }

    #[tokio::test]
    async fn the_context_is_current_inside_its_scope_only() {
        let ctx = TraceContext::parse(GOOD, None);
        assert_eq!(scope(ctx.clone(), async { current() }).await, ctx);
        assert_eq!(current(), None);
    }
}
