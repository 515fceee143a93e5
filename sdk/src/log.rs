//! Logging into the host's structured log. Each line is tagged by the host with the
//! link, chain and vCon uuid; the host bounds how much one call may log.

use crate::bindings::vcon::conserver::log::{Level, write};

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
