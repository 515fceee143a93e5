//! Runaway links are contained: each lands its vCon in the DLQ with a reason that
//! names the link and the cause, and the next vCon on the same worker completes.

use std::time::Duration;

use crate::support::{Backend, Server, component, fresh_vcon, unique};

struct Case {
    link: &'static str,
    fixture: &'static str,
    limits: &'static str,
    options: &'static str,
    expected: &'static str,
}

const CASES: &[Case] = &[
    Case { link: "spinner", fixture: "spin", limits: "{fuel: 50000000}", options: "{}", expected: "fuel exhausted" },
    Case {
        link: "spinner_slow",
        fixture: "spin",
        limits: "{fuel: 1000000000000000, timeout_ms: 300}",
        options: "{}",
        expected: "timeout",
    },
    Case { link: "hog", fixture: "grow", limits: "{memory_bytes: 33554432}", options: "{}", expected: "memory limit" },
    Case {
        link: "crasher",
        fixture: "panic",
        limits: "{}",
        options: "{message: 'the fixture gave up on purpose'}",
        expected: "the fixture gave up on purpose",
    },
    Case { link: "sleeper", fixture: "sleep", limits: "{timeout_ms: 300}", options: "{}", expected: "timeout" },
    Case {
        link: "refuser",
        fixture: "echo",
        limits: "{}",
        options: "{mode: error, message: 'customer record missing', retryable: true}",
        expected: "link error: customer record missing",
    },
    Case { link: "liar", fixture: "echo", limits: "{}", options: "{mode: garbage}", expected: "invalid output" },
];

#[tokio::test]
async fn every_runaway_is_dead_lettered_and_the_worker_goes_on() {
    let good_in = unique("good");
    let good_out = unique("good-out");
    let mut links = format!("  tag:\n    component: {}\n", component("tag.wasm").display());
    let mut chains =
        format!("  good:\n    links: [tag]\n    ingress_lists: [{good_in}]\n    egress_lists: [{good_out}]\n");
    let mut lists = Vec::new();
    for case in CASES {
        let list = unique(case.link);
        links += &format!(
            "  {}:\n    component: {}\n    limits: {}\n    options: {}\n",
            case.link,
            component(&format!("testing/{}.wasm", case.fixture)).display(),
            case.limits,
            case.options
        );
        chains += &format!("  {}:\n    links: [{}]\n    ingress_lists: [{list}]\n", case.link, case.link);
        lists.push(list);
    }
    let config = format!("links:\n{links}chains:\n{chains}");
    let mut server = Server::start(Backend::Embedded, &config, &[]).await;

    for (case, list) in CASES.iter().zip(&lists) {
        let (bad, vcon) = fresh_vcon();
        assert_eq!(server.post_vcon(&vcon, list).await.status(), 201);
        let reason = server.wait_for_dlq(list, &bad, Duration::from_secs(60)).await;
        assert_eq!(reason["link"], case.link, "{reason}");
        let error = reason["error"].as_str().unwrap_or_default();
        assert!(error.contains(case.expected), "{}: expected `{}` in `{error}`", case.link, case.expected);
        eprintln!("{}: {error}", case.link);
        assert_eq!(reason["attempts"], 1);
        if case.fixture == "panic" {
            assert!(error.starts_with("trap:"), "{error}");
        }

        // The next vCon on the same (single) worker completes.
        let (good, vcon) = fresh_vcon();
        assert_eq!(server.post_vcon(&vcon, &good_in).await.status(), 201);
        server.wait_for_egress(&good_out, &good, Duration::from_secs(30)).await;
        assert!(server.is_running(), "the server died after {}", case.link);
        // The dead-lettered vCon is still readable for an operator.
        assert_eq!(server.get_json(&format!("/api/vcon/{bad}")).await.0, 200);
    }
}
