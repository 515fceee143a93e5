//! The two scripts that keep a processed vCon to two round trips on a Redis
//! server: a pop that reads the document (and trace context) with the move, and
//! the wrap-up ([`Finish`]) with the ack last. A script stops at the first
//! command that fails, so a wrap-up cut short leaves the item held and it runs
//! again. Not used on a Redis Cluster, whose keys live in many slots.
//!
//! The pop script reads `vcon:{uuid}` and `context:{list}:{uuid}`, keys it
//! cannot name beforehand (the uuid comes from the move); a server that refuses
//! that (scripts disabled, an ACL) makes the popper fall back to plain moves.

use redis::{RedisResult, Value};

use crate::redis_conn::Conn;
use crate::redis_json::DocumentForm;
use crate::{Finish, FinishStep, Popped, Prefetched, Taken, Ttl, processing_list, trace_context_key, vcon_key};

/// KEYS: (list, processing list) pairs, tried in order. ARGV[1]: `1` to take
/// the trace context too. Returns `{pair index, uuid, state, document, context}`
/// where state is `doc`, `none` (no document) or `other` (a form the worker
/// reads itself), or nil when every list is empty.
static POP: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
for k = 1, #KEYS, 2 do
  local uuid = redis.call('LMOVE', KEYS[k], KEYS[k + 1], 'LEFT', 'RIGHT')
  if uuid then
    local key = 'vcon:' .. uuid
    local state, doc = 'doc', redis.pcall('GET', key)
    if type(doc) == 'table' and doc.err then
      -- Not a string: RedisJSON (the Python server's form on Redis Stack),
      -- else a form the worker reads itself.
      doc = redis.pcall('JSON.GET', key, '.')
      if type(doc) ~= 'string' or not string.match(doc, '^%s*{') then state, doc = 'other', false end
    elseif not doc then
      state = 'none'
    end
    local context = false
    if ARGV[1] == '1' then
      context = redis.call('LPOP', 'context:' .. KEYS[k] .. ':' .. uuid)
    end
    return {(k + 1) / 2, uuid, state, doc, context}
  end
end
return false
",
    )
});

/// KEYS: every key the steps touch, the processing list last. ARGV[1]: `json`
/// or `text` (how documents are written); ARGV[2]: the uuid to ack; then the
/// steps, each an opcode, a KEYS index and its arguments:
/// `W k json ttl` (ttl `keep`, `none` or seconds), `E k secs` (0: persist),
/// `P k value` (RPUSH), `Z k score member stale` (ZADD, ZREM of the old member
/// form), `S k member ttl` (SADD, EXPIRE when ttl > 0), `C k context ttl`
/// (RPUSH + EXPIRE).
static FINISH: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local function write_json(key, json, ttl)
  local set = redis.pcall('JSON.SET', key, '.', json)
  if type(set) == 'table' and set.err then
    if not string.find(set.err, 'WRONGTYPE') then return redis.error_reply(set.err) end
    -- A plain string is there: replace it, keeping its TTL where asked.
    local old = redis.call('GET', key)
    local pttl = redis.call('PTTL', key)
    redis.call('DEL', key)
    set = redis.pcall('JSON.SET', key, '.', json)
    if type(set) == 'table' and set.err then
      redis.call('SET', key, old)
      if pttl > 0 then redis.call('PEXPIRE', key, pttl) end
      return redis.error_reply(set.err)
    end
    if ttl == 'keep' and pttl > 0 then redis.call('PEXPIRE', key, pttl) end
  end
  if ttl == 'none' then
    redis.call('PERSIST', key)
  elseif ttl ~= 'keep' then
    redis.call('EXPIRE', key, ttl)
  end
  return false
end
local i = 3
while i <= #ARGV do
  local op, key = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if op == 'W' then
    local json, ttl = ARGV[i + 2], ARGV[i + 3]
    if ARGV[1] == 'json' then
      local refused = write_json(key, json, ttl)
      if refused then return refused end
    elseif ttl == 'keep' then
      redis.call('SET', key, json, 'KEEPTTL')
    elseif ttl == 'none' then
      redis.call('SET', key, json)
    else
      redis.call('SET', key, json, 'EX', ttl)
    end
    i = i + 4
  elseif op == 'E' then
    if ARGV[i + 2] == '0' then redis.call('PERSIST', key) else redis.call('EXPIRE', key, ARGV[i + 2]) end
    i = i + 3
  elseif op == 'P' then
    redis.call('RPUSH', key, ARGV[i + 2])
    i = i + 3
  elseif op == 'Z' then
    redis.call('ZADD', key, ARGV[i + 2], ARGV[i + 3])
    redis.call('ZREM', key, ARGV[i + 4])
    i = i + 5
  elseif op == 'S' then
    redis.call('SADD', key, ARGV[i + 2])
    if ARGV[i + 3] ~= '0' then redis.call('EXPIRE', key, ARGV[i + 3]) end
    i = i + 4
  elseif op == 'C' then
    redis.call('RPUSH', key, ARGV[i + 2])
    redis.call('EXPIRE', key, ARGV[i + 3])
    i = i + 4
  else
    return redis.error_reply('conserver finish script: unknown step ' .. tostring(op))
  end
end
redis.call('LREM', KEYS[#KEYS], 1, ARGV[2])
return 1
",
    )
});

/// The keys of a script call, each named once.
#[derive(Default)]
struct Keys(Vec<String>);

impl Keys {
    /// `key`'s 1-based index, adding it if new.
    fn index(&mut self, key: String) -> String {
        let position = match self.0.iter().position(|k| *k == key) {
            Some(position) => position,
            None => {
                self.0.push(key);
                self.0.len() - 1
            }
        };
        (position + 1).to_string()
    }
}

fn ttl_arg(ttl: Ttl) -> String {
    match ttl {
        Ttl::Keep => "keep".into(),
        Ttl::Secs(0) => "none".into(),
        Ttl::Secs(secs) => crate::clamped_ttl(secs).to_string(),
    }
}

/// Run `finish` and the ack of `item` held by `worker`, in one script call.
pub(crate) async fn finish(
    conn: &Conn,
    form: DocumentForm,
    sorted_set: &str,
    worker: &str,
    item: &Popped,
    finish: &Finish,
) -> RedisResult<()> {
    let mut keys = Keys::default();
    let form = if form == DocumentForm::Json { "json" } else { "text" };
    let mut args: Vec<String> = vec![form.into(), item.uuid.clone()];
    for step in &finish.steps {
        match step {
            FinishStep::Write { uuid, json, ttl } => {
                args.extend(["W".into(), keys.index(vcon_key(uuid)), json.clone(), ttl_arg(*ttl)]);
            }
            FinishStep::Index { uuid, score, terms, terms_ttl_secs } => {
                // One member form (the bare uuid), as `index_vcon` writes it.
                let set = keys.index(sorted_set.to_string());
                args.extend(["Z".into(), set, score.to_string(), uuid.clone(), vcon_key(uuid)]);
                let ttl = if *terms_ttl_secs == 0 { 0 } else { crate::clamped_ttl(*terms_ttl_secs) };
                for term in terms {
                    args.extend(["S".into(), keys.index(term.clone()), uuid.clone(), ttl.to_string()]);
                }
            }
            FinishStep::Expire { uuid, secs } => {
                let secs = if *secs == 0 { 0 } else { crate::clamped_ttl(*secs) };
                args.extend(["E".into(), keys.index(vcon_key(uuid)), secs.to_string()]);
            }
            FinishStep::Push { list, uuid } => {
                args.extend(["P".into(), keys.index(list.clone()), uuid.clone()]);
            }
            FinishStep::TraceContext { list, uuid, context_json, ttl_secs } => {
                let key = keys.index(trace_context_key(list, uuid));
                args.extend(["C".into(), key, context_json.clone(), crate::clamped_ttl(*ttl_secs).to_string()]);
            }
        }
    }
    keys.0.push(processing_list(&item.list, worker));
    let mut invocation = FINISH.prepare_invoke();
    for key in &keys.0 {
        invocation.key(key);
    }
    for arg in &args {
        invocation.arg(arg);
    }
    invocation.invoke_async::<i64>(&mut conn.clone()).await.map(drop)
}

/// Move the head of the first non-empty list of `lists` (in that order) to
/// `worker`'s processing list for it, reading the document (and, when
/// `with_context`, the trace context) in the same call.
pub(crate) async fn pop(
    conn: &mut Conn,
    lists: &[&String],
    worker: &str,
    with_context: bool,
) -> RedisResult<Option<Taken>> {
    let mut invocation = POP.prepare_invoke();
    for list in lists {
        invocation.key(list.as_str()).key(processing_list(list, worker));
    }
    invocation.arg(if with_context { "1" } else { "0" });
    let reply: Value = invocation.invoke_async(conn).await?;
    let Value::Array(fields) = reply else { return Ok(None) };
    let mut fields = fields.into_iter();
    let (Some(index), Some(uuid), Some(state), Some(document), Some(context)) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed());
    };
    let index: usize = redis::from_redis_value(index)?;
    let Some(list) = index.checked_sub(1).and_then(|i| lists.get(i)) else { return Err(malformed()) };
    let uuid: String = redis::from_redis_value(uuid)?;
    let state: String = redis::from_redis_value(state)?;
    let document: Option<String> = redis::from_redis_value(document)?;
    let trace_context: Option<String> = redis::from_redis_value(context)?;
    let item = Popped { list: (*list).clone(), uuid };
    let document = match state.as_str() {
        "doc" => Some(document),
        "none" => Some(None),
        // Another form: the worker reads the document itself.
        _ => None,
    };
    Ok(Some(Taken { item, prefetched: Some(Prefetched { document, trace_context }) }))
}

/// Whether `error` is the server refusing scripts themselves (an ACL without
/// `@scripting`, a service without Lua) rather than a command inside one failing.
pub(crate) fn is_refusal(error: &redis::RedisError) -> bool {
    error.code() == Some("NOPERM") || error.to_string().to_ascii_lowercase().contains("unknown command")
}

fn malformed() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "unexpected reply from the pop script"))
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn a_key_named_twice_has_one_index() {
        let mut keys = Keys::default();
        assert_eq!(keys.index("vcon:a".into()), "1");
        assert_eq!(keys.index("egress".into()), "2");
        assert_eq!(keys.index("vcon:a".into()), "1");
        assert_eq!(keys.0.len(), 2);
    }
}
