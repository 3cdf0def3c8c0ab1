//! The `ivcap-mcp` command; see `ivcap_mcp::command`.

fn main() -> std::process::ExitCode {
    ivcap_mcp::command::run()
}
