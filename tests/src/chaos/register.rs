//! The fenced resource the lease workload protects: a register hosted by the runner over loopback
//! TCP. A write `key fence node` is accepted only if `fence` ≥ the highest fence accepted for the
//! key so far; every write, accepted or rejected, is recorded with its monotonic instant, under
//! the same lock that decides it (so the record's order is the decision's order).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::history::{Ev, Recorder};

/// A line longer than this is garbage: the connection is closed.
const LINE_MAX: usize = 256;

/// The node whose write the register accepted last (the believed holder), if any.
pub type LastWriter = Arc<Mutex<Option<String>>>;

/// Start the register on a free loopback port; returns the port and its last accepted writer.
/// Its threads end with the runner.
pub fn start(rec: Arc<Recorder>) -> std::io::Result<(u16, LastWriter)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let highest: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let last: LastWriter = Arc::default();
    let l = last.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (rec, highest, last) = (rec.clone(), highest.clone(), l.clone());
            std::thread::spawn(move || serve(conn, &rec, &highest, &last));
        }
    });
    Ok((port, last))
}

fn serve(conn: TcpStream, rec: &Recorder, highest: &Mutex<BTreeMap<String, u64>>, last: &LastWriter) {
    let Ok(mut out) = conn.try_clone() else { return };
    let mut lines = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(n) if n > LINE_MAX => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let (Some(key), Some(fence), Some(node)) = (parts.next(), parts.next(), parts.next()) else { return };
        let Ok(fence) = fence.parse::<u64>() else { return };
        let reply = {
            let mut h = highest.lock().unwrap_or_else(|p| p.into_inner());
            let top = h.entry(key.to_owned()).or_insert(0);
            let accepted = fence >= *top;
            if accepted {
                *top = fence;
                *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(node.to_owned());
            }
            rec.rec_as("register", Ev::RegWrite { key: key.into(), writer: node.into(), fence, accepted });
            if accepted { "OK\n".to_owned() } else { format!("NO {top}\n") }
        };
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// A client of the register (one connection, re-opened after an error).
#[derive(Debug)]
pub struct Client {
    port: u16,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl Client {
    /// A client of the register on `port`.
    pub fn new(port: u16) -> Self {
        Client { port, conn: None }
    }

    /// Write under `fence`: `Some(true)` accepted, `Some(false)` rejected, `None` unreachable.
    pub fn write(&mut self, key: &str, fence: u64, node: &str) -> Option<bool> {
        if self.conn.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
            s.set_nodelay(true).ok()?;
            let r = BufReader::new(s.try_clone().ok()?);
            self.conn = Some((s, r));
        }
        let (s, r) = self.conn.as_mut()?;
        let mut reply = String::new();
        let ok = s.write_all(format!("{key} {fence} {node}\n").as_bytes()).is_ok() && r.read_line(&mut reply).is_ok();
        if !ok || reply.is_empty() {
            self.conn = None;
            return None;
        }
        Some(reply.starts_with("OK"))
    }
}
