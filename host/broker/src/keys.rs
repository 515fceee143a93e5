//! Key names, shared by both backends so they stay identical.

/// The vCon document key: `vcon:{uuid}`.
pub fn vcon_key(uuid: &str) -> String {
    format!("vcon:{uuid}")
}

/// The Python conserver's dead-letter list for an ingress list: `DLQ:{ingress}`.
pub fn dlq_list(ingress: &str) -> String {
    format!("DLQ:{ingress}")
}

/// Where the reasons for `DLQ:{ingress}` entries are kept (a hash of uuid → JSON).
pub fn dlq_reasons_key(ingress: &str) -> String {
    format!("DLQ:{ingress}:reasons")
}

/// A worker's processing list for one ingress list. The `{ingress}` hash tag puts
/// it in the same Redis Cluster slot as the ingress list, so moving between them is
/// one atomic command.
pub fn processing_list(ingress: &str, worker: &str) -> String {
    format!("{{{ingress}}}:processing:{worker}")
}
