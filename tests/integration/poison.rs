//! Poison items (issue #18, item 4): uuids on an ingress list whose `vcon:{uuid}`
//! key the worker cannot use — a hash instead of a document, bytes that are not
//! text, a document that is not JSON — each reach the DLQ with the reason after a
//! few paused tries, and a good vCon queued behind them completes. Before, one such
//! item was returned and popped again ~85,000 times in 15 s.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::support::{Backend, Server, fresh_vcon, unique};

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the name).
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::test]
async fn each_kind_of_poison_is_dead_lettered_and_the_next_vcon_completes() {
    let (ingress, egress) = (unique("poison-in"), unique("poison-out"));
    let config = crate::support::tag_chain(&ingress, &egress);
    let server = Server::start(Backend::Redis, &config, &[]).await;
    let client = redis::Client::open(crate::support::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (wrong_type, not_text, not_json) =
        (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let () =
        redis::cmd("HSET").arg(format!("vcon:{wrong_type}")).arg("a").arg("b").query_async(&mut conn).await.unwrap();
    let () = redis::cmd("SET")
        .arg(format!("vcon:{not_text}"))
        .arg(&b"\xff\xfe\x00binary"[..])
        .query_async(&mut conn)
        .await
        .unwrap();
    let () = redis::cmd("SET")
        .arg(format!("vcon:{not_json}"))
        .arg("{this is not json")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (good, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, "").await.status(), 201);
    let cpu_before = cpu_seconds(server.pid());
    let () = redis::cmd("RPUSH")
        .arg(&ingress)
        .arg(&wrong_type)
        .arg(&not_text)
        .arg(&not_json)
        .arg(&good)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut seen = HashMap::new();
    let expected: HashSet<String> = std::iter::once(good.clone()).collect();
    assert!(server.drain_egress(&egress, &expected, &mut seen, Duration::from_secs(60)).await, "{}", server.log_text());
    for poison in [&wrong_type, &not_text, &not_json] {
        let reason = server.wait_for_dlq(&ingress, poison, Duration::from_secs(60)).await;
        assert!(!reason.to_string().is_empty(), "{poison}: a reason is recorded");
        eprintln!("{poison}: {reason}");
    }
    let used = cpu_seconds(server.pid()) - cpu_before;
    let log = server.log_text();
    let returns = log.matches("goes back to its list after a pause").count();
    eprintln!("{returns} pauses logged, {used:.2} s of CPU while the poison was handled");
    assert!(returns >= 4, "each poison item the broker refuses was paused between its tries:\n{log}");
    assert!(returns <= 12, "each poison item is tried a few times, not spun:\n{log}");
    assert!(log.matches("vCon dead-lettered: the broker cannot hand it to the chain").count() >= 2, "{log}");
    let (_, depth) = server.get_json(&format!("/api/stats/queue?list_name={ingress}")).await;
    assert_eq!(depth["depth"], 0, "{depth}");
}
