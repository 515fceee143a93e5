//! Test fixture: tries to read environment variables, arguments, files and
//! directories, and to open a TCP connection, then reports what happened under
//! `probe` in the returned vCon. Links must get none of these.

use conserver_link_sdk::prelude::*;
use serde_json::json;

/// The probe fixture.
pub struct Probe;

impl Link for Probe {
    fn process(_ctx: &Context, mut vcon: Vcon) -> LinkResult {
        let report = json!({
            "env_vars": std::env::vars().count(),
            "args": std::env::args().count(),
            "read_file": std::fs::read_to_string("/etc/hostname").map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
            "read_dir": std::fs::read_dir("/").map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
            "write_file": std::fs::write("escape.txt", b"x").map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
            "tcp": std::net::TcpStream::connect("127.0.0.1:6379").map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
        });
        vcon.as_map_mut().insert("probe".into(), report);
        Ok(Verdict::changed(vcon))
    }
}

export_link!(Probe);
