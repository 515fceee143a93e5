//! What a processed vCon costs Redis (issue #19): the pop reads the document in
//! the same script call, and the wrap-up (write-back, egress, TTL) and the ack
//! are one more — two round trips per vCon. Counted with `MONITOR` on a Redis of
//! the test's own: every command a client sent (commands a script runs are
//! shown as `[0 lua]` and are not round trips).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use crate::support::{Backend, KillOnDrop, Server, fresh_vcon, own_redis, tag_chain, unique};

/// vCons processed; the bound allows a fixed start-up and housekeeping slack
/// (connection set-up, heartbeats, queue-depth gauges) on top of 2 per vCon.
const VCONS: usize = 400;
const PER_VCON: usize = 2;
const SLACK: usize = 150;

#[tokio::test]
async fn a_processed_vcon_costs_redis_two_round_trips() {
    let (_redis, port) = own_redis(&[]);
    let url = format!("redis://127.0.0.1:{port}");
    let mut conn = crate::support::patient_redis(&url).await;
    let (ingress, egress) = (unique("trips-in"), unique("trips-out"));
    let mut uuids = Vec::with_capacity(VCONS);
    for _ in 0..VCONS {
        let (uuid, vcon) = fresh_vcon();
        let () = conn.set(format!("vcon:{uuid}"), vcon.to_string()).await.unwrap();
        uuids.push(uuid);
    }
    let () = conn.rpush(&ingress, &uuids).await.unwrap();

    let monitor = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "monitor"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli must be installed (cargo xtask test installs it)");
    let mut monitor = KillOnDrop(monitor);
    let lines = BufReader::new(monitor.0.stdout.take().unwrap());
    let counter = std::thread::spawn(move || {
        let mut by_command: BTreeMap<String, usize> = BTreeMap::new();
        for line in lines.lines().map_while(Result::ok) {
            // `<time> [<db> <client>] "<command>" …`; `[0 lua]` is a script's own call.
            let Some((client, rest)) = line.split_once("] ") else { continue };
            if client.ends_with(" lua") {
                continue;
            }
            let command = rest.split('"').nth(1).unwrap_or("?").to_ascii_lowercase();
            *by_command.entry(command).or_default() += 1;
        }
        by_command
    });
    std::thread::sleep(Duration::from_millis(300));

    let server = Server::start(Backend::Embedded, &tag_chain(&ingress, &egress), &[("REDIS_URL", url.as_str())]).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done: usize = conn.llen(&egress).await.unwrap();
        if done >= VCONS {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of {VCONS} vCons reached egress: {}", server.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(monitor);
    let by_command = counter.join().unwrap();
    let total: usize = by_command.values().sum();
    let bound = VCONS * PER_VCON + SLACK;
    eprintln!("{total} commands for {VCONS} vCons: {by_command:?}");
    assert!(
        total <= bound,
        "{total} commands for {VCONS} vCons (bound {bound}: {PER_VCON} per vCon + {SLACK}): {by_command:?}"
    );
    // The scripts did the work: one pop and one wrap-up per vCon.
    let scripted = by_command.get("evalsha").copied().unwrap_or(0) + by_command.get("eval").copied().unwrap_or(0);
    assert!(scripted >= VCONS * 2, "{scripted} script calls for {VCONS} vCons: {by_command:?}");
    let processed: Vec<String> = conn.lrange(&egress, 0, -1).await.unwrap();
    let mut expected = uuids.clone();
    expected.sort();
    let mut got = processed.clone();
    got.sort();
    assert_eq!(got, expected, "every vCon once");
}
