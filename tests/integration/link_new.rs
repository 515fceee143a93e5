//! `conserver link new` (Rust): the generated project builds to a component that
//! passes `conserver link test` and runs in a chain of the real host. (Python and
//! JavaScript projects: script_links.rs.)

use std::process::Command;
use std::time::Duration;

use crate::support::{Backend, Server, binary, fresh_vcon, unique};

#[tokio::test]
async fn a_new_link_builds_and_runs_in_a_chain() {
    let scratch = tempfile::tempdir().unwrap();
    let project = scratch.path().join("demo_tagger");
    let created = Command::new(binary()).args(["link", "new", "demo_tagger", "--dir"]).arg(&project).output().unwrap();
    assert!(created.status.success(), "link new: {}", String::from_utf8_lossy(&created.stderr));
    let cargo_toml = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(cargo_toml.contains("name = \"demo_tagger\""), "{cargo_toml}");

    // The same target directory `cargo xtask` builds the links in, so the SDK's
    // dependencies are already compiled.
    let target = binary().parent().and_then(|debug| debug.parent()).unwrap().join("wasm");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .current_dir(&project)
        .args(["build", "--release"])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(built.status.success(), "the new project does not build:\n{}", String::from_utf8_lossy(&built.stderr));
    let component = target.join("wasm32-wasip2/release/demo_tagger.wasm");
    assert!(component.is_file(), "{} was not built", component.display());

    // `conserver link test` runs it on a real vCon in the sandbox.
    let tested = Command::new(binary())
        .args(["link", "test"])
        .arg(&component)
        .arg(crate::support::fixture_dir().join(conserver_fixtures::CALL))
        .args(["--options", "{tag: gold}"])
        .env("CONSERVER_DATA_DIR", scratch.path().join("data"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert!(tested.status.success(), "link test failed:\n{stdout}\n{}", String::from_utf8_lossy(&tested.stderr));
    assert!(stdout.contains(": changed") && stdout.contains("gold:gold"), "{stdout}");

    let (ingress, egress) = (unique("new-link"), unique("new-link-out"));
    let config = format!(
        "links:\n  demo_tagger:\n    component: {}\n    options: {{tag: vip}}\nchains:\n  main:\n    links: [demo_tagger]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n",
        component.display()
    );
    // The new project's build lies outside the default component directories.
    let dirs = component.parent().unwrap().display().to_string();
    let server = Server::start(Backend::Embedded, &config, &[("CONSERVER_COMPONENT_DIRS", &dirs)]).await;
    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(30)).await;
    let (_, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
    let text = stored.to_string();
    assert!(text.contains("vip:vip"), "the new link's tag is missing: {text}");
    assert!(text.contains("\"vendor\":\"demo_tagger\""), "the new link's analysis is missing: {text}");
}
