//! Links' outbound HTTPS in an estate with a private CA and an egress proxy:
//! the real `webhook` link in the real host posts to a TLS server whose
//! certificate a test CA (made now with openssl) signed, trusted through
//! `CONSERVER_LINK_CA_FILE`, through a `CONNECT` proxy named by `HTTPS_PROXY`.
//! The proxy is a local stand-in for a corporate proxy (squid and the like speak
//! the same `CONNECT`); it records what it was asked to reach.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::test_ca::TestCa;
use crate::support::{Backend, Server, fresh_vcon, unique};

type Seen = Arc<Mutex<Vec<String>>>;

/// An HTTPS server with the certificate `ca` issues for localhost: it records
/// the request line of each request and answers 200.
async fn https_server(ca: &TestCa, name: &str) -> (u16, Seen) {
    let (cert, key) = ca.issue(name);
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&cert).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let head = read_head(&mut tls).await;
                record.lock().unwrap().push(head.lines().next().unwrap_or_default().to_string());
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                let _ = tls.read_exact(&mut body).await;
                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, seen)
}

/// Read up to the end of an HTTP head (bounded), byte by byte.
async fn read_head<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A `CONNECT` proxy: records each request line and tunnels to the target.
async fn connect_proxy() -> (u16, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let head = read_head(&mut client).await;
                let line = head.lines().next().unwrap_or_default().to_string();
                record.lock().unwrap().push(line.clone());
                let target = line.strip_prefix("CONNECT ").and_then(|rest| rest.split_whitespace().next());
                let Some(mut upstream) = (match target {
                    Some(target) => tokio::net::TcpStream::connect(target).await.ok(),
                    None => None,
                }) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n").await;
                    return;
                };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (port, seen)
}

fn webhook(name: &str, url: &str, allowed: &[String]) -> String {
    let allowed = allowed.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ");
    format!(
        "  {name}:\n    module: links.webhook\n    allowed_outbound_hosts: [{allowed}]\n    options:\n      webhook-urls: ['{url}']"
    )
}

#[tokio::test]
async fn links_trust_the_configured_ca_go_through_the_proxy_and_keep_their_allow_list() {
    let private_ca = TestCa::new();
    let (trusted, trusted_seen) = https_server(&private_ca, "vendor").await;
    let other_ca = TestCa::new();
    let (untrusted, untrusted_seen) = https_server(&other_ca, "impostor").await;
    let (proxy, proxy_seen) = connect_proxy().await;
    // `localhost` resolves to loopback, which a host name alone does not grant;
    // through a proxy every address it resolves to must be granted.
    let grant = |port: u16| {
        vec![format!("https://localhost:{port}"), format!("https://127.0.0.1:{port}"), format!("https://[::1]:{port}")]
    };
    let [ok_in, bad_ca_in, denied_in, egress] = ["net-ok", "net-ca", "net-deny", "net-out"].map(unique);
    let config = [
        "links:".to_string(),
        webhook("vendor", &format!("https://localhost:{trusted}/hook"), &grant(trusted)),
        webhook("impostor", &format!("https://localhost:{untrusted}/hook"), &grant(untrusted)),
        // Its allow-list names another port: the proxy must never be asked.
        webhook("denied", &format!("https://localhost:{trusted}/denied"), &grant(trusted ^ 1)),
        "chains:".into(),
        format!("  ok:\n    links: [vendor]\n    ingress_lists: [{ok_in}]\n    egress_lists: [{egress}]"),
        format!("  ca:\n    links: [impostor]\n    ingress_lists: [{bad_ca_in}]\n    egress_lists: [{egress}]"),
        format!("  deny:\n    links: [denied]\n    ingress_lists: [{denied_in}]\n    egress_lists: [{egress}]"),
    ]
    .join("\n");
    let ca_file = private_ca.ca_file();
    let proxy_url = format!("http://127.0.0.1:{proxy}");
    let env = [
        ("CONSERVER_LINK_CA_FILE", ca_file.to_str().unwrap()),
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("NO_PROXY", "example.invalid"),
    ];
    let server = Server::start(Backend::Embedded, &config, &env).await;

    let (ok_uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &ok_in).await.status(), 201);
    server.wait_for_egress(&egress, &ok_uuid, Duration::from_secs(30)).await;
    assert_eq!(trusted_seen.lock().unwrap().as_slice(), ["POST /hook HTTP/1.1"], "the vendor got the post");
    let asked = proxy_seen.lock().unwrap().clone();
    assert_eq!(
        asked.last(),
        Some(&format!("CONNECT 127.0.0.1:{trusted} HTTP/1.1")),
        "the request went through the proxy, to the address checked here: {asked:?}"
    );
    assert!(asked.iter().all(|line| !line.contains("localhost")), "the proxy is not left to resolve the name");

    let (bad_uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &bad_ca_in).await.status(), 201);
    let reason = server.wait_for_dlq(&bad_ca_in, &bad_uuid, Duration::from_secs(30)).await;
    assert!(reason["error"].as_str().unwrap_or_default().contains("webhook"), "{reason}");
    assert!(untrusted_seen.lock().unwrap().is_empty(), "a certificate from an unconfigured CA is refused");
    assert!(server.log_text().contains("TLS handshake failed"), "the log says why");

    let (denied_uuid, vcon) = fresh_vcon();
    let before = proxy_seen.lock().unwrap().len();
    assert_eq!(server.post_vcon(&vcon, &denied_in).await.status(), 201);
    server.wait_for_dlq(&denied_in, &denied_uuid, Duration::from_secs(30)).await;
    let asked = proxy_seen.lock().unwrap().clone();
    assert_eq!(asked.len(), before, "the denied link never reached the proxy: {asked:?}");
    assert!(!trusted_seen.lock().unwrap().iter().any(|line| line.contains("/denied")));
}
