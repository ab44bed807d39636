//! A loopback TCP proxy between one app process and Redis, owned by the runner. Partitioned, it
//! blackholes: connections stay open (new ones are accepted) but every byte is dropped both ways,
//! so requests time out as on a dead link; at heal every connection of the partition is cut, so
//! the client reconnects on a clean stream. Threads, not tasks: the proxy must keep working
//! whatever the runner's own loop is doing.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Open connections tracked per proxy (an app process holds a handful).
const CONNECTIONS_MAX: usize = 256;

/// One proxy.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    partitioned: AtomicBool,
    closed: AtomicBool,
    /// Connections accepted so far (each is numbered in order).
    accepted: AtomicU64,
    /// Connections numbered below this are stranded ([`Proxy::strand`]).
    stranded_below: AtomicU64,
    /// Both ends of every open connection, to cut them at heal and at close.
    conns: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn cut_all(&self) {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        for c in conns.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Proxy {
    /// Listen on a free loopback port and forward to `127.0.0.1:redis_port`.
    pub fn start(redis_port: u16) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.closed.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                // Redis down: refuse by closing, as a dead port would.
                let Ok(server) = TcpStream::connect_timeout(
                    &std::net::SocketAddr::from(([127, 0, 0, 1], redis_port)),
                    Duration::from_millis(200),
                ) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) =
                    (client.try_clone(), server.try_clone(), client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                {
                    let mut conns = s.conns.lock().unwrap_or_else(|p| p.into_inner());
                    if conns.len() >= CONNECTIONS_MAX {
                        // Forget the oldest (they are cut at the next heal or close anyway).
                        let _ = conns.remove(0).shutdown(Shutdown::Both);
                        let _ = conns.remove(0).shutdown(Shutdown::Both);
                    }
                    conns.push(c3);
                    conns.push(s3);
                }
                let (a, b) = (s.clone(), s.clone());
                let n = s.accepted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || pipe(client, server, a, n));
                std::thread::spawn(move || pipe(s2, c2, b, n));
            }
        });
        Ok(Proxy { port, shared })
    }

    /// The port the app process connects to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Start or end a partition. Ending it cuts every connection (their streams lost bytes).
    pub fn partition(&self, on: bool) {
        self.shared.partitioned.store(on, Ordering::SeqCst);
        if !on {
            self.shared.cut_all();
        }
    }

    /// Strand every connection open now: it stays open and drops every byte both ways for good
    /// (a half-open link: nothing refused, nothing answered), while new connections go through.
    pub fn strand(&self) {
        self.shared.stranded_below.store(self.shared.accepted.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Cut every connection (Redis was killed: the server ends are dead anyway).
    pub fn cut(&self) {
        self.shared.cut_all();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.cut_all();
        // Wake the accept loop so it sees `closed`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Forward connection number `id`'s bytes from `from` to `to`.
fn pipe(mut from: TcpStream, mut to: TcpStream, shared: Arc<Shared>, id: u64) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if shared.partitioned.load(Ordering::SeqCst) || id < shared.stranded_below.load(Ordering::SeqCst) {
            continue; // blackholed
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
