//! The agent's admin socket with the real binaries: Debug `GetInfo` reports the agent's
//! own SVID and its last sync with the server, and the Logger API changes the level of
//! the running agent.

use std::time::Duration;

use spire_e2e::Quickstart;
use spire_proto::spire::agent::debug::v1::GetInfoRequest;
use spire_proto::spire::agent::debug::v1::debug_client::DebugClient;
use spire_proto::spire::api::agent::logger::v1::logger_client::LoggerClient;
use spire_proto::spire::api::agent::logger::v1::{
    GetLoggerRequest, ResetLogLevelRequest, SetLogLevelRequest,
};
use spire_proto::spire::api::types::LogLevel;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[tokio::test(flavor = "multi_thread")]
async fn debug_and_logger_apis_of_a_running_agent() -> TestResult {
    let qs = Quickstart::start("");
    let token = qs.generate_token("spiffe://example.org/myagent");
    let (config, socket) = qs.agent_config("agent");
    // Not under the public socket's directory, which the agent refuses.
    let admin = socket
        .parent()
        .and_then(std::path::Path::parent)
        .ok_or("socket has no directory")?
        .join("agent-admin")
        .join("admin.sock");
    let text = std::fs::read_to_string(&config)?.replacen(
        "agent {",
        &format!("agent {{\n    admin_socket_path = \"{}\"", admin.display()),
        1,
    );
    std::fs::write(&config, text)?;
    let agent = qs.start_agent(&config, Some(&token), "agent.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !admin.exists() {
        if std::time::Instant::now() > deadline {
            return Err(format!("no admin socket; agent log:\n{}", agent.log()).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let channel = spire_common::uds::channel(&admin)?;
    let info = DebugClient::new(channel.clone())
        .get_info(GetInfoRequest {})
        .await?
        .into_inner();
    let leaf = info.svid_chain.first().ok_or("no agent SVID chain")?;
    let id = leaf.id.as_ref().ok_or("agent SVID without SPIFFE ID")?;
    assert_eq!(id.trust_domain, "example.org");
    assert_eq!(id.path, "/spire/agent/join_token/".to_owned() + &token);
    assert!(leaf.expires_at > 0);
    assert!(info.last_sync_success > 0, "{info:?}");

    let mut logger = LoggerClient::new(channel);
    let got = logger.get_logger(GetLoggerRequest {}).await?.into_inner();
    assert_eq!(got.launch_level, LogLevel::Debug as i32);
    let set = logger
        .set_log_level(SetLogLevelRequest {
            new_level: LogLevel::Warn as i32,
        })
        .await?
        .into_inner();
    assert_eq!(set.current_level, LogLevel::Warn as i32);
    let reset = logger
        .reset_log_level(ResetLogLevelRequest {})
        .await?
        .into_inner();
    assert_eq!(reset.current_level, LogLevel::Debug as i32);

    // The same through the command line.
    let cli = |args: &[&str]| {
        std::process::Command::new(spire_e2e::binary("spire-agent"))
            .args(args)
            .arg("-socketPath")
            .arg(&admin)
            .output()
    };
    let out = cli(&["debug", "getinfo"])?;
    assert!(out.status.success(), "{}", spire_e2e::stderr(&out));
    let text = spire_e2e::stdout(&out);
    assert!(text.starts_with("Agent Debug Info:\n  Uptime:  "), "{text}");
    assert!(
        text.contains(&format!(
            "    [0] SPIFFE ID:  spiffe://example.org/spire/agent/join_token/{token}\n"
        )),
        "{text}"
    );
    assert!(!text.contains("(never)"), "{text}");
    let out = cli(&["logger", "set", "-level", "WARN"])?;
    assert_eq!(
        spire_e2e::stdout(&out),
        "Logger Level : warning\nLaunch Level : debug\n\n"
    );
    let out = cli(&["logger", "reset"])?;
    assert_eq!(
        spire_e2e::stdout(&out),
        "Logger Level : debug\nLaunch Level : debug\n\n"
    );
    let out = cli(&["logger", "set", "-level", "loud"])?;
    assert_eq!(out.status.code(), Some(1));
    assert!(spire_e2e::stderr(&out).contains("the value \"loud\" is not a valid setting"));
    Ok(())
}
