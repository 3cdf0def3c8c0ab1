//! Service tools: IVCAP services that publish a request schema, offered as MCP tools of their
//! own (`--service-tools`). The set is chosen by the server's configuration, never by a
//! conversation, so `tools/list` is the same for every connection (2026-07-28).
//!
//! Loading never delays `initialize`: [`ServiceTools::start`] reads the services in the
//! background, then every `--service-tools-refresh` seconds (every second for a local store's
//! `services/` folder, which is cheap to look at), and announces a change — only a real
//! one — with `notifications/tools/list_changed` to every session and `subscriptions/listen`
//! stream. A call runs the same submit path as `submit_job` (see `crate::tools::jobs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rmcp::model::{JsonObject, MetaObject, Tool, ToolAnnotations};
use rmcp::service::SubscriptionContext;
use rmcp::{Peer, RoleServer};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::backend::{Backend, ToolService, like_match};
use crate::config::ServiceToolsConfig;
use crate::schema::normalise;
use crate::urn::is_urn;

/// Every service tool's name starts with this, so none can be mistaken for a built-in tool.
pub const PREFIX: &str = "svc_";
/// Longest tool name: `^[a-z][a-z0-9_]{0,47}$` is valid for every major client and LLM API.
const MAX_NAME: usize = 48;
/// Longest part of a service's own description kept in its tool's description.
const DESCRIPTION_CHARS: usize = 400;
/// The key of a service tool's `_meta` that names its service.
pub const META_KEY: &str = "io.ivcap/service";
/// Longest a `list_changed` notification may take to one session before it is given up.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);
/// How soon a failed load is tried again (sooner than the refresh, if that is longer).
const RETRY_FAILED_LOAD: Duration = Duration::from_secs(30);

/// One way of naming services in `--service-tools`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Urn(String),
    Name(String),
    /// A name pattern, `%` matching any run of characters, case-insensitive.
    Pattern(String),
}

impl Selector {
    fn parse(raw: &str) -> Self {
        let raw = raw.trim();
        if is_urn(raw) {
            Selector::Urn(raw.to_string())
        } else if raw.contains('%') {
            Selector::Pattern(raw.to_string())
        } else {
            Selector::Name(raw.to_string())
        }
    }

    fn matches(&self, s: &ToolService) -> bool {
        match self {
            Selector::Urn(urn) => s.id == *urn,
            Selector::Name(name) => s.name == *name,
            Selector::Pattern(p) => like_match(p, &s.name, true),
        }
    }

    fn text(&self) -> &str {
        match self {
            Selector::Urn(t) | Selector::Name(t) | Selector::Pattern(t) => t,
        }
    }
}

/// The services `config` selects from `all` (sorted by name), at most `config.max`, and a
/// warning for each selector that matched nothing and for the services left out.
fn select(config: &ServiceToolsConfig, all: &[ToolService]) -> (Vec<ToolService>, Vec<String>) {
    let selectors: Vec<Selector> =
        config.selection.iter().filter(|s| !s.trim().is_empty()).map(|s| Selector::parse(s)).collect();
    let mut warnings = Vec::new();
    for selector in &selectors {
        if !all.iter().any(|s| selector.matches(s)) {
            warnings.push(format!(
                "--service-tools: '{}' matches no service with a request schema (ai-tool aspect or local fn_schema)",
                selector.text()
            ));
        }
    }
    let mut chosen: Vec<ToolService> = all.iter().filter(|s| selectors.iter().any(|x| x.matches(s))).cloned().collect();
    if chosen.len() > config.max {
        let left_out: Vec<String> = chosen[config.max..].iter().map(|s| format!("{} ({})", s.name, s.id)).collect();
        warnings.push(format!(
            "--service-tools selects {} services but --service-tools-max is {}; left out: {}",
            chosen.len(),
            config.max,
            left_out.join(", ")
        ));
        chosen.truncate(config.max);
    }
    (chosen, warnings)
}

/// `svc_` and the service name in lower case, other characters as `_`, cut to fit.
fn base_name(service_name: &str) -> String {
    let mut slug = String::new();
    for c in service_name.chars() {
        let c = if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' };
        if !(c == '_' && (slug.is_empty() || slug.ends_with('_'))) {
            slug.push(c);
        }
    }
    let slug = slug.trim_end_matches('_');
    let slug = if slug.is_empty() { "service" } else { slug };
    format!("{PREFIX}{slug}")
}

/// The first eight hex digits of the MD5 of `urn`: the same on every start.
fn urn_tag(urn: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(urn.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect()
}

fn cut_name(name: &str, max: usize) -> String {
    name.chars().take(max).collect::<String>().trim_end_matches('_').to_string()
}

/// A unique tool name for each service, in the same order. A name two services would share
/// (or that a cut makes shared) gets `_` and a tag from the URN on all of them, so no name
/// depends on which service happened to be listed first.
fn tool_names(services: &[ToolService]) -> Vec<String> {
    let bases: Vec<String> = services.iter().map(|s| cut_name(&base_name(&s.name), MAX_NAME)).collect();
    bases
        .iter()
        .zip(services)
        .map(|(base, s)| {
            if bases.iter().filter(|b| *b == base).count() == 1 {
                base.clone()
            } else {
                let tag = urn_tag(&s.id);
                format!("{}_{tag}", cut_name(base, MAX_NAME - tag.len() - 1))
            }
        })
        .collect()
}

/// Longest property key, and the characters it may have: what every LLM API accepts (the
/// Anthropic API refuses a whole request when one tool has a key outside `^[a-zA-Z0-9_.-]{1,64}$`).
const MAX_KEY: usize = 64;

fn portable_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// The input schema as `get_service` shows it, made an object schema with `properties`,
/// published so every client accepts it: `$schema`, which the server fills in from its
/// `default` or `const`, is left out, and every other property key outside the portable
/// pattern is renamed (at every depth). The [`KeyMap`] maps the names back on a call.
fn input_schema(request_schema: &Value) -> (JsonObject, KeyMap) {
    let mut schema = crate::tools::as_object(normalise(request_schema));
    schema.entry("type").or_insert_with(|| json!("object"));
    schema.entry("properties").or_insert_with(|| json!({}));
    let server_fills = |p: &Value| p.get("default").or_else(|| p.get("const")).is_some_and(Value::is_string);
    if let Some(Value::Object(props)) = schema.get_mut("properties")
        && props.get("$schema").is_some_and(server_fills)
    {
        props.remove("$schema");
        if let Some(Value::Array(required)) = schema.get_mut("required") {
            required.retain(|r| r != "$schema");
        }
    }
    let mut schema = Value::Object(schema);
    let keys = KeyMap::publish(&mut schema);
    (crate::tools::as_object(schema), keys)
}

/// How a service tool's published property keys map back to the service's own, per object
/// in the schema (empty when no key had to change).
#[derive(Debug, Clone, Default, PartialEq)]
struct KeyMap {
    /// Published key → the service's key, for the keys that were renamed.
    renamed: BTreeMap<String, String>,
    /// The maps of the properties' own schemas, by published key.
    properties: BTreeMap<String, KeyMap>,
    /// The map of an array's items.
    items: Option<Box<KeyMap>>,
}

impl KeyMap {
    /// Renames the keys of `schema` that are not portable (and its `required` entries), at
    /// every depth; the variants of `anyOf`/`oneOf`/`allOf` share one map.
    fn publish(schema: &mut Value) -> KeyMap {
        let mut map = KeyMap::default();
        let Value::Object(node) = schema else { return map };
        if let Some(Value::Object(props)) = node.get_mut("properties") {
            // A rename never takes a key the service has itself.
            let own: Vec<String> = props.keys().filter(|k| is_portable(k)).cloned().collect();
            let mut published = serde_json::Map::new();
            for (key, mut sub) in std::mem::take(props) {
                let name = portable_key(&key, |n| own.iter().any(|o| o == n) || published.contains_key(n));
                let child = KeyMap::publish(&mut sub);
                if !child.is_empty() {
                    map.properties.insert(name.clone(), child);
                }
                if name != key {
                    map.renamed.insert(name.clone(), key);
                }
                published.insert(name, sub);
            }
            *props = published;
        }
        if !map.renamed.is_empty()
            && let Some(Value::Array(required)) = node.get_mut("required")
        {
            for r in required.iter_mut() {
                if let Some((name, _)) = map.renamed.iter().find(|(_, original)| Some(original.as_str()) == r.as_str())
                {
                    *r = Value::String(name.clone());
                }
            }
        }
        if let Some(items) = node.get_mut("items") {
            let child = KeyMap::publish(items);
            if !child.is_empty() {
                map.items = Some(Box::new(child));
            }
        }
        for combinator in ["anyOf", "oneOf", "allOf"] {
            if let Some(Value::Array(variants)) = node.get_mut(combinator) {
                for variant in variants {
                    map.merge(KeyMap::publish(variant));
                }
            }
        }
        map
    }

    fn is_empty(&self) -> bool {
        self.renamed.is_empty() && self.properties.is_empty() && self.items.is_none()
    }

    fn merge(&mut self, other: KeyMap) {
        self.renamed.extend(other.renamed);
        for (key, child) in other.properties {
            self.properties.entry(key).or_default().merge(child);
        }
        if let Some(items) = other.items {
            self.items.get_or_insert_with(Default::default).merge(*items);
        }
    }

    /// `value` with the published keys turned back into the service's own.
    fn restore(&self, value: Value) -> Value {
        if self.is_empty() {
            return value;
        }
        match value {
            Value::Object(object) => Value::Object(
                object
                    .into_iter()
                    .map(|(key, v)| {
                        let v = match self.properties.get(&key) {
                            Some(child) => child.restore(v),
                            None => v,
                        };
                        (self.renamed.get(&key).cloned().unwrap_or(key), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => match &self.items {
                Some(child) => Value::Array(items.into_iter().map(|i| child.restore(i)).collect()),
                None => Value::Array(items),
            },
            other => other,
        }
    }
}

fn is_portable(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY && key.chars().all(portable_key_char)
}

/// `key` if it is portable; else its characters outside the pattern as `_`, cut to
/// [`MAX_KEY`], with a number added when `taken` already has that name.
fn portable_key(key: &str, taken: impl Fn(&str) -> bool) -> String {
    if is_portable(key) {
        return key.to_string();
    }
    let base: String = key.chars().map(|c| if portable_key_char(c) { c } else { '_' }).take(MAX_KEY).collect();
    let base = if base.is_empty() { "_".to_string() } else { base };
    let mut name = base.clone();
    let mut n = 2;
    while taken(&name) {
        let suffix = format!("_{n}");
        name = format!("{}{suffix}", base.chars().take(MAX_KEY - suffix.len()).collect::<String>());
        n += 1;
    }
    name
}

fn description(s: &ToolService) -> String {
    let own = s.description.as_deref().map(str::trim).filter(|d| !d.is_empty()).unwrap_or("(no description)");
    format!(
        "{}\nRuns IVCAP service {} ({}) as a job and waits for its result, as submit_job does.",
        crate::text::truncate(own, DESCRIPTION_CHARS),
        s.name,
        s.id
    )
}

/// A service tool: its definition and the service it runs.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ServiceTool {
    pub(super) tool: Tool,
    pub(super) service_id: String,
    /// How the published argument names map back to the service's.
    keys: KeyMap,
}

impl ServiceTool {
    /// The service's name and URN, as a confirmation names them.
    pub(super) fn service_name(&self) -> String {
        match &self.tool.title {
            Some(name) => format!("{name} ({})", self.service_id),
            None => self.service_id.clone(),
        }
    }

    /// A call's arguments as the service's request: the published names mapped back.
    pub(super) fn request(&self, arguments: JsonObject) -> Value {
        self.keys.restore(Value::Object(arguments))
    }
}

fn build(services: &[ToolService], output_schema: Option<&Arc<JsonObject>>) -> BTreeMap<String, ServiceTool> {
    tool_names(services)
        .into_iter()
        .zip(services)
        .map(|(name, s)| {
            let (schema, keys) = input_schema(&s.request_schema);
            let mut tool = Tool::new(name.clone(), description(s), Arc::new(schema)).with_annotations(
                ToolAnnotations::with_title(s.name.clone())
                    .read_only(false)
                    .destructive(false)
                    .idempotent(false)
                    .open_world(true),
            );
            tool.output_schema = output_schema.cloned();
            let mut meta = JsonObject::new();
            meta.insert(META_KEY.into(), json!({"id": s.id, "name": s.name}));
            let mut tool = tool.with_title(s.name.clone()).with_meta(MetaObject(meta));
            // A service tool answers as submit_job does, so the job view shows it.
            super::apps::link(&mut tool, "job");
            (name, ServiceTool { tool, service_id: s.id.clone(), keys })
        })
        .collect()
}

/// The service tools of one server, shared by all its sessions.
pub(super) struct ServiceTools {
    config: ServiceToolsConfig,
    /// `submit_job`'s output schema: a service tool answers with the same job view.
    output_schema: Option<Arc<JsonObject>>,
    current: RwLock<Arc<BTreeMap<String, ServiceTool>>>,
    /// Fires on every real change, for `subscriptions/listen` streams.
    changed: broadcast::Sender<()>,
    /// Sessions (handshake era) to send `notifications/tools/list_changed` to.
    peers: Mutex<Vec<Peer<RoleServer>>>,
    started: std::sync::Once,
    /// Set by the first successful load (whose warnings are always logged).
    loaded: std::sync::atomic::AtomicBool,
}

impl ServiceTools {
    pub(super) fn new(config: ServiceToolsConfig, output_schema: Option<Arc<JsonObject>>) -> Self {
        ServiceTools {
            config,
            output_schema,
            current: RwLock::new(Arc::new(BTreeMap::new())),
            changed: broadcast::channel(16).0,
            peers: Mutex::new(Vec::new()),
            started: std::sync::Once::new(),
            loaded: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(super) fn config(&self) -> &ServiceToolsConfig {
        &self.config
    }

    fn snapshot(&self) -> Arc<BTreeMap<String, ServiceTool>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The service tools now, sorted by name.
    pub(super) fn list(&self) -> Vec<Tool> {
        self.snapshot().values().map(|t| t.tool.clone()).collect()
    }

    pub(super) fn get(&self, name: &str) -> Option<ServiceTool> {
        self.snapshot().get(name).cloned()
    }

    /// Sends `notifications/tools/list_changed` on a `subscriptions/listen` stream (when it
    /// asked for them) on every change, until the client closes it.
    pub(super) async fn announce_on(&self, cx: &SubscriptionContext) {
        if cx.accepted().tools_list_changed != Some(true) {
            return;
        }
        let mut changes = self.changed.subscribe();
        loop {
            tokio::select! {
                () = cx.cancelled() => return,
                change = changes.recv() => {
                    if matches!(change, Err(broadcast::error::RecvError::Closed)) {
                        return;
                    }
                    if let Err(e) = cx.sink().notify_tool_list_changed().await {
                        tracing::debug!(error = %e, "cannot send tools/list_changed on a subscription");
                    }
                }
            }
        }
    }

    /// Remembers a session to tell about changes.
    pub(super) fn add_peer(&self, peer: Peer<RoleServer>) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.retain(|p| !p.is_transport_closed());
        peers.push(peer);
    }

    /// Reads the services once; true when the set of tools changed.
    async fn refresh(&self, backend: &dyn Backend) -> crate::error::Result<bool> {
        let all = backend.tool_services().await?;
        let (chosen, warnings) = select(&self.config, &all);
        let next = build(&chosen, self.output_schema.as_ref());
        let first = !self.loaded.swap(true, std::sync::atomic::Ordering::SeqCst);
        let changed = *self.snapshot() != next;
        if first || changed {
            for w in &warnings {
                tracing::warn!("{w}");
            }
        }
        if !changed {
            return Ok(false);
        }
        tracing::info!(count = next.len(), "service tools changed");
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(true)
    }

    /// Tells every listener the list changed. The lock is released before any send, and a
    /// session that does not take the notification in time is skipped, so one stuck client
    /// cannot hold up the others.
    async fn announce(&self) {
        let _ = self.changed.send(());
        let peers: Vec<Peer<RoleServer>> = {
            let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
            peers.retain(|p| !p.is_transport_closed());
            peers.clone()
        };
        let sends = peers.iter().map(|peer| async move {
            match tokio::time::timeout(NOTIFY_TIMEOUT, peer.notify_tool_list_changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "cannot send tools/list_changed"),
                Err(_) => tracing::debug!("tools/list_changed timed out for one session"),
            }
        });
        futures::future::join_all(sends).await;
    }

    /// Starts the background loader (once; later calls do nothing). It ends once nothing
    /// else holds these service tools (an `--oauth` user's, dropped when the user is idle).
    pub(super) fn start(self: &Arc<Self>, backend: Arc<dyn Backend>) {
        self.started.call_once(|| {
            let me = Arc::downgrade(self);
            tokio::spawn(async move { Self::run(me, backend).await });
        });
    }

    async fn run(me: std::sync::Weak<Self>, backend: Arc<dyn Backend>) {
        loop {
            let Some(this) = me.upgrade() else { return };
            let period = backend.tool_services_watch().map_or(this.config.refresh, |w| w.min(this.config.refresh));
            let wait = match this.refresh(&*backend).await {
                Ok(true) => {
                    this.announce().await;
                    period
                }
                Ok(false) => period,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot load the service tools; trying again later");
                    period.min(RETRY_FAILED_LOAD)
                }
            };
            drop(this);
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(id: &str, name: &str) -> ToolService {
        ToolService { id: id.into(), name: name.into(), description: None, request_schema: json!({"type": "object"}) }
    }

    fn config(selection: &[&str], max: usize) -> ServiceToolsConfig {
        ServiceToolsConfig {
            selection: selection.iter().map(|s| s.to_string()).collect(),
            max,
            refresh: Duration::from_secs(300),
        }
    }

    fn valid(name: &str) -> bool {
        let mut chars = name.chars();
        name.len() <= MAX_NAME
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    #[test]
    fn names_are_valid_prefixed_and_unique() {
        let services = [
            svc("urn:ivcap:service:1", "Fire risk for Lot2"),
            svc("urn:ivcap:service:2", "fire-risk for lot2"),
            svc("urn:ivcap:service:3", "42"),
            svc("urn:ivcap:service:4", "ünïcode ✓"),
            svc("urn:ivcap:service:5", &"very long name ".repeat(10)),
        ];
        let names = tool_names(&services);
        assert!(names.iter().all(|n| valid(n) && n.starts_with(PREFIX)), "{names:?}");
        assert_eq!(names.iter().collect::<std::collections::BTreeSet<_>>().len(), names.len(), "{names:?}");
        assert!(names[0].starts_with("svc_fire_risk_for_lot2_") && names[1].starts_with("svc_fire_risk_for_lot2_"));
        assert_eq!(names[2], "svc_42");
        // The same services give the same names on every start.
        assert_eq!(names, tool_names(&services));
    }

    #[test]
    fn selection_by_name_urn_and_pattern_capped() {
        let all = [svc("urn:ivcap:service:a", "alpha"), svc("urn:ivcap:service:b", "beta"), svc("urn:x:y:c", "gamma")];
        let names = |sel: &[&str], max| {
            let (chosen, warnings) = select(&config(sel, max), &all);
            (chosen.into_iter().map(|s| s.name).collect::<Vec<_>>(), warnings)
        };
        assert_eq!(names(&["beta", "urn:x:y:c"], 32).0, ["beta", "gamma"]);
        assert_eq!(names(&["%A%"], 32).0, ["alpha", "beta", "gamma"]);
        let (chosen, warnings) = names(&["%", "nope"], 2);
        assert_eq!(chosen, ["alpha", "beta"]);
        assert!(warnings.iter().any(|w| w.contains("'nope'")), "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("gamma (urn:x:y:c)") && w.contains("--service-tools-max")));
    }

    #[test]
    fn schemas_become_portable_objects() {
        let (schema, keys) =
            input_schema(&json!({"$defs": {"M": {"type": "string"}}, "properties": {"m": {"$ref": "#/$defs/M"}}}));
        assert_eq!(Value::Object(schema), json!({"type": "object", "properties": {"m": {"type": "string"}}}));
        assert!(keys.is_empty());
    }

    #[test]
    fn the_schema_the_server_fills_is_left_out() {
        for filled in [json!({"type": "string", "default": "urn:s:1"}), json!({"type": "string", "const": "urn:s:1"})] {
            let (schema, _) = input_schema(&json!({
                "type": "object",
                "required": ["$schema", "msg"],
                "properties": {"$schema": filled, "msg": {"type": "string"}}
            }));
            assert_eq!(schema["properties"], json!({"msg": {"type": "string"}}));
            assert_eq!(schema["required"], json!(["msg"]));
        }
    }

    #[test]
    fn keys_outside_the_portable_pattern_are_renamed_at_every_depth_and_mapped_back() {
        let long = "k".repeat(70);
        let (schema, keys) = input_schema(&json!({
            "type": "object",
            "required": ["$schema", "a b"],
            "properties": {
                "$schema": {"type": "string"},
                "a b": {"type": "string"},
                "a_b": {"type": "string"},
                "nested": {"type": "object", "properties": {"x/y": {"type": "integer"}}},
                "list": {"type": "array", "items": {"type": "object", "properties": {"@id": {"type": "string"}}}},
                long.clone(): {"type": "boolean"}
            }
        }));
        let published: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert!(published.iter().all(|k| is_portable(k)), "{published:?}");
        assert_eq!(published.len(), 6, "{published:?}");
        assert_eq!(schema["properties"]["nested"]["properties"], json!({"x_y": {"type": "integer"}}));
        assert_eq!(schema["properties"]["list"]["items"]["properties"], json!({"_id": {"type": "string"}}));
        let renamed_ab = keys.renamed.iter().find(|(_, o)| o.as_str() == "a b").map(|(p, _)| p.clone()).unwrap();
        assert_ne!(renamed_ab, "a_b", "a rename never takes a key the service already has");
        assert_eq!(schema["required"], json!(["_schema", renamed_ab]));
        let call = json!({
            "_schema": "urn:s:1",
            renamed_ab.clone(): "spaced",
            "a_b": "plain",
            "nested": {"x_y": 1},
            "list": [{"_id": "i"}],
            "k".repeat(64): true
        });
        let tool_keys = ServiceTool {
            tool: Tool::new("svc_x", "x", Arc::new(JsonObject::new())),
            service_id: "urn:ivcap:service:x".into(),
            keys,
        };
        let request = tool_keys.request(call.as_object().unwrap().clone());
        assert_eq!(
            request,
            json!({
                "$schema": "urn:s:1",
                "a b": "spaced",
                "a_b": "plain",
                "nested": {"x/y": 1},
                "list": [{"@id": "i"}],
                long: true
            })
        );
    }
}
