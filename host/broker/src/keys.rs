//! Key names, shared by both backends so they stay identical.

/// The vCon document key: `vcon:{uuid}`.
pub fn vcon_key(uuid: &str) -> String {
    format!("vcon:{uuid}")
}

/// The producer's trace context for a uuid on a list: `context:{list}:{uuid}`.
pub fn trace_context_key(list: &str, uuid: &str) -> String {
    format!("context:{list}:{uuid}")
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

/// The registry of workers: a hash of worker id → JSON list of the ingress lists it reads.
pub const WORKERS_KEY: &str = "conserver:workers";

/// A worker's heartbeat: present while the worker is alive (it expires otherwise).
pub fn heartbeat_key(worker: &str) -> String {
    format!("conserver:worker:{worker}")
}

/// The ingress list and worker of a processing list name, if it is one.
pub fn parse_processing_list(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix('{')?;
    let (ingress, worker) = rest.split_once("}:processing:")?;
    Some((ingress, worker))
}

/// The Redis Cluster hash slot of `key` (CRC16/XMODEM of the `{hash tag}` or the
/// whole key, modulo 16384), to tell whether two keys may be used together.
pub fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match bytes.iter().position(|b| *b == b'{') {
        Some(open) => match bytes[open + 1..].iter().position(|b| *b == b'}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    let mut crc: u16 = 0;
    for byte in hashed {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

#[cfg(test)]
mod tests {
    #[test]
    fn slots_match_redis_cluster_keyslot() {
        assert_eq!(super::key_slot("foo"), 12182);
        assert_eq!(super::key_slot("somekey"), 11058);
        assert_eq!(super::key_slot("{foo}:bar"), 12182);
        assert_eq!(super::key_slot("in"), super::key_slot(&super::processing_list("in", "w1")));
    }

    use super::*;

    #[test]
    fn processing_lists_round_trip() {
        let name = processing_list("incoming calls", "host-1-2");
        assert_eq!(name, "{incoming calls}:processing:host-1-2");
        assert_eq!(parse_processing_list(&name), Some(("incoming calls", "host-1-2")));
        assert_eq!(parse_processing_list("incoming"), None);
    }
}
