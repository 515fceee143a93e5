//! `conserver dlq list|reprocess`: the DLQ through `GET /dlq` and
//! `POST /dlq/reprocess`.

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::Value;

use super::client::ApiClient;
use crate::cli::DlqAction;

/// Run one DLQ action, printing what the operator needs.
pub async fn run(client: &ApiClient, action: DlqAction) -> Result<()> {
    match action {
        DlqAction::List { ingress_list } => {
            let request = client.request(Method::GET, "/dlq").query(&[("ingress_list", &ingress_list)]);
            let response = client.send(request, "reading the DLQ").await?;
            let uuids: Vec<String> = response.json().await.context("reading the DLQ: the answer is not a uuid list")?;
            let reasons = reasons(client, &ingress_list).await;
            if uuids.is_empty() {
                println!("DLQ:{ingress_list} is empty");
            }
            for uuid in &uuids {
                match reasons.iter().find(|r| r.get("uuid").and_then(Value::as_str) == Some(uuid)) {
                    Some(reason) => println!(
                        "{uuid}\t{}\t{}",
                        reason.get("link").and_then(Value::as_str).unwrap_or("-"),
                        reason.get("error").and_then(Value::as_str).unwrap_or("-")
                    ),
                    None => println!("{uuid}"),
                }
            }
            Ok(())
        }
        DlqAction::Reprocess { ingress_list, count } => {
            let mut request = client.request(Method::POST, "/dlq/reprocess").query(&[("ingress_list", &ingress_list)]);
            if let Some(count) = count {
                request = request.query(&[("count", count)]);
            }
            let response = client.send(request, "reprocessing the DLQ").await?;
            let moved: Value = response.json().await.context("reprocessing the DLQ: unexpected answer")?;
            println!("moved {moved} vCon(s) from DLQ:{ingress_list} back to {ingress_list}");
            Ok(())
        }
    }
}

/// The reasons the server keeps for the DLQ (empty when it keeps none).
async fn reasons(client: &ApiClient, ingress_list: &str) -> Vec<Value> {
    let request = client.request(Method::GET, "/dlq").query(&[("ingress_list", ingress_list), ("detail", "true")]);
    let Ok(response) = client.send(request, "reading DLQ reasons").await else {
        return Vec::new();
    };
    response.json().await.unwrap_or_default()
}
