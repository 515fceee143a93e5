//! The link cache on Redis: each entry is a hash (`v` the value, `c` its charge,
//! `b` its expiry bucket) expiring with the entry, and each namespace has a hash
//! of bucket → bytes expiring with its last bucket. Both keys of a namespace
//! share a `{hash tag}`, so on a cluster the scripts below run on one node.

use std::sync::LazyLock;

use redis::Script;

use super::{CACHE_BUCKET_SECS, CacheWrite, charge, ttl};
use crate::Result;
use crate::error::RedisContext;
use crate::redis_conn::Conn;

/// Atomically: drop lapsed buckets, sum the rest, and store the entry only if
/// the namespace stays within the quota (a replaced live entry gives its bytes
/// back). KEYS: entry, usage. ARGV: value, ttl, quota, charge, bucket width.
/// Returns `{stored (1|0), bytes counted}`.
static SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(redis.call('TIME')[1])
local ttl, quota, charge, width = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local lapsed = math.floor(now / width)
local used = 0
local counters = redis.call('HGETALL', KEYS[2])
for i = 1, #counters, 2 do
  if tonumber(counters[i]) <= lapsed then
    redis.call('HDEL', KEYS[2], counters[i])
  else
    used = used + tonumber(counters[i + 1])
  end
end
local old = redis.call('HMGET', KEYS[1], 'c', 'b')
local old_charge = tonumber(old[1]) or 0
if used - old_charge + charge > quota then
  return {0, used}
end
if old[1] and old[2] then
  if redis.call('HINCRBY', KEYS[2], old[2], -old_charge) <= 0 then
    redis.call('HDEL', KEYS[2], old[2])
  end
end
local expires = now + ttl
local bucket = math.floor((expires + width - 1) / width)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'c', charge, 'b', bucket)
redis.call('EXPIREAT', KEYS[1], expires)
redis.call('HINCRBY', KEYS[2], bucket, charge)
local keep = redis.call('TTL', KEYS[2])
if keep < 0 or now + keep < bucket * width then
  redis.call('EXPIREAT', KEYS[2], bucket * width)
end
return {1, used - old_charge + charge}
",
    )
});

/// Atomically: forget the entry and take its bytes out of its bucket.
/// KEYS: entry, usage.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local old = redis.call('HMGET', KEYS[1], 'c', 'b')
if old[1] and old[2] then
  if redis.call('HINCRBY', KEYS[2], old[2], -tonumber(old[1])) <= 0 then
    redis.call('HDEL', KEYS[2], old[2])
  end
end
redis.call('DEL', KEYS[1])
return 1
",
    )
});

/// `namespace` for a hash tag: `%`, `{` and `}` escaped, so the tag holds all of
/// it and the mapping stays one-to-one.
fn tag(namespace: &str) -> String {
    namespace.replace('%', "%25").replace('{', "%7B").replace('}', "%7D")
}

/// An entry: `conserver:link-cache:{<namespace>}:<key>`.
pub(crate) fn entry_key(namespace: &str, key: &str) -> String {
    format!("conserver:link-cache:{{{}}}:{key}", tag(namespace))
}

/// A namespace's bytes per bucket: `conserver:link-cache-usage:{<namespace>}`.
pub(crate) fn usage_key(namespace: &str) -> String {
    format!("conserver:link-cache-usage:{{{}}}", tag(namespace))
}

pub(crate) async fn get(conn: &Conn, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
    redis::cmd("HGET")
        .arg(entry_key(namespace, key))
        .arg("v")
        .query_async(&mut conn.clone())
        .await
        .op("HGET link cache")
}

pub(crate) async fn set(
    conn: &Conn,
    namespace: &str,
    key: &str,
    value: &[u8],
    ttl_secs: u64,
    quota_bytes: u64,
) -> Result<CacheWrite> {
    let (stored, used): (i64, i64) = SET
        .key(entry_key(namespace, key))
        .key(usage_key(namespace))
        .arg(value)
        .arg(ttl(ttl_secs))
        .arg(quota_bytes.min(1 << 52)) // Lua numbers are exact below 2^53
        .arg(charge(key, value))
        .arg(CACHE_BUCKET_SECS)
        .invoke_async(&mut conn.clone())
        .await
        .op("set link cache entry")?;
    let used = u64::try_from(used).unwrap_or(0);
    Ok(if stored == 1 { CacheWrite::Stored { used } } else { CacheWrite::OverQuota { used } })
}

pub(crate) async fn delete(conn: &Conn, namespace: &str, key: &str) -> Result<()> {
    DELETE
        .key(entry_key(namespace, key))
        .key(usage_key(namespace))
        .invoke_async::<()>(&mut conn.clone())
        .await
        .op("delete link cache entry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_namespaces_apart_and_in_one_slot() {
        assert_eq!(entry_key("link:a", "x:k"), "conserver:link-cache:{link:a}:x:k");
        assert_ne!(entry_key("link:a", "x:k"), entry_key("link:a:x", "k"));
        assert_eq!(entry_key("link:{a}", "k"), "conserver:link-cache:{link:%7Ba%7D}:k");
        assert_ne!(tag("%7B"), tag("{"));
        let slot = crate::keys::key_slot;
        for namespace in ["link:a", "tracer:a", "link:{x}"] {
            assert_eq!(slot(&entry_key(namespace, "}{k")), slot(&usage_key(namespace)));
        }
    }
}
