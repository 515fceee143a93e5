//! A stand-in for Redis Stack (Redis with the RedisJSON module): PyPI's
//! `fakeredis` run as a TCP server, which speaks RESP and the `JSON.*` commands
//! (`cargo xtask test` installs `fakeredis[json,lua]`). The real module is on no
//! package registry these machines reach. Known differences the tests allow for:
//! its JSON commands do not check a key's type (the code under test reads a
//! plain string with `GET` first when the answer is not a document), it has no
//! `INFO` or `MODULE LIST` (detection falls back to a `JSON.GET` probe), and it
//! re-serialises documents with Python's spacing (compare parsed JSON).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::KillOnDrop;

const SERVER: &str = r#"
import sys
from fakeredis import TcpFakeServer
server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// The stand-in on a free loopback port: the process and the port.
pub fn start() -> (KillOnDrop, u16) {
    let child = Command::new("python3")
        .args(["-c", SERVER])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 with fakeredis[json,lua] is needed (cargo xtask test installs it)");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("the stand-in prints its port");
    let port: u16 = line.trim().parse().unwrap_or_else(|_| {
        panic!("the fakeredis stand-in did not start (is `fakeredis[json,lua]` installed for python3?): {line:?}")
    });
    super::wait_for_port(port, "the fakeredis stand-in");
    (child, port)
}
