//! Where keel's Redis commands per job go, by pool phase: a `MONITOR` of one keel round, each
//! client command grouped with the commands its Lua script ran (Redis counts both in
//! `total_commands_processed`), the group named by what it wrote or read.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Commands per phase, and per command name within it.
pub type Tally = BTreeMap<&'static str, BTreeMap<String, u64>>;

/// A `MONITOR` connection counting into a [`Tally`] until [`Monitor::finish`].
pub struct Monitor {
    stream: TcpStream,
    tally: Arc<Mutex<Tally>>,
    reader: JoinHandle<()>,
}

impl Monitor {
    /// Start monitoring the server at `127.0.0.1:port`.
    pub fn start(port: u16) -> std::io::Result<Self> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.write_all(b"MONITOR\r\n")?;
        let mut lines = BufReader::new(stream.try_clone()?);
        let mut first = String::new();
        lines.read_line(&mut first)?; // +OK
        let tally = Arc::new(Mutex::new(Tally::new()));
        let out = tally.clone();
        let reader = std::thread::spawn(move || {
            let mut group: Vec<Vec<String>> = Vec::new();
            for line in lines.lines() {
                let Ok(line) = line else { break };
                let Some((client, args)) = parse(&line) else { continue };
                if client != "lua" && !group.is_empty() {
                    add(&mut out.lock().unwrap_or_else(|p| p.into_inner()), &group);
                    group.clear();
                }
                group.push(args);
            }
            if !group.is_empty() {
                add(&mut out.lock().unwrap_or_else(|p| p.into_inner()), &group);
            }
        });
        Ok(Monitor { stream, tally, reader })
    }

    /// Stop monitoring and return what was counted.
    pub fn finish(self) -> Tally {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let _ = self.reader.join();
        std::mem::take(&mut *self.tally.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// `<ts> [<db> <client>] "arg" "arg" …` → (client, args).
fn parse(line: &str) -> Option<(String, Vec<String>)> {
    let (_, rest) = line.split_once(" [")?;
    let (who, rest) = rest.split_once("] ")?;
    let client = who.split_once(' ').map_or(who, |(_, c)| c).to_owned();
    let mut args = Vec::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => arg.extend(chars.next()),
                '"' => break,
                c => arg.push(c),
            }
        }
        args.push(arg);
    }
    (!args.is_empty()).then_some((client, args))
}

/// The map a hash key belongs to (`…:jobs` → `jobs`).
fn map_of(key: &str) -> &str {
    key.trim_end_matches('}').rsplit(':').next().unwrap_or("")
}

/// Name the group (a client command and its script's commands) by pool phase.
fn phase(group: &[Vec<String>]) -> &'static str {
    let name = |a: &[String]| a.first().map(|s| s.to_ascii_lowercase()).unwrap_or_default();
    let client = name(&group[0]);
    if client == "time" {
        return "store time (dispatch, completion)";
    }
    if !client.starts_with("evalsha") && !client.starts_with("eval") {
        return "other (connect, subscribe, script load, INFO)";
    }
    let mut snapshot: Option<String> = None;
    let mut writes: Vec<(String, String, String)> = Vec::new(); // (op, map, field prefix)
    for a in &group[1..] {
        let (Some(key), op) = (a.get(1), name(a)) else { continue };
        match op.as_str() {
            "hgetall" => snapshot = Some(map_of(key).to_owned()),
            "hset" | "hdel" => {
                // One write per field: `HSET key f1 v1 f2 v2 …`, `HDEL key f1 f2 …`.
                let step = if op == "hset" { 2 } else { 1 };
                for f in a.iter().skip(2).step_by(step) {
                    let field = f.split_once('/').map_or(f.as_str(), |(p, _)| p);
                    writes.push((op.clone(), map_of(key).to_owned(), field.to_owned()));
                }
            }
            _ => {}
        }
    }
    if let Some(map) = snapshot {
        return match map.as_str() {
            "keepalive" => "keep-alive snapshots (follower, sweeps, dispatch fallback)",
            // The job map whole (every tombstone of the dedup window): a table rebuild or a feed
            // resync, whose cost grows with what is retained, not the sweeps' small maps.
            "jobs" => "job map snapshots (table rebuild, feed resync)",
            _ => "sweep: map snapshots",
        };
    }
    let has = |op: &str, map: &str, prefix: &str| writes.iter().any(|w| w.0 == op && w.1 == map && w.2 == prefix);
    match writes.first().map(|w| w.1.as_str()) {
        None => "reads (map_get) and refused writes",
        Some("jobs") if has("hset", "jobs", "j") && has("hset", "jobs", "p") && writes.len() == 2 => {
            "dispatch: add job"
        }
        Some("jobs") if writes.len() == 1 && has("hdel", "jobs", "p") => "start: ack",
        Some("jobs") if has("hset", "jobs", "d") => "completion: fenced record",
        Some("jobs") if writes.iter().all(|w| w.0 == "hdel" && w.2 == "d") => "sweep: tombstone expiry",
        Some("jobs") => "jobs: moves and other writes",
        Some("completions") => "completion: feed (completer)",
        Some("keepalive") => "keep-alive beats",
        Some(_) => "registration, cleanup, meta",
    }
}

fn add(tally: &mut Tally, group: &[Vec<String>]) {
    let row = tally.entry(phase(group)).or_default();
    for a in group {
        *row.entry(a.first().map(|s| s.to_ascii_lowercase()).unwrap_or_default()).or_default() += 1;
    }
}

/// One line per phase: commands per job, and which.
pub fn print(tally: &Tally, jobs: usize) {
    let per = |n: u64| n as f64 / jobs as f64;
    let total: u64 = tally.values().flat_map(|r| r.values()).sum();
    println!("  keel commands per job by phase (MONITOR, script-internal commands included): {:.1} in all", per(total));
    let mut rows: Vec<_> = tally.iter().map(|(p, r)| (r.values().sum::<u64>(), *p, r)).collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    for (n, phase, r) in rows {
        let mut cmds: Vec<_> = r.iter().collect();
        cmds.sort_by_key(|c| std::cmp::Reverse(*c.1));
        // Counts as well: a rare but costly call (a whole-map snapshot) rounds to 0.00 per job.
        let cmds: Vec<String> = cmds.iter().map(|(c, n)| format!("{c} {:.2} ({n})", per(**n))).collect();
        println!("    {:6.2}  {phase}: {}", per(n), cmds.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_parse() {
        let (c, a) = parse(r#"1796070887.261173 [0 127.0.0.1:47302] "evalsha" "ab\"c" "2""#).expect("line");
        assert_eq!(
            (c.as_str(), a),
            ("127.0.0.1:47302", vec!["evalsha".to_owned(), "ab\"c".to_owned(), "2".to_owned()])
        );
        let (c, a) = parse(r#"1.2 [0 lua] "HSET" "bench-pool:map:keel:pool:p:jobs" "j/job-1" "x""#).expect("line");
        assert_eq!((c.as_str(), map_of(&a[1])), ("lua", "jobs"));
        assert!(parse("+OK").is_none());
    }

    #[test]
    fn groups_are_named_by_what_they_wrote() {
        let g = |lines: &[&[&str]]| -> Vec<Vec<String>> {
            lines.iter().map(|l| l.iter().map(|s| (*s).to_owned()).collect()).collect()
        };
        let dispatch = g(&[&["evalsha"], &["HSET", "x:jobs", "j/a", "v"], &["HSET", "x:jobs", "p/a", "v"]]);
        assert_eq!(phase(&dispatch), "dispatch: add job");
        // The same commit with one multi-field HSET (and HDEL), as the map scripts send since
        // issue #13 item 2 step 2.
        assert_eq!(phase(&g(&[&["evalsha"], &["HSET", "x:jobs", "j/a", "v", "p/a", "v"]])), "dispatch: add job");
        let done = g(&[&["evalsha"], &["HSET", "x:jobs", "d/a", "t"], &["HDEL", "x:jobs", "j/a", "p/a"]]);
        assert_eq!(phase(&done), "completion: fenced record");
        assert_eq!(phase(&g(&[&["evalsha"], &["HDEL", "x:jobs", "p/a"]])), "start: ack");
        let done =
            g(&[&["evalsha"], &["HDEL", "x:jobs", "j/a"], &["HDEL", "x:jobs", "p/a"], &["HSET", "x:jobs", "d/a", "t"]]);
        assert_eq!(phase(&done), "completion: fenced record");
        assert_eq!(phase(&g(&[&["TIME"]])), "store time (dispatch, completion)");
        assert_eq!(
            phase(&g(&[&["evalsha"], &["HGETALL", "x:keepalive"]])),
            "keep-alive snapshots (follower, sweeps, dispatch fallback)"
        );
        assert_eq!(
            phase(&g(&[&["evalsha"], &["HGETALL", "x:jobs"]])),
            "job map snapshots (table rebuild, feed resync)"
        );
    }
}
