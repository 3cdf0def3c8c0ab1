//! MCP prompts: ready-made instructions a person picks as a command in their client. Each
//! names the real tools (in backticks; a test checks every one exists) and their arguments.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{PromptMessage, Role};
use rmcp::{prompt, prompt_router};
use schemars::JsonSchema;
use serde::Deserialize;

/// Arguments of `run_service`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunServiceArgs {
    /// Service URN (urn:ivcap:service:…) or exact service name.
    pub service: String,
    /// What the run should achieve, in plain words.
    #[serde(default)]
    pub goal: Option<String>,
}

/// Arguments of `annotate_artifact`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AnnotateArtifactArgs {
    /// Artifact id (urn:ivcap:artifact:… or, in local mode, urn:file://…).
    pub artifact: String,
    /// What to record about it.
    #[serde(default)]
    pub note: Option<String>,
    /// Schema URN to record it under (default: propose one).
    #[serde(default)]
    pub schema: Option<String>,
}

/// Arguments of `trace_provenance`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TraceProvenanceArgs {
    /// URN of the artifact (or other entity) whose origin to trace.
    pub entity: String,
}

/// Arguments of `explore_datafabric`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExploreDatafabricArgs {
    /// The question to answer from the Datafabric.
    pub question: String,
}

fn user(text: String) -> Vec<PromptMessage> {
    vec![PromptMessage::new_text(Role::User, text)]
}

/// The prompts. They need no state: each is text built from its arguments.
pub(super) struct Prompts;

#[prompt_router(vis = "pub(super)")]
impl Prompts {
    #[prompt(
        name = "run_service",
        description = "Run an IVCAP service end to end: read its request schema, build and submit a valid input, \
                       follow the job and present its result and artifacts. Use when you know which service to run."
    )]
    pub fn run_service(&self, Parameters(args): Parameters<RunServiceArgs>) -> Vec<PromptMessage> {
        let goal = args.goal.map(|g| format!(" The goal: {g}.")).unwrap_or_default();
        user(format!(
            "Run the IVCAP service '{service}'.{goal}\n\
             1. Call `get_service` with service \"{service}\" to read its description and request_schema \
             (if it is not found, call `list_services` with a search word and pick the right one).\n\
             2. Build an input object that satisfies request_schema and serves the goal; ask me for any \
             required value you cannot infer. If an input needs a file, upload it first with \
             `upload_artifact` and pass the artifact id.\n\
             3. Call `submit_job` with service and input (wait_seconds 30). If it reports invalid input, fix \
             every problem it lists and submit again.\n\
             4. While the status is not succeeded, failed or error, call `get_job` with job set to the job_id and \
             wait_seconds 30.\n\
             5. Present the result clearly. For each artifact the job produced (the resource links of the \
             result), call `get_artifact`, and `download_artifact` without path to show small text or images.\n\
             6. If the job failed, show its error_message and suggest a corrected input.",
            service = args.service
        ))
    }

    #[prompt(
        name = "annotate_artifact",
        description = "Record a fact about an artifact as a Datafabric aspect: read the artifact, propose an \
                       aspect under a sensible schema, add it and show it. Use to label or describe data."
    )]
    pub fn annotate_artifact(&self, Parameters(args): Parameters<AnnotateArtifactArgs>) -> Vec<PromptMessage> {
        let note = args.note.map(|n| format!(" What to record: {n}.")).unwrap_or_default();
        let schema = match args.schema {
            Some(s) => format!("Use the schema \"{s}\"."),
            None => "Choose a schema URN: reuse one already used for similar facts (call `list_aspects` with \
                     entity set to the artifact, and with schema \"urn:%\" and limit 20 to see common ones), \
                     or propose a new versioned one such as urn:example:schema:annotation.1."
                .to_string(),
        };
        user(format!(
            "Annotate the artifact {artifact}.{note}\n\
             1. Call `get_artifact` with artifact \"{artifact}\", then `download_artifact` without path to \
             read its content if it is small text or an image.\n\
             2. {schema}\n\
             3. Propose the content as a JSON object (short, typed fields, e.g. {{\"label\": …, \"comment\": …}}) \
             and show it to me before writing.\n\
             4. Call `add_aspect` with entity \"{artifact}\", the schema and the content (use `update_aspect` \
             instead to replace an earlier aspect of the same schema).\n\
             5. Call `list_aspects` with entity \"{artifact}\" and include_content true, and show what is now \
             recorded about the artifact.",
            artifact = args.artifact
        ))
    }

    #[prompt(
        name = "trace_provenance",
        description = "Trace where an artifact came from: the job that produced it, that job's service and \
                       inputs, and their own origins, using list_aspects and Datalog search. Use to audit results."
    )]
    pub fn trace_provenance(&self, Parameters(args): Parameters<TraceProvenanceArgs>) -> Vec<PromptMessage> {
        user(format!(
            "Trace the provenance of {entity}.\n\
             1. Call `search` with the query\n\
             :- ivcap_artifact_produced_by(\"{entity}\", Job), ivcap_job(Job, Status, Service), ivcap_service(Service, Name).\n\
             to find the job that produced it, the job's status and its service.\n\
             2. For that job, call `get_job` with job Job to see its result, and `list_aspects` with entity \
             Job and include_content true for the Datafabric's job record (schema urn:ivcap:schema:job.2) and \
             anything else recorded about it.\n\
             3. Call `list_aspects` with entity \"{entity}\" and include_content true for the facts recorded \
             about the artifact itself.\n\
             4. For each input artifact the job's request or aspects name, repeat step 1 with that artifact, \
             and continue until no producing job is found.\n\
             5. Present the chain as a list: artifact ← job (service, time) ← inputs, naming every URN. Say \
             plainly where the trail ends and why (an upload by a person, or no record).",
            entity = args.entity
        ))
    }

    #[prompt(
        name = "explore_datafabric",
        description = "Answer a question from the Datafabric: turn it into list_aspects calls or a Datalog \
                       (Mangle) search, with worked examples of the query forms the server accepts."
    )]
    pub fn explore_datafabric(&self, Parameters(args): Parameters<ExploreDatafabricArgs>) -> Vec<PromptMessage> {
        user(format!(
            "Answer this question from the IVCAP Datafabric: {question}\n\
             Use `list_aspects` for simple lookups: entity (exact URN), schema (a URN, % wildcards, e.g. \
             \"urn:example:schema:%\"), content_path (PostgreSQL JSONPath such as $.label ? (@ == \"cat\")), \
             at_time (an RFC 3339 instant, to see the past) and include_content true.\n\
             Use `search` for joins and counts. It takes a Mangle (Datalog) query over ivcap_artifact(Id, Name, \
             MimeType), ivcap_aspect(Entity, Schema, Content), ivcap_service(Id, Name), ivcap_job(Id, Status, \
             ServiceId) and ivcap_artifact_produced_by(ArtifactId, JobId). Worked examples:\n\
             - all JPEG artifacts: :- ivcap_artifact(Id, Name, MimeType), MimeType = \"image/jpeg\".\n\
             - jobs per status: :- ivcap_job(J, S, _) |> do fn:group_by(S), let N = fn:count().\n\
             - labels of artifacts: :- ivcap_artifact(A, _, _), ivcap_aspect(A, \"urn:example:schema:label.1\", C), \
             :match_field(C, /label, L).\n\
             - a program with a rule and a query head:\n\
               labelled(A) :- ivcap_aspect(A, \"urn:example:schema:label.1\", _).\n\
               query(A, Name) :- ivcap_artifact(A, Name, _), !labelled(A).\n\
             Start with `list_aspects` and schema \"urn:%\" (limit 20) if you do not know which schemas exist. \
             Page with next_page when an answer is cut. Finish with a direct answer to the question and the \
             queries you ran.",
            question = args.question
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::server::{IvcapMcp, ServerOptions};

    /// Every backticked word of every prompt text is a tool this server offers.
    #[tokio::test]
    async fn prompts_name_only_real_tools() {
        let dir = tempfile::tempdir().unwrap();
        let server =
            IvcapMcp::new(Arc::new(LocalBackend::new(dir.path()).unwrap()), &ServerOptions::default()).unwrap();
        let tools: Vec<String> = server.tools().into_iter().map(|t| t.name.into_owned()).collect();
        let all = prompt_texts(&Prompts);
        assert_eq!(all.len(), 4);
        for (name, text) in all {
            let named: Vec<&str> = text.split('`').skip(1).step_by(2).collect();
            assert!(!named.is_empty(), "{name} names no tool");
            for tool in named {
                assert!(tools.iter().any(|t| t == tool), "prompt {name} names `{tool}`, which is not a tool");
            }
        }
    }

    /// Each prompt rendered with sample arguments (for the test that checks the tools they name).
    fn prompt_texts(server: &Prompts) -> Vec<(&'static str, String)> {
        let text = |m: Vec<PromptMessage>| {
            m.into_iter().filter_map(|m| m.content.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
        };
        vec![
            ("run_service", text(server.run_service(Parameters(RunServiceArgs { service: "s".into(), goal: None })))),
            (
                "annotate_artifact",
                text(server.annotate_artifact(Parameters(AnnotateArtifactArgs {
                    artifact: "a".into(),
                    note: None,
                    schema: None,
                }))),
            ),
            ("trace_provenance", text(server.trace_provenance(Parameters(TraceProvenanceArgs { entity: "e".into() })))),
            (
                "explore_datafabric",
                text(server.explore_datafabric(Parameters(ExploreDatafabricArgs { question: "q".into() }))),
            ),
        ]
    }
}
