//! A small key-value cache private to the link: keys are namespaced by the link's
//! configured name and shared by every worker (in Redis when the host uses it).
//! Entries expire after the time to live given when they were set (at most a day;
//! 0 means a day). Values are at most 1 MiB. Native builds (unit tests) keep
//! entries in a thread-local map without expiry.

/// The value stored under `key`, unless it expired or was never set.
#[cfg(target_arch = "wasm32")]
pub fn get(key: &str) -> Option<Vec<u8>> {
    crate::bindings::vcon::conserver0_1_0::cache::get(key)
}

/// Store `value` under `key` for `ttl_secs` seconds.
#[cfg(target_arch = "wasm32")]
pub fn set(key: &str, value: &[u8], ttl_secs: u32) -> Result<(), String> {
    crate::bindings::vcon::conserver0_1_0::cache::set(key, value, ttl_secs)
}

/// Forget `key`.
#[cfg(target_arch = "wasm32")]
pub fn delete(key: &str) {
    crate::bindings::vcon::conserver0_1_0::cache::delete(key);
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static ENTRIES: std::cell::RefCell<std::collections::HashMap<String, Vec<u8>>> = Default::default();
}

/// The value stored under `key`, unless it expired or was never set.
#[cfg(not(target_arch = "wasm32"))]
pub fn get(key: &str) -> Option<Vec<u8>> {
    ENTRIES.with(|entries| entries.borrow().get(key).cloned())
}

/// Store `value` under `key` for `ttl_secs` seconds.
#[cfg(not(target_arch = "wasm32"))]
pub fn set(key: &str, value: &[u8], _ttl_secs: u32) -> Result<(), String> {
    if value.len() > 1024 * 1024 {
        return Err("cache values are at most 1048576 bytes".into());
    }
    ENTRIES.with(|entries| entries.borrow_mut().insert(key.to_string(), value.to_vec()));
    Ok(())
}

/// Forget `key`.
#[cfg(not(target_arch = "wasm32"))]
pub fn delete(key: &str) {
    ENTRIES.with(|entries| entries.borrow_mut().remove(key));
}

/// The JSON value under `key`, if present and readable.
pub fn get_json<T: serde::de::DeserializeOwned>(key: &str) -> Option<T> {
    get(key).and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// Store `value` as JSON under `key` for `ttl_secs` seconds.
pub fn set_json<T: serde::Serialize>(key: &str, value: &T, ttl_secs: u32) -> Result<(), String> {
    let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    set(key, &bytes, ttl_secs)
}
