//! Asking the person before a call runs (docs/guide.md, "Confirmations"): a yes/no confirmation
//! (`--confirm`, [`super::confirmations`]) or a form for a job's missing inputs
//! ([`super::forms`]), in either protocol era.
//!
//! - 2025-11-25: an `elicitation/create` request to the client in the middle of the call. It
//!   needs a session to carry the answer, so a `--stateless` server treats these clients as
//!   clients without elicitation.
//! - 2026-07-28: the call answers `input_required` with the question and a sealed
//!   `requestState`; the client asks the person and calls again with the answer. The state is
//!   an HMAC-sealed token ([`RequestStateCodec`]) bound to the caller (the `--oauth` user,
//!   else its `Authorization` header, where there is one), the session, the tool name and the
//!   exact arguments, valid for
//!   `--state-ttl`, and single-use within this process (replicas share the key, not the record
//!   of used states).
//!
//! Only clients that declared form elicitation are asked. Anything else gets the call run as
//! before, unless `--confirm-required` refuses the calls that would have been asked about.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmcp::RoleServer;
use rmcp::model::{
    BooleanSchema, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomNotification,
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema, InputRequest,
    InputRequests, InputRequiredResult, JsonObject, PrimitiveSchemaDefinition, ProtocolVersion, RequestStateCodec,
    SealOptions, ServerNotification,
};
use rmcp::service::ElicitationMode;
use rmcp::service::RequestContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::confirmations::{self, Change};
use super::forms;
use super::login::{ClientLogin, LoginTarget};
use super::service_tools::ServiceTool;
use crate::config::{ConfirmConfig, ConfirmLevel};
use crate::error::{Error, Result};
use crate::tools::ToolContext;

/// The key of the confirmation in `inputRequests` / `inputResponses`.
const CONFIRM_KEY: &str = "confirm";
/// The key of a form for missing inputs.
const FORM_KEY: &str = "inputs";
/// The key of a login (URL mode).
const LOGIN_KEY: &str = "login";
/// Mixed into every sealed state's associated data, so a token made for anything else never opens here.
const DOMAIN: &[u8] = b"ivcap-mcp/tools-call/v1";
/// Most used states remembered per process (each is forgotten when it expires anyway).
const MAX_SPENT: usize = 100_000;

const LOGIN_DECLINED: &str = "not done: the login was declined by the user; nothing was changed. Log in with \
                              `ivcap-mcp login --context <name>` (or accept the login when asked) and call again.";

const DECLINED: &str = "not done: declined by the user; nothing was changed. Do not try again unless the user asks \
                        for it.";

/// What the sealed state says was asked.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "asked", rename_all = "snake_case")]
enum Asked {
    Confirm,
    /// A form for these missing inputs (keys of the job input).
    Form {
        fields: Vec<String>,
    },
    /// A device login, held in this process under the state's nonce.
    Login,
}

impl Asked {
    /// Its key in `inputRequests` / `inputResponses`.
    fn key(&self) -> &'static str {
        match self {
            Asked::Confirm => CONFIRM_KEY,
            Asked::Form { .. } => FORM_KEY,
            Asked::Login => LOGIN_KEY,
        }
    }
}

/// A question for the person: the message, the form, and what it asks (sealed in a 2026-07-28 state).
struct Question {
    message: String,
    schema: ElicitationSchema,
    asked: Asked,
}

#[derive(Debug, Serialize, Deserialize)]
struct Sealed {
    /// Random; a state is accepted once per process.
    nonce: String,
    #[serde(flatten)]
    asked: Asked,
}

/// What follows a call that failed for want of a login.
pub(super) enum LoginStep {
    /// The person logged in: run the call again.
    Again,
    /// Answer with this instead (a 2026-07-28 question, or why the login did not happen).
    Answer(CallToolResponse),
}

/// What to do with a call.
pub(super) enum Gate {
    /// Run it (with form answers filled in, if any were asked).
    Go(Box<CallToolRequestParams>),
    /// Answer with this instead: a question (2026-07-28), or a refusal; nothing ran.
    Answer(CallToolResponse),
}

/// Why a client cannot be asked.
enum CannotAsk {
    NotDeclared,
    StatelessLegacy,
}

impl CannotAsk {
    fn why(&self) -> &'static str {
        match self {
            CannotAsk::NotDeclared => "this client did not declare the elicitation capability (form mode)",
            CannotAsk::StatelessLegacy => {
                "2025-11-25 elicitation needs a session and this server runs with --stateless (a 2026-07-28 client \
                 can be asked there)"
            }
        }
    }
}

/// Asks before calls, shared by every session of a server.
pub(super) struct Elicitation {
    level: ConfirmLevel,
    required: bool,
    codec: RequestStateCodec,
    ttl: Duration,
    /// The transport keeps no sessions: 2025-11-25 clients cannot be asked.
    stateless: bool,
    /// Nonces of the states already accepted, with when each may be forgotten (it has expired).
    spent: Mutex<HashMap<String, Instant>>,
    /// With `--context`: logging in from the client.
    login: Option<ClientLogin>,
}

impl Elicitation {
    pub(super) fn new(config: &ConfirmConfig, stateless: bool, login: Option<LoginTarget>) -> Result<Self> {
        let key: Vec<u8> = match &config.state_key {
            Some(key) => key.expose().as_bytes().to_vec(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        let codec = RequestStateCodec::try_new(key).map_err(|e| Error::Config(format!("--state-key: {e}")))?;
        Ok(Elicitation {
            level: config.level,
            required: config.required,
            codec,
            ttl: config.state_ttl,
            stateless,
            spent: Mutex::new(HashMap::new()),
            login: login.map(ClientLogin::new).transpose()?,
        })
    }

    /// A failed call may be a login a client can renew (`--context`).
    pub(super) fn logs_in(&self) -> bool {
        self.login.is_some()
    }

    /// Decides whether `request` runs: asks the person first where `--confirm` or a job's missing
    /// inputs call for it and the client can ask; checks the answer of a 2026-07-28 retry.
    /// `service_tool`: the service tool called, if it is one.
    pub(super) async fn gate(
        &self,
        tools: &ToolContext,
        service_tool: Option<&ServiceTool>,
        mut request: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Gate {
        let modern = context.protocol_version().is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        if let Some(state) = request.request_state.take() {
            let responses = request.input_responses.take().unwrap_or_default();
            let binding = binding(context, &request);
            return match self.open(&state, &binding) {
                Err(why) => refuse(&format!(
                    "not done: the requestState {why}; nothing was changed. Call {} again without requestState \
                     to be asked again",
                    request.name
                )),
                Ok(Sealed { nonce, asked: Asked::Login }) => {
                    let accepted = answer(responses.get(LOGIN_KEY)).is_some();
                    let started = self.login.as_ref().and_then(|l| l.take(&nonce).map(|s| (l, s)));
                    match (accepted, started) {
                        (false, _) => refuse(LOGIN_DECLINED),
                        (true, None) => refuse(&format!(
                            "not done: the login this answer is for is not under way here (it expired, or another \
                             server process started it); call {} again to start a new one",
                            request.name
                        )),
                        (true, Some((login, started))) => match login.finish(started).await {
                            Ok(()) => Gate::Go(Box::new(request)),
                            Err(e) => refuse(&format!("not done: the login did not complete: {}", e.for_model())),
                        },
                    }
                }
                Ok(Sealed { asked, .. }) => {
                    let content = answer(responses.get(asked.key()));
                    decide(asked, content, request, service_tool.is_some())
                }
            };
        }
        let can_ask = self.can_ask(modern, context);
        if can_ask.is_err() && !self.required {
            return Gate::Go(Box::new(request));
        }
        let args = request.arguments.clone().unwrap_or_default();
        if can_ask.is_ok()
            && let Some(form) = forms::missing(tools, service_tool, &request.name, &args).await
        {
            let question = Question {
                message: format!("{} Fill in what it still needs:", job_change(service_tool, &request.name, &args)),
                schema: form.schema,
                asked: Asked::Form { fields: form.fields },
            };
            return self.ask(modern, context, request, service_tool.is_some(), question).await;
        }
        let change = match service_tool {
            Some(tool) => {
                Some(Change::Write(confirmations::job_summary(&tool.service_name(), Some(&Value::Object(args)))))
            }
            None if self.level != ConfirmLevel::None && confirmations::may_ask(&request.name) => {
                confirmations::preview(tools, &request.name, &args).await
            }
            None => None,
        };
        let Some(summary) = change.and_then(|c| c.asked_at(self.level)) else { return Gate::Go(Box::new(request)) };
        match can_ask {
            Err(cannot) => refuse(&format!(
                "not done: this server asks the person before this call ({summary}) and runs with \
                 --confirm-required, but {}; nothing was changed. Use an MCP client that supports elicitation, or \
                 ask the server's operator to drop --confirm-required",
                cannot.why()
            )),
            Ok(()) => {
                let question = Question { message: summary, schema: confirm_schema(), asked: Asked::Confirm };
                self.ask(modern, context, request, service_tool.is_some(), question).await
            }
        }
    }

    /// After `request` failed: when the saved `--context` login is what failed and the client
    /// can open a URL, a device login — at once in a 2025-11-25 session (then the call runs
    /// again), or as a 2026-07-28 `input_required` answer. `None`: the failure stands (it names
    /// `ivcap-mcp login`).
    pub(super) async fn login_after_failure(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Option<LoginStep> {
        let login = self.login.as_ref()?;
        let modern = context.protocol_version().is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        let url_mode = if modern {
            context.client_capabilities().and_then(|c| c.elicitation).is_some_and(|e| e.url.is_some())
        } else {
            !self.stateless && context.peer.supported_elicitation_modes().contains(&ElicitationMode::Url)
        };
        if !url_mode || !login.needed().await {
            return None;
        }
        let failed = |e: Error| {
            Some(LoginStep::Answer(
                CallToolResult::error(vec![ContentBlock::text(format!(
                    "not done: the IVCAP login has expired and a new one could not be started: {}",
                    e.for_model()
                ))])
                .into(),
            ))
        };
        let started = match login.start().await {
            Ok(started) => started,
            Err(e) => return failed(e),
        };
        let message = started.message(login.context());
        let url = started.device.url_to_open().to_string();
        if modern {
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            if let Err(e) = login.hold(&nonce, started) {
                return failed(e);
            }
            let params =
                ElicitRequestParams::UrlElicitationParams { meta: None, message, url, elicitation_id: String::new() };
            let sealed = Sealed { nonce, asked: Asked::Login };
            return match self.seal_question(context, request, &sealed, params) {
                Gate::Answer(answer) => Some(LoginStep::Answer(answer)),
                Gate::Go(_) => None,
            };
        }
        let id = uuid::Uuid::new_v4().to_string();
        let Ok(parsed) = url::Url::parse(&url) else {
            return failed(Error::UnexpectedAnswer(format!("the login provider's address '{url}' is not a URL")));
        };
        let lifetime = ClientLogin::lifetime(&started);
        match context.peer.elicit_url_with_timeout(message, parsed, id.clone(), Some(lifetime)).await {
            Ok(ElicitationAction::Accept) => {}
            Ok(_) => {
                return Some(LoginStep::Answer(CallToolResult::error(vec![ContentBlock::text(LOGIN_DECLINED)]).into()));
            }
            Err(e) => return failed(Error::Internal(format!("the person could not be asked to log in: {e}"))),
        }
        if let Err(e) = login.finish(started).await {
            return failed(e);
        }
        let complete = CustomNotification::new(
            "notifications/elicitation/complete",
            Some(serde_json::json!({"elicitationId": id})),
        );
        if let Err(e) = context.peer.send_notification(ServerNotification::CustomNotification(complete)).await {
            tracing::debug!(error = %e, "cannot send notifications/elicitation/complete");
        }
        Some(LoginStep::Again)
    }

    /// Whether this client can be asked (form mode), and why not.
    fn can_ask(&self, modern: bool, context: &RequestContext<RoleServer>) -> std::result::Result<(), CannotAsk> {
        let form = if modern {
            context
                .client_capabilities()
                .and_then(|c| c.elicitation)
                .is_some_and(|e| e.form.is_some() || e.url.is_none())
        } else {
            if self.stateless {
                return Err(CannotAsk::StatelessLegacy);
            }
            context.peer.supported_elicitation_modes().contains(&ElicitationMode::Form)
        };
        if form { Ok(()) } else { Err(CannotAsk::NotDeclared) }
    }

    /// Asks `question`: at once in a 2025-11-25 session, or as an `input_required` answer with
    /// a sealed state in 2026-07-28.
    async fn ask(
        &self,
        modern: bool,
        context: &RequestContext<RoleServer>,
        request: CallToolRequestParams,
        service_tool: bool,
        question: Question,
    ) -> Gate {
        let Question { message, schema, asked } = question;
        let params = ElicitRequestParams::FormElicitationParams { meta: None, message, requested_schema: schema };
        if modern {
            let sealed = Sealed { nonce: uuid::Uuid::new_v4().simple().to_string(), asked };
            return self.seal_question(context, &request, &sealed, params);
        }
        let answer = match context.peer.create_elicitation_with_timeout(params, Some(self.ttl)).await {
            Ok(result) => result,
            Err(e) => {
                return refuse(&format!(
                    "not done: the person could not be asked ({e}); nothing was changed. Call {} again to be asked \
                     again",
                    request.name
                ));
            }
        };
        decide(asked, answer_of(&answer), request, service_tool)
    }

    /// The 2026-07-28 answer asking `params`, with `sealed` as its state, bound to `request`.
    fn seal_question(
        &self,
        context: &RequestContext<RoleServer>,
        request: &CallToolRequestParams,
        sealed: &Sealed,
        params: ElicitRequestParams,
    ) -> Gate {
        let binding = binding(context, request);
        let options = SealOptions::new().associated_data(&binding).ttl(self.ttl);
        match self.codec.seal_json_with(sealed, &options) {
            Ok(state) => {
                let mut requests = InputRequests::new();
                let key = sealed.asked.key().to_string();
                requests.insert(key, InputRequest::Elicitation(ElicitRequest::new(params)));
                Gate::Answer(InputRequiredResult::new(Some(requests), Some(state)).into())
            }
            Err(e) => refuse(&Error::Internal(format!("cannot seal the request state: {e}")).for_model()),
        }
    }

    /// The state's question, once: checks the seal (caller, tool, arguments), the expiry and
    /// that this process has not accepted it before.
    fn open(&self, state: &str, binding: &[u8]) -> std::result::Result<Sealed, &'static str> {
        let sealed: Sealed = self.codec.open_json_with(state, binding).map_err(|e| {
            tracing::info!(error = %e, "refused a requestState");
            match e {
                rmcp::model::RequestStateError::Expired => "has expired",
                _ => "is not valid for this call (changed, made for other arguments or by another server)",
            }
        })?;
        let now = Instant::now();
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        spent.retain(|_, forget_at| *forget_at > now);
        if spent.contains_key(&sealed.nonce) {
            return Err("was used already");
        }
        if spent.len() >= MAX_SPENT {
            return Err("cannot be checked now (too many answers in flight)");
        }
        spent.insert(sealed.nonce.clone(), now + self.ttl);
        Ok(sealed)
    }
}

/// What the person's answer (`content` when accepted) to `asked` means for `request`: a yes
/// runs it, a filled-in form runs it with the answers; anything else is a decline.
fn decide(asked: Asked, content: Option<JsonObject>, request: CallToolRequestParams, service_tool: bool) -> Gate {
    match (asked, content) {
        (Asked::Confirm, Some(content)) if content.get("confirm") == Some(&Value::Bool(true)) => {
            Gate::Go(Box::new(request))
        }
        (Asked::Form { fields }, Some(content)) => Gate::Go(Box::new(fill(request, service_tool, &fields, &content))),
        _ => refuse(DECLINED),
    }
}

/// The summary of a job submission, for a form's message.
fn job_change(service_tool: Option<&ServiceTool>, tool: &str, args: &JsonObject) -> String {
    match service_tool {
        Some(t) => format!("Run service {} as a job.", t.service_name()),
        None => {
            let service = args.get("service").and_then(Value::as_str).unwrap_or(tool);
            format!("Run service {service} as a job.")
        }
    }
}

/// What a sealed state is bound to: the caller — the `--oauth` user (issuer and subject, so
/// a token the client refreshed meanwhile still answers), else the `Authorization` header —
/// and the session where there is one (over HTTP), the tool and its exact arguments (keys
/// sorted, so the same arguments always give the same bytes).
fn binding(context: &RequestContext<RoleServer>, request: &CallToolRequestParams) -> Vec<u8> {
    let parts = context.extensions.get::<axum::http::request::Parts>();
    let caller = match parts.and_then(|p| p.extensions.get::<crate::auth::Caller>()) {
        Some(caller) => format!("user {}\n{}", caller.user.issuer, caller.user.subject).into_bytes(),
        None => parts
            .and_then(|p| p.headers.get(axum::http::header::AUTHORIZATION))
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default(),
    };
    let session =
        parts.and_then(|p| p.headers.get("mcp-session-id")).map(|v| v.as_bytes().to_vec()).unwrap_or_default();
    let arguments = sorted(&Value::Object(request.arguments.clone().unwrap_or_default()));
    let mut bytes = DOMAIN.to_vec();
    for part in [caller.as_slice(), session.as_slice(), request.name.as_bytes(), arguments.to_string().as_bytes()] {
        bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
        bytes.extend_from_slice(part);
    }
    bytes
}

/// `v` with every object's keys in sorted order.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The accepted content of an `inputResponses` entry; `None` for a decline, a cancel, or anything else.
fn answer(response: Option<&Value>) -> Option<JsonObject> {
    let result: ElicitResult = serde_json::from_value(response?.clone()).ok()?;
    answer_of(&result)
}

fn answer_of(result: &ElicitResult) -> Option<JsonObject> {
    match (&result.action, &result.content) {
        (ElicitationAction::Accept, Some(Value::Object(content))) => Some(content.clone()),
        (ElicitationAction::Accept, None) => Some(JsonObject::new()),
        _ => None,
    }
}

/// `request` with the form's answers for `fields` filled in: into the arguments of a service
/// tool, into `input` of `submit_job`. Only the fields asked are taken.
fn fill(
    mut request: CallToolRequestParams,
    service_tool: bool,
    fields: &[String],
    content: &JsonObject,
) -> CallToolRequestParams {
    let mut args = request.arguments.take().unwrap_or_default();
    let target = if service_tool { Some(&mut args) } else { args.get_mut("input").and_then(Value::as_object_mut) };
    if let Some(target) = target {
        for field in fields {
            if let Some(value) = content.get(field) {
                target.insert(field.clone(), value.clone());
            }
        }
    }
    request.arguments = Some(args);
    request
}

/// The yes/no form of a confirmation; "no" is the default, so only a deliberate yes goes ahead.
fn confirm_schema() -> ElicitationSchema {
    let confirm = BooleanSchema::new()
        .title("Go ahead")
        .description("Yes: do it. No: leave everything as it is.")
        .with_default(false);
    let mut schema =
        ElicitationSchema::new(BTreeMap::from([("confirm".to_string(), PrimitiveSchemaDefinition::Boolean(confirm))]));
    schema.required = Some(vec!["confirm".to_string()]);
    schema
}

fn refuse(message: &str) -> Gate {
    Gate::Answer(CallToolResult::error(vec![ContentBlock::text(message)]).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_confirmation_form_is_valid() {
        let schema = json!({
            "type": "object",
            "properties": {"confirm": {"type": "boolean", "title": "Go ahead", "description": "Yes: do it. No: leave everything as it is.", "default": false}},
            "required": ["confirm"]
        });
        assert_eq!(serde_json::to_value(confirm_schema()).unwrap(), schema);
    }

    #[test]
    fn arguments_bind_in_any_key_order() {
        let a = json!({"b": 1, "a": {"y": [1, {"q": 1, "p": 2}], "x": 2}});
        let b = json!({"a": {"x": 2, "y": [1, {"p": 2, "q": 1}]}, "b": 1});
        assert_eq!(sorted(&a).to_string(), sorted(&b).to_string());
        assert_ne!(sorted(&a).to_string(), sorted(&json!({"b": 2, "a": {}})).to_string());
    }

    #[test]
    fn a_state_opens_once_and_only_for_its_binding() {
        let config = ConfirmConfig { state_ttl: Duration::from_secs(60), ..ConfirmConfig::default() };
        let e = Elicitation::new(&config, false, None).unwrap();
        let sealed = Sealed { nonce: "n1".into(), asked: Asked::Confirm };
        let state = e.codec.seal_json_with(&sealed, &SealOptions::new().associated_data(b"call A")).unwrap();
        assert_eq!(
            e.open(&state, b"call B").unwrap_err(),
            "is not valid for this call (changed, made for other arguments or by another server)"
        );
        assert!(matches!(e.open(&state, b"call A"), Ok(Sealed { asked: Asked::Confirm, .. })));
        assert_eq!(e.open(&state, b"call A").unwrap_err(), "was used already");
        let mut tampered = state.clone();
        tampered.pop();
        assert!(e.open(&tampered, b"call A").is_err());
        let expired = e
            .codec
            .seal_json_with(
                &Sealed { nonce: "n2".into(), asked: Asked::Confirm },
                &SealOptions::new().associated_data(b"x").ttl(Duration::ZERO),
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(e.open(&expired, b"x").unwrap_err(), "has expired");
    }

    fn go(gate: Gate) -> JsonObject {
        match gate {
            Gate::Go(request) => request.arguments.unwrap_or_default(),
            Gate::Answer(_) => panic!("expected the call to run"),
        }
    }

    fn declined(gate: Gate) -> bool {
        matches!(gate, Gate::Answer(CallToolResponse::Complete(r)) if r.is_error == Some(true))
    }

    #[test]
    fn only_a_yes_or_a_filled_form_runs_the_call_and_only_asked_fields_are_taken() {
        let request = || {
            let args = json!({"service": "s", "input": {"mood": "calm"}});
            CallToolRequestParams::new("submit_job").with_arguments(args.as_object().unwrap().clone())
        };
        let content = |v: Value| v.as_object().cloned();
        assert!(declined(decide(Asked::Confirm, content(json!({"confirm": false})), request(), false)));
        assert!(declined(decide(Asked::Confirm, content(json!({})), request(), false)));
        assert!(declined(decide(Asked::Confirm, None, request(), false)));
        go(decide(Asked::Confirm, content(json!({"confirm": true})), request(), false));
        let fields = vec!["message".to_string()];
        let answer = content(json!({"message": "hi", "mood": "loud", "extra": 1}));
        let args = go(decide(Asked::Form { fields: fields.clone() }, answer, request(), false));
        assert_eq!(args["input"], json!({"mood": "calm", "message": "hi"}), "only the asked field is filled in");
        let tool = CallToolRequestParams::new("svc_x").with_arguments(JsonObject::new());
        let args = go(decide(Asked::Form { fields }, content(json!({"message": "hi"})), tool, true));
        assert_eq!(Value::Object(args), json!({"message": "hi"}));
        assert!(declined(decide(Asked::Form { fields: vec![] }, None, request(), false)));
    }

    #[test]
    fn answers_are_only_accepts_with_content() {
        let accept = json!({"action": "accept", "content": {"confirm": true}});
        assert_eq!(answer(Some(&accept)).unwrap()["confirm"], true);
        assert!(answer(Some(&json!({"action": "decline"}))).is_none());
        assert!(answer(Some(&json!({"action": "cancel"}))).is_none());
        assert!(answer(Some(&json!("yes"))).is_none());
        assert!(answer(None).is_none());
    }
}
