//! Issue #17, items 1 and 8, on the real binary: the embedded broker's data
//! directory on a small tmpfs that fills up. Every `POST /vcon` answered 201
//! must be readable after a restart; a write that failed is answered 503 with
//! `Retry-After` (never 201); `/health` says `degraded` while writes fail; once
//! space is freed the same process stores again without a restart. Uuids are
//! checked one by one. (The tests run as root; mounting is how a full disk is
//! made, and the test fails saying so when it cannot mount.)

use std::path::Path;
use std::process::Command;

use crate::support::{Backend, Server, fresh_vcon};

struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("`mount` is needed to make a full filesystem");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (the test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test]
async fn a_full_disk_is_answered_503_never_201_and_the_server_recovers_when_space_returns() {
    let fs = Tmpfs::mount("6m");
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; 2 << 20]).unwrap();
    let data = fs.path().join("data").display().to_string();
    let mut server = Server::start(Backend::Embedded, "", &[("CONSERVER_DATA_DIR", data.as_str())]).await;
    let pad = "x".repeat(16_000);
    let mut acked = Vec::new();
    let mut refused = 0;
    for _ in 0..2_000 {
        let (uuid, mut vcon) = fresh_vcon();
        vcon["attachments"] = serde_json::json!([{"type": "pad", "encoding": "none", "body": pad}]);
        let reply = server.post_vcon(&vcon, "full-disk-in").await;
        match reply.status().as_u16() {
            201 => acked.push(uuid),
            503 => {
                assert!(reply.headers().contains_key("retry-after"));
                refused += 1;
                if refused >= 10 {
                    break;
                }
            }
            other => panic!("a full disk must be a 503, got {other}: {}", reply.text().await.unwrap_or_default()),
        }
    }
    assert!(refused >= 10, "the disk never filled ({} stored)", acked.len());
    let (_, health) = server.get_json("/health").await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["broker"]["status"], "failing", "{health}");

    // Space returns: the same process stores again.
    std::fs::remove_file(&filler).unwrap();
    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, "full-disk-in").await.status(), 201);
    acked.push(uuid);
    let (_, health) = server.get_json("/health").await;
    assert_eq!(health["status"], "healthy", "{health}");

    // Every acknowledged vCon survives a restart.
    server.kill_hard();
    server.restart().await;
    let mut missing = Vec::new();
    for uuid in &acked {
        if server.get_json(&format!("/api/vcon/{uuid}")).await.0 != 200 {
            missing.push(uuid.clone());
        }
    }
    assert!(missing.is_empty(), "{} of {} acknowledged vCons lost: {missing:?}", missing.len(), acked.len());
}
