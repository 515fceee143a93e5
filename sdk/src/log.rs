//! Logging into the host's structured log. Each line is tagged by the host with the
//! link, chain and vCon uuid; the host bounds how much one call may log. In native
//! builds (a link's unit tests) lines go to stderr instead.

#[cfg(target_arch = "wasm32")]
use crate::bindings::vcon::conserver0_1_0::log::{Level, write};

#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug)]
enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

#[cfg(not(target_arch = "wasm32"))]
fn write(level: Level, message: &str) {
    eprintln!("[{level:?}] {message}");
}

/// Log at debug level.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Log at info level.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Log at warn level.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Log at error level.
pub fn error(message: &str) {
    write(Level::Error, message);
}
