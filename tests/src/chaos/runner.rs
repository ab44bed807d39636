//! The runner: its own `redis-server` (AOF, `appendfsync always`), one proxy per app process, the
//! fenced register, the app processes (children of this binary), and the nemesis executing the
//! seeded plan. Every wait is bounded; every child is ended by PID when the run ends, also on an
//! error path (the fleet guard's `Drop`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::history::{Ev, Recorder};
use super::plan::{Fault, LEASE_PROCS, RMAP_PROCS, Target, WORKER_PROCS};
use super::proxy::Proxy;
use super::register::{self, LastWriter};

/// Lease TTL and worker TTL of the workloads.
pub const TTL: Duration = Duration::from_secs(1);
/// Quiet time after each heal.
pub const SETTLE: Duration = Duration::from_millis(1500);
/// Jobs dispatched per cycle (by default).
pub const JOBS_PER_CYCLE: u32 = 60;
/// Bound on Redis coming up.
const REDIS_UP_MAX: Duration = Duration::from_secs(10);
/// Bound on the first grant (the first acquisition waits out one TTL of quarantine).
const FIRST_WRITE_MAX: Duration = Duration::from_secs(20);
/// Bound on the dispatcher finishing after the last fault (its own final wait is 60 s).
const DISPATCHER_END_MAX: Duration = Duration::from_secs(75);
/// Time between the map writers' last write (SIGUSR1) and their graceful stop.
const QUIESCE: Duration = Duration::from_secs(3);
/// A graceful stop (SIGTERM) that takes longer than this is a hung stop.
pub const STOP_MAX: Duration = Duration::from_secs(10);

/// What the runner was asked to do.
#[derive(Clone, Debug)]
pub struct RunArgs {
    /// The plan.
    pub plan: Vec<Fault>,
    /// Jobs the dispatcher adds.
    pub jobs: u32,
    /// A mutant switched on in every app process.
    pub mutant: Option<String>,
    /// Where histories, logs and Redis' data go.
    pub dir: PathBuf,
}

/// What the run produced besides the histories.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// App processes whose graceful stop did not finish within [`STOP_MAX`].
    pub hung_stops: Vec<String>,
    /// `(process log, panic line)` for every "panicked at" found in a child's stderr.
    pub panics: Vec<(String, String)>,
    /// Children that exited on their own with a failure, and how.
    pub crashes: Vec<String>,
}

/// One `redis-server`.
struct Redis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    fn start(port: u16, dir: PathBuf) -> Result<Redis, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("redis dir {}: {e}", dir.display()))?;
        let mut r = Redis { port, dir, child: None };
        r.spawn()?;
        Ok(r)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))
            .map_err(|e| format!("redis log: {e}"))?;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e} (install it: apt-get install -y redis-server)"))?;
        self.child = Some(child);
        let deadline = Instant::now() + REDIS_UP_MAX;
        while self.command("PING").as_deref() != Some("+PONG") {
            if Instant::now() > deadline {
                return Err(format!("redis-server on port {} did not answer PING within {REDIS_UP_MAX:?}", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// One inline command; the first reply line.
    fn command(&self, cmd: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned())
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Delete every data file (the AOF directory), keeping the log.
    fn wipe(&self) -> Result<(), String> {
        for e in std::fs::read_dir(&self.dir).map_err(|e| format!("redis dir: {e}"))?.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == "redis.log") {
                continue;
            }
            let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            r.map_err(|e| format!("wipe {}: {e}", p.display()))?;
        }
        Ok(())
    }
}

/// One app process and its proxy.
struct Proc {
    id: String,
    role: &'static str,
    incarnation: u32,
    proxy: Proxy,
    child: Option<Child>,
}

/// Every child of the run; `Drop` ends them all by PID (SIGCONT first: a stopped process must
/// be able to die).
struct Fleet {
    redis: Redis,
    procs: Vec<Proc>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if let Some(c) = p.child.as_mut() {
                signal(c.id(), libc::SIGCONT);
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.redis.kill();
    }
}

fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: a plain kill(2) to a child we spawned and have not reaped yet.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Context the children need.
struct Env {
    exe: PathBuf,
    dir: PathBuf,
    register_port: u16,
    jobs: u32,
    dispatch_every: Duration,
    mutant: Option<String>,
}

impl Env {
    fn spawn(&self, p: &mut Proc) -> Result<(), String> {
        let err = std::fs::File::create(self.dir.join(format!("{}.{}.stderr", p.id, p.incarnation)))
            .map_err(|e| format!("stderr file: {e}"))?;
        let mut cmd = Command::new(&self.exe);
        cmd.args(["node", "--role", p.role, "--id", &p.id])
            .args(["--redis-port", &p.proxy.port().to_string()])
            .arg("--events")
            .arg(self.dir.join(format!("{}.jsonl", p.id)))
            .args(["--register-port", &self.register_port.to_string()])
            .args(["--incarnation", &p.incarnation.to_string()])
            .args(["--ttl-ms", &TTL.as_millis().to_string()])
            .args(["--jobs", &self.jobs.to_string()])
            .args(["--dispatch-every-ms", &self.dispatch_every.as_millis().to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(err));
        if let Some(m) = &self.mutant {
            cmd.args(["--mutant", m]);
        }
        p.child = Some(cmd.spawn().map_err(|e| format!("spawn {}: {e}", p.id))?);
        Ok(())
    }
}

/// Run the plan. Histories end up in `args.dir/*.jsonl`.
pub fn run(args: &RunArgs, rec: &Arc<Recorder>) -> Result<RunOutcome, String> {
    let ok = Command::new("redis-server").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !matches!(ok, Ok(s) if s.success()) {
        return Err(
            "redis-server not found: install it (apt-get install -y redis-server) or run scripts/chaos.sh".into()
        );
    }
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let (register_port, last_writer) = register::start(rec.clone()).map_err(|e| format!("register: {e}"))?;
    let redis = Redis::start(crate::free_port(), args.dir.join("redis"))?;
    let est: Duration = args.plan.iter().map(|f| fault_len(f) + SETTLE).sum();
    // Spread the jobs over the first 3/4 of the plan's estimate (heals take longer than their
    // fault: Redis restarts, reconnects), so every job is out before the final settle.
    let dispatch_every = (est * 3 / 4 / args.jobs.max(1)).clamp(Duration::from_millis(5), Duration::from_millis(500));
    let env =
        Env { exe, dir: args.dir.clone(), register_port, jobs: args.jobs, dispatch_every, mutant: args.mutant.clone() };
    let mut fleet = Fleet { redis, procs: Vec::new() };
    let roles = (0..LEASE_PROCS)
        .map(|i| (format!("lease-{i}"), "lease"))
        .chain((0..WORKER_PROCS).map(|i| (format!("worker-{i}"), "worker")))
        .chain((0..RMAP_PROCS).map(|i| (format!("rmap-{i}"), "rmap")))
        .chain([("completer-0".to_owned(), "completer"), ("dispatcher".to_owned(), "dispatcher")]);
    for (id, role) in roles {
        let proxy = Proxy::start(fleet.redis.port).map_err(|e| format!("proxy: {e}"))?;
        let mut p = Proc { id, role, incarnation: 0, proxy, child: None };
        env.spawn(&mut p)?;
        fleet.procs.push(p);
    }
    // The first grant waits out one TTL of quarantine; start the faults once someone writes.
    let deadline = Instant::now() + FIRST_WRITE_MAX;
    while last_writer.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
        if Instant::now() > deadline {
            return Err(format!("no lease holder wrote to the register within {FIRST_WRITE_MAX:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = RunOutcome::default();
    for (i, fault) in args.plan.iter().enumerate() {
        let cycle = u32::try_from(i).unwrap_or(u32::MAX);
        reap(&mut fleet, rec, &mut out, false);
        execute(&mut fleet, &env, rec, &last_writer, cycle, *fault)?;
        rec.rec(Ev::Healed { cycle });
        std::thread::sleep(SETTLE);
    }
    rec.rec(Ev::FinalSettle);
    // The map writers stop writing; their replicas must converge before their graceful stop.
    for p in fleet.procs.iter().filter(|p| p.role == "rmap") {
        if let Some(c) = &p.child {
            signal(c.id(), libc::SIGUSR1);
        }
    }
    let quiesced = Instant::now();
    // The dispatcher ends by itself once every job completed (or its final wait ran out).
    let deadline = Instant::now() + DISPATCHER_END_MAX;
    loop {
        reap(&mut fleet, rec, &mut out, false);
        let running = fleet.procs.iter().any(|p| p.role == "dispatcher" && p.child.is_some());
        if (!running && quiesced.elapsed() > QUIESCE) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Graceful stops, all at once, each bounded.
    for p in &fleet.procs {
        if let Some(c) = &p.child {
            signal(c.id(), libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + STOP_MAX;
    while fleet.procs.iter().any(|p| p.child.is_some()) && Instant::now() < deadline {
        reap(&mut fleet, rec, &mut out, true);
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in &mut fleet.procs {
        if let Some(mut c) = p.child.take() {
            out.hung_stops.push(p.id.clone());
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    drop(fleet);
    out.panics = panics(&args.dir);
    Ok(out)
}

/// How long a fault lasts before its heal.
fn fault_len(f: &Fault) -> Duration {
    let ms = match *f {
        Fault::RedisKillKeep { down_ms } | Fault::RedisKillLose { down_ms } | Fault::KillApp { down_ms, .. } => down_ms,
        Fault::ClientPause { ms } | Fault::Freeze { ms, .. } | Fault::Partition { ms, .. } => ms,
    };
    Duration::from_millis(ms)
}

/// Collect children that exited; a failure exit is a crash, and so is any exit of a lease or
/// worker process before the runner asked it to stop (`stopping`).
fn reap(fleet: &mut Fleet, rec: &Recorder, out: &mut RunOutcome, stopping: bool) {
    use std::os::unix::process::ExitStatusExt;
    for p in &mut fleet.procs {
        let Some(c) = p.child.as_mut() else { continue };
        if let Ok(Some(status)) = c.try_wait() {
            rec.rec(Ev::Exited { node: p.id.clone(), code: status.code(), signal: status.signal() });
            if !status.success() || (!stopping && p.role != "dispatcher") {
                out.crashes.push(format!("{} (incarnation {}): {status}", p.id, p.incarnation));
            }
            p.child = None;
        }
    }
}

fn resolve(fleet: &Fleet, last_writer: &LastWriter, t: Target) -> usize {
    let name = match t {
        Target::Holder => {
            last_writer.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_else(|| "lease-0".into())
        }
        Target::Lease(i) => format!("lease-{i}"),
        Target::Worker(i) => format!("worker-{i}"),
        Target::Rmap(i) => format!("rmap-{i}"),
    };
    fleet.procs.iter().position(|p| p.id == name).unwrap_or(0)
}

fn execute(
    fleet: &mut Fleet,
    env: &Env,
    rec: &Recorder,
    last_writer: &LastWriter,
    cycle: u32,
    fault: Fault,
) -> Result<(), String> {
    let len = fault_len(&fault);
    let target = match fault {
        Fault::Freeze { target, .. } | Fault::KillApp { target, .. } | Fault::Partition { target, .. } => {
            Some(resolve(fleet, last_writer, target))
        }
        _ => None,
    };
    let name = target.map(|i| fleet.procs[i].id.clone());
    println!("cycle {cycle:>3}: {fault:?}{}", name.as_deref().map(|n| format!(" -> {n}")).unwrap_or_default());
    rec.rec(Ev::Fault { cycle, fault, target: name.clone() });
    let node = name.unwrap_or_default();
    match (fault, target) {
        (Fault::RedisKillKeep { .. } | Fault::RedisKillLose { .. }, _) => {
            fleet.redis.kill();
            rec.rec(Ev::RedisDown);
            std::thread::sleep(len);
            let data = matches!(fault, Fault::RedisKillKeep { .. });
            if !data {
                fleet.redis.wipe()?;
            }
            fleet.redis.spawn()?;
            rec.rec(Ev::RedisUp { data });
        }
        (Fault::ClientPause { ms }, _) => {
            let r = fleet.redis.command(&format!("CLIENT PAUSE {ms}"));
            if r.as_deref() != Some("+OK") {
                return Err(format!("CLIENT PAUSE answered {r:?}"));
            }
            rec.rec(Ev::RedisPaused { ms });
            std::thread::sleep(len);
        }
        (Fault::Freeze { .. }, Some(i)) => {
            if let Some(c) = &fleet.procs[i].child {
                signal(c.id(), libc::SIGSTOP);
                rec.rec(Ev::Frozen { node: node.clone() });
                std::thread::sleep(len);
                signal(c.id(), libc::SIGCONT);
                rec.rec(Ev::Thawed { node });
            }
        }
        (Fault::KillApp { .. }, Some(i)) => {
            let p = &mut fleet.procs[i];
            if let Some(mut c) = p.child.take() {
                let _ = c.kill();
                let _ = c.wait();
                rec.rec(Ev::Killed { node });
            }
            std::thread::sleep(len);
            p.incarnation += 1;
            env.spawn(p)?;
        }
        (Fault::Partition { .. }, Some(i)) => {
            fleet.procs[i].proxy.partition(true);
            rec.rec(Ev::Partition { node: node.clone(), on: true });
            std::thread::sleep(len);
            fleet.procs[i].proxy.partition(false);
            rec.rec(Ev::Partition { node, on: false });
        }
        _ => {}
    }
    Ok(())
}

/// Every "panicked at" line in the children's stderr files.
pub fn panics(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "stderr") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for l in text.lines().filter(|l| l.contains("panicked at")) {
            out.push((p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), l.to_owned()));
        }
    }
    out.sort();
    out
}
