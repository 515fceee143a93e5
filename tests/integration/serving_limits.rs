//! Issue #16, items 2 and 9, on the real binary over loopback: a connection flood
//! past `CONSERVER_HTTP_MAX_CONNECTIONS` is refused at once while `/health`
//! answers within the cap; silent and trickling connections are closed by the
//! idle and header-read timeouts; a wrong ingress key is refused before the body
//! is read. Waits are bounded and only detect a hang; nothing asserts a duration.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Backend, Server};

/// What the server sends on `stream` until it closes it, or `None` if it is
/// still open after `wait`.
async fn until_closed(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(wait, read_all).await.ok()?;
    Some(received)
}

async fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap()
}

/// `GET /health` on a fresh connection, the raw answer.
async fn health(server: &Server) -> String {
    let mut stream = connect(server).await;
    stream.write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").await.unwrap();
    let answer = until_closed(&mut stream, Duration::from_secs(20)).await.expect("/health did not answer");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_flood_of_idle_connections_is_refused_past_the_cap_and_health_still_answers() {
    let server = Server::start(
        Backend::Embedded,
        "",
        &[
            ("CONSERVER_HTTP_MAX_CONNECTIONS", "4"),
            ("CONSERVER_HTTP_IDLE_TIMEOUT_SECS", "300"),
            ("CONSERVER_HTTP_HEADER_READ_TIMEOUT_SECS", "300"),
        ],
    )
    .await;
    // The harness's client keeps the connection of its start-up health check
    // (a keep-alive one, idle); two idle sockets hold two more of the four places.
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(connect(&server).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = health(&server).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "a connection within the cap is served: {answer}");

    // Six more while the three are held: at most one gets the free place, the
    // others are answered 503 and closed at once instead of hanging.
    let mut extra = Vec::new();
    for _ in 0..6 {
        extra.push(connect(&server).await);
    }
    let mut refused = 0;
    for stream in &mut extra {
        if let Some(answer) = until_closed(stream, Duration::from_secs(5)).await {
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
            refused += 1;
        }
    }
    assert!(refused >= 5, "only {refused} of 6 connections over the cap were refused:\n{}", server.log_text());
    drop(extra);

    // Once the flood is gone the server answers as usual.
    drop(idle);
    let mut answered = false;
    for _ in 0..100 {
        if health(&server).await.starts_with("HTTP/1.1 200") {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "/health never came back:\n{}", server.log_text());
}

#[tokio::test]
async fn a_per_address_cap_refuses_one_client_holding_too_many() {
    let server = Server::start(
        Backend::Embedded,
        "",
        &[("CONSERVER_HTTP_MAX_CONNECTIONS_PER_IP", "3"), ("CONSERVER_HTTP_IDLE_TIMEOUT_SECS", "300")],
    )
    .await;
    // With the harness's pooled connection, 127.0.0.1 holds three.
    let held = [connect(&server).await, connect(&server).await];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = connect(&server).await;
    let answer = until_closed(&mut third, Duration::from_secs(10)).await.expect("the fourth connection was kept open");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 503"));
    drop(held);
}

#[tokio::test]
async fn silent_idle_and_trickling_connections_are_closed() {
    let server = Server::start(
        Backend::Embedded,
        "",
        &[("CONSERVER_HTTP_IDLE_TIMEOUT_SECS", "1"), ("CONSERVER_HTTP_HEADER_READ_TIMEOUT_SECS", "3")],
    )
    .await;
    // A connection that never sends anything.
    let mut silent = connect(&server).await;
    assert!(until_closed(&mut silent, Duration::from_secs(30)).await.is_some(), "a silent connection stayed open");

    // A keep-alive connection left idle after a request.
    let mut kept = connect(&server).await;
    kept.write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").await.unwrap();
    let answer =
        until_closed(&mut kept, Duration::from_secs(30)).await.expect("an idle keep-alive connection stayed open");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "it was served first");

    // A request head sent a byte at a time, each within the idle timeout.
    let mut slow = connect(&server).await;
    slow.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    let mut closed = false;
    for _ in 0..60 {
        if slow.write_all(b"x").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        // Anything read (a 408, EOF or a reset) means the server gave up on it.
        if tokio::time::timeout(Duration::from_millis(500), slow.read(&mut buf)).await.is_ok() {
            closed = true;
            break;
        }
    }
    assert!(closed, "a request head trickling in for 30 s was never cut off");
    // And the server is still serving.
    assert!(health(&server).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_wrong_ingress_key_is_refused_while_the_client_is_still_sending() {
    let server = Server::start(
        Backend::Embedded,
        "ingress_auth:\n  partner: the-right-key\n",
        &[("CONSERVER_API_TOKEN", "main-token")],
    )
    .await;
    let mut stream = connect(&server).await;
    // Announce a 32 MB body of `[0,0,…]` (which a full parse would blow up to
    // over a gigabyte), send 64 KiB of it, and wait for the answer.
    let head = "POST /vcon/external-ingress?ingress_list=partner HTTP/1.1\r\nhost: 127.0.0.1\r\n\
                content-type: application/json\r\nx-conserver-api-token: wrong-key\r\n\
                content-length: 33000000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut start = b"{\"a\":[".to_vec();
    start.extend(std::iter::repeat_n(b"0,".as_slice(), 32 * 1024).flatten());
    stream.write_all(&start).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await;
    let n =
        read.expect("no answer before the whole body was sent: the body is read before the key is checked").unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("Invalid API Key for ingress list 'partner'"), "{answer}");
}

#[tokio::test]
async fn a_body_trickling_in_past_the_body_read_timeout_gets_408_and_the_connection_is_closed() {
    // The idle timeout does not apply while a request is in flight: without the
    // body timeout this connection would be held for as long as the client likes.
    let server = Server::start(
        Backend::Embedded,
        "",
        &[("CONSERVER_HTTP_BODY_READ_TIMEOUT_SECS", "2"), ("CONSERVER_HTTP_IDLE_TIMEOUT_SECS", "1")],
    )
    .await;
    let mut stream = connect(&server).await;
    let head =
        "POST /vcon HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    // One byte every 300 ms (well inside the idle timeout) for at most 30 s.
    for _ in 0..100 {
        if stream.write_all(b" ").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if !received.is_empty() {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&received);
    assert!(answer.starts_with("HTTP/1.1 408"), "a trickling body was never cut off: {answer:?}");
    assert!(answer.contains("CONSERVER_HTTP_BODY_READ_TIMEOUT_SECS"), "{answer}");
    assert!(until_closed(&mut stream, Duration::from_secs(20)).await.is_some(), "the connection is closed");
    assert!(health(&server).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn sigterm_is_not_held_up_by_a_client_sending_slowly() {
    // Issue #17, item 3: a client trickling its head or its body once kept the
    // process from exiting at all. Exit must follow the grace period.
    let mut server = Server::start(
        Backend::Embedded,
        "",
        &[
            ("CONSERVER_SHUTDOWN_GRACE_SECS", "2"),
            ("CONSERVER_HTTP_HEADER_READ_TIMEOUT_SECS", "300"),
            ("CONSERVER_HTTP_IDLE_TIMEOUT_SECS", "300"),
            ("CONSERVER_HTTP_BODY_READ_TIMEOUT_SECS", "300"),
        ],
    )
    .await;
    let mut head = connect(&server).await;
    head.write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n").await.unwrap();
    let mut body = connect(&server).await;
    body.write_all(
        b"POST /vcon HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{",
    )
    .await
    .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..120 {
            let _ = head.write_all(b"x").await;
            let _ = body.write_all(b" ").await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    // Bounded only to detect a hang: the grace period is 2 s.
    let status = server.terminate(Duration::from_secs(30)).await;
    trickle.abort();
    let status = status.unwrap_or_else(|| panic!("no exit 30 s after SIGTERM:\n{}", server.log_text()));
    assert!(status.success(), "{status}");
    eprintln!("exited {:.1} s after SIGTERM with a 2 s grace period", started.elapsed().as_secs_f64());
}
