//! Issue #17, item 4: the file storage on a filesystem that fills up leaves no
//! temp files behind, and every write it reported as done is a complete file.
//! The filesystem is a small tmpfs mounted for the test (the tests run as root;
//! without the rights to mount, the test fails saying so).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use conserver_storage::{FileOptions, FileStorage, Storage};
use serde_json::json;

#[tokio::test]
async fn a_full_disk_leaves_no_temp_files_and_only_whole_vcons() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "cannot mount a tmpfs (the test needs root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let options = FileOptions::from_value("files", json!({"path": dir.path(), "organize_by_date": false})).unwrap();
    let storage = FileStorage::new("files", options);
    let pad = "x".repeat(50_000);
    let (mut saved, mut failed) = (Vec::new(), 0);
    for _ in 0..200 {
        let uuid = uuid::Uuid::new_v4().to_string();
        let doc = json!({"uuid": uuid, "vcon": "0.4.0", "pad": pad}).to_string();
        match storage.save(&uuid, &doc).await {
            Ok(()) => saved.push((uuid, doc)),
            Err(_) => failed += 1,
        }
    }
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let mut whole = true;
    for (uuid, doc) in &saved {
        whole &= storage.get(uuid).await.unwrap().as_deref() == Some(doc.as_str());
    }
    let _ = Command::new("umount").arg("-l").arg(dir.path()).status();
    assert!(whole, "a saved vCon does not read back whole");
    assert!(failed > 0, "the disk never filled");
    let temps: Vec<&String> = names.iter().filter(|n| n.ends_with(".tmp")).collect();
    assert!(temps.is_empty(), "{} temp files left behind, e.g. {:?}", temps.len(), &temps[..temps.len().min(3)]);
    assert_eq!(names.len(), saved.len(), "one file per saved vCon: {names:?}");
}
