//! `vcon:{uuid}` as RedisJSON, the way the Python server keeps it on Redis Stack.
//!
//! When the server has the JSON module (`MODULE LIST` names `ReJSON`, or — on a
//! server that hides `MODULE` — a `JSON.GET` of a missing key answers), documents
//! are written with `JSON.SET` and read with `JSON.GET` at the root path `.` (what
//! redis-py's `r.json().set/get` send), so Python and conserver processes share
//! one store during a cut-over. Reads accept both forms always: a store in
//! cut-over holds plain strings and JSON documents side by side, so a read that
//! meets the other form (`WRONGTYPE`) asks again in it. Writes in JSON form
//! replace a plain string in place, keeping its TTL where asked.
//! `CONSERVER_REDIS_JSON=off|on` overrides the detection.
//!
//! RedisJSON re-serialises a document (its own spacing and number forms): a read
//! gives the same JSON value, not necessarily the same bytes.

use redis::{RedisError, RedisResult, Value};

use crate::Ttl;
use crate::redis_conn::{Batch, Conn};

/// Whether to keep documents as RedisJSON (`CONSERVER_REDIS_JSON`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JsonMode {
    /// When the server has the JSON module (the default).
    #[default]
    Auto,
    /// Always (the server must have the module).
    On,
    /// Never: plain strings (reads still accept JSON documents).
    Off,
}

impl JsonMode {
    /// `auto`, `on`/`1`/`true`, `off`/`0`/`false` (case-insensitive; empty is `auto`).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Some(Self::Auto),
            "on" | "1" | "true" | "yes" => Some(Self::On),
            "off" | "0" | "false" | "no" => Some(Self::Off),
            _ => None,
        }
    }
}

/// How `vcon:{uuid}` is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DocumentForm {
    /// A plain string (`SET`/`GET`).
    #[default]
    Text,
    /// A RedisJSON document (`JSON.SET`/`JSON.GET`).
    Json,
}

/// The form `mode` asks for on the server behind `conn`; `Ok(None)` when
/// `mode` is `On` and the server has no JSON module.
pub(crate) async fn choose(conn: &Conn, mode: JsonMode) -> RedisResult<Option<DocumentForm>> {
    Ok(match mode {
        JsonMode::Off => Some(DocumentForm::Text),
        JsonMode::On | JsonMode::Auto if has_json_module(conn).await? => Some(DocumentForm::Json),
        JsonMode::On => None,
        JsonMode::Auto => Some(DocumentForm::Text),
    })
}

async fn has_json_module(conn: &Conn) -> RedisResult<bool> {
    if let Ok(modules) = redis::cmd("MODULE").arg("LIST").query_async::<Value>(&mut conn.clone()).await
        && format!("{modules:?}").to_ascii_lowercase().contains("rejson")
    {
        return Ok(true);
    }
    // Managed services may refuse `MODULE`; a JSON command answers where the module is.
    match redis::cmd("JSON.GET").arg("conserver:json-probe").arg(".").query_async::<Value>(&mut conn.clone()).await {
        Ok(_) => Ok(true),
        // Not reaching the server is an error; any refusal (unknown command, an
        // ACL) means no JSON here.
        Err(error) if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() => Err(error),
        Err(_) => Ok(false),
    }
}

/// Whether `error` says the key holds the other form.
pub(crate) fn is_wrong_type(error: &RedisError) -> bool {
    error.code() == Some("WRONGTYPE") || error.to_string().contains("WRONGTYPE")
}

fn json_get(key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("JSON.GET");
    cmd.arg(key).arg(".");
    cmd
}

fn json_set(key: &str, json: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("JSON.SET");
    cmd.arg(key).arg(".").arg(json);
    cmd
}

/// What sets `key`'s time to live as `ttl` asks after a write that may have kept
/// the old one (`JSON.SET` keeps it): none for [`Ttl::Keep`].
fn ttl_after_write(key: &str, ttl: Ttl) -> Option<redis::Cmd> {
    match ttl {
        Ttl::Keep => None,
        Ttl::Secs(0) => Some(redis::Cmd::persist(key)),
        Ttl::Secs(secs) => Some(redis::Cmd::expire(key, crate::clamped_ttl(secs))),
    }
}

/// A JSON answer that is not a document (not an object) is not taken as one: a
/// server whose JSON commands do not check the key's type answers them for a
/// plain string too.
fn is_document(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// Read `key` in either form, `form` first.
pub(crate) async fn get(conn: &Conn, key: &str, form: DocumentForm) -> RedisResult<Option<String>> {
    match form {
        DocumentForm::Text => match redis::Cmd::get(key).query_async::<Option<String>>(&mut conn.clone()).await {
            Err(error) if is_wrong_type(&error) => {
                json_get(key).query_async(&mut conn.clone()).await.map_err(|json_error| {
                    // Trouble reaching Redis is that; a refusal keeps the first error.
                    if json_error.is_io_error() || json_error.is_timeout() || json_error.is_connection_dropped() {
                        json_error
                    } else {
                        error
                    }
                })
            }
            other => other,
        },
        DocumentForm::Json => match json_get(key).query_async::<Option<String>>(&mut conn.clone()).await {
            Ok(Some(text)) if !is_document(&text) => {
                match redis::Cmd::get(key).query_async::<Option<String>>(&mut conn.clone()).await {
                    Err(error) if is_wrong_type(&error) => Ok(Some(text)),
                    other => other,
                }
            }
            Err(error) if is_wrong_type(&error) => redis::Cmd::get(key).query_async(&mut conn.clone()).await,
            other => other,
        },
    }
}

/// Write `json` at `key` as RedisJSON with `ttl`, replacing a plain string there.
pub(crate) async fn put(conn: &Conn, key: &str, json: &str, ttl: Ttl) -> RedisResult<()> {
    let mut batch = Batch::default();
    batch.add(json_set(key, json));
    batch.extend(ttl_after_write(key, ttl));
    match batch.run(conn).await {
        Ok(_) => Ok(()),
        Err(error) if is_wrong_type(&error) => replace_string(conn, key, json, ttl).await,
        Err(error) => Err(error),
    }
}

/// `key` holds a plain string: replace it with the JSON document in one atomic
/// step, its TTL kept for [`Ttl::Keep`]; a document RedisJSON refuses leaves the
/// string as it was.
async fn replace_string(conn: &Conn, key: &str, json: &str, ttl: Ttl) -> RedisResult<()> {
    let mode = match ttl {
        Ttl::Keep => "keep".to_string(),
        Ttl::Secs(0) => "none".to_string(),
        Ttl::Secs(secs) => crate::clamped_ttl(secs).to_string(),
    };
    REPLACE_STRING.key(key).arg(json).arg(mode).invoke_async::<i64>(&mut conn.clone()).await.map(drop)
}

/// KEYS[1] holds a plain string (or nothing): write ARGV[1] there as RedisJSON;
/// ARGV[2] is `keep` (the old TTL), `none` or a TTL in seconds.
static REPLACE_STRING: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local old = redis.call('GET', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
local set = redis.pcall('JSON.SET', KEYS[1], '.', ARGV[1])
if type(set) == 'table' and set.err then
  if old then
    redis.call('SET', KEYS[1], old)
    if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
  end
  return redis.error_reply(set.err)
end
if ARGV[2] == 'keep' then
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
elseif ARGV[2] ~= 'none' then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 1
",
    )
});

/// Write `json` at `key` as RedisJSON unless the key exists; `true` if written.
/// `JSON.SET` takes no TTL: the caller sets it, with the index, when it was.
pub(crate) async fn create(conn: &Conn, key: &str, json: &str) -> RedisResult<bool> {
    let mut set = json_set(key, json);
    set.arg("NX");
    match set.query_async::<Option<String>>(&mut conn.clone()).await {
        Ok(created) => Ok(created.is_some()),
        // A plain string is there: it exists.
        Err(error) if is_wrong_type(&error) => Ok(false),
        Err(error) => Err(error),
    }
}

/// `get` then `put` in one round trip when the key is already a JSON document
/// (or absent); the previous document, if any.
pub(crate) async fn replace(conn: &Conn, key: &str, json: &str, ttl: Ttl, then: Batch) -> RedisResult<Option<String>> {
    let mut batch = Batch::default();
    batch.add(json_get(key)).add(json_set(key, json));
    batch.extend(ttl_after_write(key, ttl));
    batch.append(then.clone());
    match batch.run(conn).await {
        Ok(replies) => {
            let previous: Option<String> = match replies.into_iter().next() {
                None | Some(Value::Nil) => None,
                Some(value) => Some(redis::from_redis_value(value)?),
            };
            Ok(previous)
        }
        Err(error) if is_wrong_type(&error) => {
            let previous = get(conn, key, DocumentForm::Json).await?;
            put(conn, key, json, ttl).await?;
            then.run(conn).await?;
            Ok(previous)
        }
        Err(error) => Err(error),
    }
}

/// What converting one `vcon:{uuid}` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// It was rewritten in the asked form (its TTL kept).
    Converted,
    /// It was in that form already.
    Already,
    /// It is gone (expired or deleted meanwhile).
    Missing,
}

/// Rewrite a plain-string document as RedisJSON, in one atomic step, keeping its
/// TTL; a document RedisJSON refuses is put back as it was and reported.
static TO_JSON: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local ok, doc = pcall(redis.call, 'GET', KEYS[1])
if not ok then return 0 end
if not doc then return -1 end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
local set = redis.pcall('JSON.SET', KEYS[1], '.', doc)
if type(set) == 'table' and set.err then
  redis.call('SET', KEYS[1], doc)
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
  return redis.error_reply('RedisJSON refused the document: ' .. set.err)
end
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
",
    )
});

/// Rewrite a RedisJSON document as a plain string, atomically, keeping its TTL.
static TO_TEXT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local ok, doc = pcall(redis.call, 'GET', KEYS[1])
if ok then
  if doc then return 0 end
  return -1
end
local ttl = redis.call('PTTL', KEYS[1])
local text = redis.call('JSON.GET', KEYS[1], '.')
redis.call('SET', KEYS[1], text)
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
",
    )
});

/// Convert `key` to `form` (see [`Conversion`]). Safe to run while conservers
/// (or Python servers) read and write the store: each key changes in one step.
pub(crate) async fn convert(conn: &Conn, key: &str, form: DocumentForm) -> RedisResult<Conversion> {
    let script = match form {
        DocumentForm::Json => &*TO_JSON,
        DocumentForm::Text => &*TO_TEXT,
    };
    let outcome: i64 = script.key(key).invoke_async(&mut conn.clone()).await?;
    Ok(match outcome {
        1 => Conversion::Converted,
        0 => Conversion::Already,
        _ => Conversion::Missing,
    })
}
