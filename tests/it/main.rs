//! Integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apps;
mod architecture;
mod artifacts;
mod aspects;
mod collections;
mod common;
mod config;
mod elicitation;
mod examples;
mod framing;
mod http;
mod jobs;
mod lambda_interop;
mod lifecycle;
mod load_balancer;
mod local_url_services;
mod login;
mod oauth;
mod packaging;
mod python_mcp;
mod python_sdk;
mod readme;
mod resources;
mod sdk_interop;
mod search;
mod secrets;
mod service_parameters;
mod service_tools;
mod services;
mod standin_auth;
mod stdio;
mod tasks;
mod telemetry;
mod tool_schemas;
