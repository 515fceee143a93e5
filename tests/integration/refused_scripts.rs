//! A Redis that refuses scripts (an ACL without `@scripting`, as some managed
//! services hand out) still runs every chain (issue 19): pops fall back to
//! `BLMOVE`/`LMOVE` plus a read, wrap-ups to one command per step, ack last.

use std::process::Command;
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use crate::support::{Backend, Server, fresh_vcon, own_redis, patient_redis, tag_chain, unique};

#[tokio::test]
async fn a_redis_that_refuses_scripts_still_processes_every_vcon() {
    let (_redis, port) = own_redis(&[]);
    let acl = Command::new("redis-cli")
        .args([
            "-p",
            &port.to_string(),
            "ACL",
            "SETUSER",
            "noscripts",
            "on",
            ">noscripts-pw",
            "~*",
            "&*",
            "+@all",
            "-@scripting",
        ])
        .output()
        .expect("redis-cli must be installed (cargo xtask test installs it)");
    assert!(String::from_utf8_lossy(&acl.stdout).contains("OK"), "ACL SETUSER: {acl:?}");
    let admin = format!("redis://127.0.0.1:{port}");
    let mut conn = patient_redis(&admin).await;
    let (ingress, egress) = (unique("noscript-in"), unique("noscript-out"));
    let mut uuids = Vec::new();
    for _ in 0..20 {
        let (uuid, vcon) = fresh_vcon();
        let () = conn.set(format!("vcon:{uuid}"), vcon.to_string()).await.unwrap();
        uuids.push(uuid);
    }
    let () = conn.rpush(&ingress, &uuids).await.unwrap();

    let url = format!("redis://noscripts:noscripts-pw@127.0.0.1:{port}");
    let server = Server::start(Backend::Embedded, &tag_chain(&ingress, &egress), &[("REDIS_URL", url.as_str())]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: usize = conn.llen(&egress).await.unwrap();
        if done >= uuids.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {} vCons reached egress: {}",
            uuids.len(),
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut got: Vec<String> = conn.lrange(&egress, 0, -1).await.unwrap();
    got.sort();
    uuids.sort();
    assert_eq!(got, uuids, "every vCon once");
    let held: Vec<String> = conn.keys("*:processing:*").await.unwrap();
    for list in held {
        let len: usize = conn.llen(&list).await.unwrap();
        assert_eq!(len, 0, "{list} still holds items: every vCon was acked");
    }
    let log = server.log_text();
    assert!(log.contains("refused the pop script") && log.contains("refused the wrap-up script"), "{log}");
    let document: String = conn.get(format!("vcon:{}", uuids[0])).await.unwrap();
    assert!(document.contains("iron:iron"), "the tag link's change was written back: {document}");
}
