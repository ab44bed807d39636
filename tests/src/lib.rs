//! Helpers for keel's real-Redis tests: a `redis-server` per test on a free loopback port that
//! can be killed (-9), restarted on the same port (with or without its data), frozen and
//! thawed, and is cleaned up on drop; plus the conformance [`Harness`] over it.
//!
//! When `redis-server` is missing the tests print a loud SKIPPED line, unless `CI` or
//! `KEEL_REQUIRE_REDIS` is set: then they fail and say how to install it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keel::store::{RedisConfig, RedisStore, Store};
use keel::testkit::conformance::Harness;

/// The key prefix the helpers configure.
pub const PREFIX: &str = "keel-test";

/// Whether `redis-server` can run here. Panics (with the install command) when it cannot and
/// the environment demands it; otherwise prints a loud SKIPPED line and returns false.
pub fn redis_available(test: &str) -> bool {
    let ok = Command::new("redis-server").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if matches!(ok, Ok(s) if s.success()) {
        return true;
    }
    if std::env::var_os("CI").is_some() || std::env::var_os("KEEL_REQUIRE_REDIS").is_some() {
        panic!("redis-server not found but CI/KEEL_REQUIRE_REDIS is set: apt-get install -y redis-server");
    }
    // Straight to stderr, past libtest's capture, so the skip is seen even when the test passes.
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n*** SKIPPED {test}: redis-server not found (apt-get install -y redis-server) ***\n"
    );
    false
}

/// How many fresh ports [`RedisServer::start`] tries before it gives up.
const PORT_ATTEMPTS: usize = 5;

/// One `redis-server` process owned by a test.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// The Redis a benchmark runs against: `REDIS_URL` if set, else a server of its own (kept
    /// alive by the returned guard). `None` when neither is available.
    pub fn for_bench() -> Option<(Option<Self>, String)> {
        if let Ok(url) = std::env::var("REDIS_URL") {
            return Some((None, url));
        }
        let server = Self::start("bench")?;
        let url = server.url();
        Some((Some(server), url))
    }

    /// Start a server on a free loopback port (`--save "" --appendonly no`), or `None` when
    /// `redis-server` is missing (see [`redis_available`]).
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, &[])
    }

    /// [`start`](Self::start) with extra `redis-server` arguments (kept across restarts).
    pub fn start_with(test: &str, extra: &[&str]) -> Option<Self> {
        if !redis_available(test) {
            return None;
        }
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let mut server = RedisServer { port: 0, dir: PathBuf::new(), extra, child: Mutex::new(None) };
        // A port free when picked can be taken before the server binds it (by another test's
        // server, in parallel): then the PING would be answered by someone else's server and
        // this test would freeze or kill a process that never served. Try fresh ports instead.
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            server.dir = std::env::temp_dir().join(format!("keel-redis-{}-{}", std::process::id(), server.port));
            std::fs::create_dir_all(&server.dir).expect("temp dir");
            if server.spawn() {
                return Some(server);
            }
            server.kill();
        }
        panic!("redis-server did not come up as its own process on {PORT_ATTEMPTS} ports");
    }

    /// The server's (plain TCP) port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's temporary directory (data files; a place for test certificates).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A validated config for this server with short timeouts.
    pub fn config(&self) -> RedisConfig {
        RedisConfig::builder(self.url())
            .key_prefix(PREFIX)
            .op_timeout(Duration::from_millis(300))
            .connect_timeout(Duration::from_millis(300))
            .build()
            .expect("valid config")
    }

    /// Start `redis-server` on `self.port`; whether the server answering there is this child
    /// (checked by its `process_id`, not just a PONG, since the port may be someone else's).
    fn spawn(&self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--dbfilename", "dump.rdb", "--loglevel", "warning"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn redis-server");
        let pid = child.id();
        *self.child.lock().expect("lock") = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // INFO answers while a restarted server still loads its data; PING does not.
            match self.answering_pid() {
                Some(answering) if answering != pid => return false,
                Some(_) if self.command("PING").as_deref() == Some("+PONG") => return true,
                _ => {}
            }
            let exited = self.child.lock().expect("lock").as_mut().is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
            if exited || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `process_id` of the server answering on this port (None if none answers).
    fn answering_pid(&self) -> Option<u32> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"INFO server\r\n").ok()?;
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while !text.contains("process_id:") || !text[text.find("process_id:")?..].contains("\r\n") {
            let n = s.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let rest = &text[text.find("process_id:")? + "process_id:".len()..];
        rest[..rest.find("\r\n")?].trim().parse().ok()
    }

    /// Send one inline command and return the first reply line (None if unreachable).
    pub fn command(&self, cmd: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        Some(text.lines().next().unwrap_or_default().to_owned())
    }

    /// `kill -9` the server (no shutdown, no save).
    pub fn kill(&self) {
        if let Some(mut c) = self.child.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start the server again on the same port; it loads `dump.rdb` if one was saved.
    pub fn restart(&self) {
        self.kill();
        self.respawn();
    }

    /// Start again on the same port after a [`kill`](Self::kill); fails loudly if the port was taken.
    fn respawn(&self) {
        assert!(self.spawn(), "redis-server did not come back as its own process on port {}", self.port);
    }

    /// `kill -9`, forget the data, start again: a restart without persistence.
    pub fn restart_losing_data(&self) {
        self.kill();
        let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
        self.respawn();
    }

    /// `SAVE`, `kill -9`, start again: a restart that keeps the data.
    pub fn restart_keeping_data(&self) {
        assert_eq!(self.command("SAVE").as_deref(), Some("+OK"), "SAVE");
        self.restart();
    }

    /// Send `sig` to the server (by syscall: no `kill` binary needed, so `Drop` cannot fail to
    /// thaw a frozen server for want of one). Whether it was delivered.
    fn signal(&self, sig: libc::c_int) -> bool {
        let Ok(guard) = self.child.lock() else { return false };
        let Some(c) = guard.as_ref() else { return true };
        let Ok(pid) = libc::pid_t::try_from(c.id()) else { return false };
        // SAFETY: `kill(2)` on the pid of a child we own; no memory is shared.
        unsafe { libc::kill(pid, sig) == 0 }
    }

    /// SIGSTOP: connections stay open, nothing is answered.
    pub fn freeze(&self) {
        assert!(self.signal(libc::SIGSTOP), "SIGSTOP to redis-server");
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        assert!(self.signal(libc::SIGCONT), "SIGCONT to redis-server");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run `scenario` with mutant `m` switched on for the calling thread and every thread of a fresh
/// 2-worker runtime; return the panic message if it panicked (the bug was caught), or `None`.
/// The scenario's own servers are cleaned up by their `Drop` while the panic unwinds.
#[cfg(feature = "mutants")]
pub fn panic_under_mutant<F: std::future::Future<Output = ()>>(
    m: keel::mutants::Mutant,
    scenario: F,
) -> Option<String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            keel::mutants::set(Some(m));
        })
        .build()
        .expect("runtime");
    let before = keel::mutants::set(Some(m));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(scenario)));
    keel::mutants::set(before);
    drop(rt);
    let payload = out.err()?;
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    Some(msg)
}

/// A free loopback port.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Retry `store.time_ms()` until Redis answers (after a restart the first command on the old
/// connection fails, which is correct but not what a case wants to test).
pub async fn wait_ready(store: &RedisStore) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.time_ms().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "redis did not become reachable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The conformance [`Harness`] over a private `redis-server`.
#[derive(Debug)]
pub struct RedisHarness {
    /// The server.
    pub server: RedisServer,
    store: RedisStore,
}

impl RedisHarness {
    /// Start a server and connect, or `None` when `redis-server` is missing (and not required).
    pub async fn start() -> Option<Self> {
        let server = RedisServer::start("redis conformance")?;
        let store = RedisStore::connect(server.config()).await.expect("connect to the test redis");
        Some(RedisHarness { server, store })
    }
}

impl Harness for RedisHarness {
    type S = RedisStore;

    fn store(&self) -> RedisStore {
        self.store.clone()
    }

    async fn advance(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }

    async fn lose_data(&self) {
        self.server.restart_losing_data();
        wait_ready(&self.store).await;
    }

    async fn restart_keep_data(&self) {
        self.server.restart_keeping_data();
        wait_ready(&self.store).await;
    }

    async fn checkpoint(&self) {
        assert_eq!(self.server.command("SAVE").as_deref(), Some("+OK"), "SAVE");
    }

    async fn restart_from_checkpoint(&self) {
        self.server.restart(); // kill -9: what was written after the SAVE is gone
        wait_ready(&self.store).await;
    }

    async fn freeze(&self) -> bool {
        self.server.freeze();
        true
    }

    async fn thaw(&self) {
        self.server.thaw();
        wait_ready(&self.store).await;
    }
}

pub mod bench;
pub mod chaos;
