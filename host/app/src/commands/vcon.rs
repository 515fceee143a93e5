//! `conserver vcon get|put|delete`: one vCon through `GET`, `POST` and `DELETE
//! /vcon`.

use std::io::Read as _;

use anyhow::{Context, Result};
use reqwest::Method;

use super::client::ApiClient;
use crate::cli::VconAction;

/// Run one vCon action.
pub async fn run(client: &ApiClient, action: VconAction) -> Result<()> {
    match action {
        VconAction::Get { uuid } => {
            let response =
                client.send(client.request(Method::GET, &format!("/vcon/{uuid}")), "reading the vCon").await?;
            println!("{}", response.text().await.context("reading the vCon's body")?);
        }
        VconAction::Put { file, ingress_lists } => {
            let body = if file.as_os_str() == "-" {
                let mut text = Vec::new();
                std::io::stdin().read_to_end(&mut text).context("reading the vCon from stdin")?;
                text
            } else {
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let lists: Vec<(&str, &String)> = ingress_lists.iter().map(|list| ("ingress_lists", list)).collect();
            let request = client
                .request(Method::POST, "/vcon")
                .query(&lists)
                .header("content-type", "application/json")
                .body(body);
            let stored: serde_json::Value =
                client.send(request, "storing the vCon").await?.json().await.context("reading the stored vCon")?;
            let uuid = stored.get("uuid").and_then(serde_json::Value::as_str).unwrap_or("?");
            match ingress_lists.is_empty() {
                true => println!("stored {uuid}"),
                false => println!("stored {uuid} and enqueued it on {}", ingress_lists.join(", ")),
            }
        }
        VconAction::Delete { uuid } => {
            client.send(client.request(Method::DELETE, &format!("/vcon/{uuid}")), "deleting the vCon").await?;
            println!("deleted {uuid}");
        }
    }
    Ok(())
}
