//! Issue #17, item 1: the embedded broker on a filesystem that fills up. A write
//! the broker acknowledged must be on disk (readable after the broker is
//! reopened), a write that did not persist must fail, and once space is freed
//! the same broker must write again without a restart.
//!
//! The filesystem is a small tmpfs mounted for the test (the tests run as root;
//! without the rights to mount, the test fails saying so).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use conserver_broker::{Broker, EmbeddedBroker, Queues, Ttl, VconDocuments};

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

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
            "cannot mount a tmpfs for the full-disk test (it needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn vcon(uuid: &str) -> String {
    format!(r#"{{"uuid":"{uuid}","vcon":"0.4.0","parties":[],"pad":"{}"}}"#, "x".repeat(8_000))
}

/// Store vCons (document, list entry) until `failures` writes in a row fail;
/// the uuids whose writes were acknowledged.
async fn fill(broker: &EmbeddedBroker, list: &str, failures: usize) -> Vec<String> {
    let (mut acked, mut failed_in_a_row) = (Vec::new(), 0);
    for _ in 0..5_000 {
        let uuid = uuid::Uuid::new_v4().to_string();
        let stored = broker.store_vcon(&uuid, &vcon(&uuid), Ttl::Secs(0), 1.0, &[], 60).await;
        let queued = match stored {
            Ok(_) => broker.push(list, std::slice::from_ref(&uuid)).await.map(|()| true),
            Err(e) => Err(e),
        };
        match queued {
            Ok(_) => {
                acked.push(uuid);
                failed_in_a_row = 0;
            }
            Err(_) => {
                failed_in_a_row += 1;
                if failed_in_a_row >= failures {
                    return acked;
                }
            }
        }
    }
    panic!("the filesystem never filled up ({} vCons stored)", acked.len());
}

async fn assert_all_stored(data: &Path, list: &str, acked: &[String]) {
    let reopened = EmbeddedBroker::open(data).await.unwrap();
    let listed = reopened.range(list).await.unwrap();
    let mut missing = Vec::new();
    for uuid in acked {
        if reopened.get_vcon(uuid).await.unwrap().is_none() || !listed.contains(uuid) {
            missing.push(uuid.clone());
        }
    }
    assert!(missing.is_empty(), "{} of {} acknowledged vCons were lost: {missing:?}", missing.len(), acked.len());
}

#[tokio::test]
async fn acknowledged_writes_persist_on_a_full_disk_and_the_writer_recovers_when_space_returns() {
    let fs = Tmpfs::mount("4m");
    // Room to free later.
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; 1 << 20]).unwrap();
    let data = fs.path().join("broker");
    let broker = EmbeddedBroker::open(&data).await.unwrap();
    let list = "full-disk-in";

    let mut acked = fill(&broker, list, 20).await;
    assert!(!acked.is_empty(), "nothing fitted before the disk was full");
    // The broker says it is unhealthy while it cannot write.
    assert!(broker.ping().await.is_err(), "a broker that cannot write reports healthy");

    // Space comes back: the same broker writes again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let mut recovered = false;
    for _ in 0..50 {
        let uuid = uuid::Uuid::new_v4().to_string();
        if broker.store_vcon(&uuid, &vcon(&uuid), Ttl::Secs(0), 1.0, &[], 60).await.is_ok()
            && broker.push(list, std::slice::from_ref(&uuid)).await.is_ok()
        {
            acked.push(uuid);
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "the broker did not write again after space was freed");
    assert!(broker.ping().await.is_ok(), "healthy again once it can write");
    drop(broker);
    assert_all_stored(&data, list, &acked).await;
}
