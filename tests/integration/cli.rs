//! The operator commands against a running server: `vcon put|get|delete` and
//! `dlq list|reprocess`, with the token the server requires.

use std::process::{Command, Output};
use std::time::Duration;

use crate::support::{Backend, Server, binary, component, fixture_dir, unique};

const TOKEN: &str = "cli-test-token-2c9d";

fn conserver(server: &Server, args: &[&str]) -> Output {
    Command::new(binary()).args(args).args(["--url", &server.base, "--token", TOKEN]).output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Poll `conserver dlq list` (the server requires the token) until `uuid` is there.
async fn wait_in_dlq(server: &Server, list: &str, uuid: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let listed = stdout(&conserver(server, &["dlq", "list", list]));
        if listed.contains(uuid) {
            return listed;
        }
        assert!(std::time::Instant::now() < deadline, "{uuid} never reached DLQ:{list}:\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn vcon_and_dlq_commands_work_through_the_api() {
    let (failing, parked) = (unique("cli-fail"), unique("cli-parked"));
    let config = format!(
        "links:\n  refuser:\n    component: {}\n    options: {{mode: error, message: 'refused on purpose'}}\nchains:\n  fail:\n    links: [refuser]\n    ingress_lists: [{failing}]\n",
        component("testing/echo.wasm").display()
    );
    let server = Server::start(Backend::Embedded, &config, &[("CONSERVER_API_TOKEN", TOKEN)]).await;
    let file = fixture_dir().join(conserver_fixtures::CALL);
    let uuid = conserver_fixtures::vcon(conserver_fixtures::CALL)["uuid"].as_str().unwrap().to_string();
    let uuid = uuid.as_str();

    // Without the token the server says so, and the command says what to do.
    let refused = Command::new(binary()).args(["vcon", "get", uuid, "--url", &server.base]).output().unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--token"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // put (stored only), get, then put onto a failing chain.
    assert!(stdout(&conserver(&server, &["vcon", "put", file.to_str().unwrap(), "-l", &parked])).contains(uuid));
    assert!(stdout(&conserver(&server, &["vcon", "get", uuid])).contains("\"parties\""));
    stdout(&conserver(&server, &["vcon", "put", file.to_str().unwrap(), "-l", &failing]));
    let listed = wait_in_dlq(&server, &failing, uuid).await;
    assert!(listed.contains(uuid) && listed.contains("refuser") && listed.contains("refused on purpose"), "{listed}");
    let moved = stdout(&conserver(&server, &["dlq", "reprocess", &failing, "--count", "1"]));
    assert!(moved.contains("moved 1 "), "{moved}");
    // Reprocessed, it fails again and is back in the DLQ.
    wait_in_dlq(&server, &failing, uuid).await;

    stdout(&conserver(&server, &["vcon", "delete", uuid]));
    let gone = conserver(&server, &["vcon", "get", uuid]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("404"), "{}", String::from_utf8_lossy(&gone.stderr));
}
