//! The watch feed: one pub/sub connection per watch, driven by a background task that
//! reconnects by itself and reports a gap once it is subscribed again.

use std::time::Duration;

use futures::StreamExt;
use redis::Client;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::mpsc;
use tracing::debug;

use super::RedisConfig;
use crate::error::StoreError;
use crate::observe::{self, StoreEvent};
use crate::store::{Watch, WatchEvent};

/// How often an idle feed pings Redis, so a connection that died silently is noticed.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Bounds of the reconnect backoff.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// A watch on a `RedisStore` map. Dropping it closes its connection.
#[derive(Debug)]
pub struct RedisWatch {
    rx: mpsc::Receiver<WatchEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RedisWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watch for RedisWatch {
    async fn next(&mut self) -> WatchEvent {
        match self.rx.recv().await {
            Some(ev) => ev,
            // The feed task never ends while this handle lives; if it did, report nothing more
            // rather than spin on gaps.
            None => std::future::pending().await,
        }
    }
}

struct Feed {
    client: Client,
    channel: String,
    map: String,
    config: RedisConfig,
    tx: mpsc::Sender<WatchEvent>,
    /// Changes were dropped because the consumer lagged: a gap is owed.
    owe_gap: bool,
}

impl RedisWatch {
    /// How many changes the consumer may lag behind before they are dropped and a gap is
    /// reported. Larger than the embedded store's ring
    /// ([`WATCH_BUFFER`](crate::store::memory::WATCH_BUFFER), allocated whole per map): a gap
    /// costs the consumer a whole snapshot of the map, whose read grows with the map (a job map
    /// retaining 50 000 tombstones took ~0.8 s on a loaded 2-core machine), and the changes made
    /// during that read must fit here, or the resync itself overflows the buffer and causes the
    /// next gap (with 4 096, under some 20 000 changes/s, bench_pool_peers saw one overflow turn
    /// into 47 gap resyncs of the job map in one run). The channel allocates as it fills, so a
    /// watch whose consumer keeps up holds no more than before.
    pub const BUFFER: usize = 65_536;

    /// Subscribe now (so changes after this returns are delivered), then hand the connection to
    /// a background task.
    pub(super) async fn start(
        client: Client,
        channel: String,
        map: String,
        config: RedisConfig,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(Self::BUFFER);
        let feed = Feed { client, channel, map, config, tx, owe_gap: false };
        let conn = feed.subscribe().await?;
        let task = tokio::spawn(feed.run(conn));
        Ok(RedisWatch { rx, task })
    }
}

impl Feed {
    async fn subscribe(&self) -> Result<(PubSubSink, PubSubStream), StoreError> {
        let connect = async {
            let (mut sink, stream) = self.client.get_async_pubsub().await?.split();
            sink.subscribe(&self.channel).await?;
            Ok::<_, redis::RedisError>((sink, stream))
        };
        match tokio::time::timeout(self.config.connect_timeout + self.config.op_timeout, connect).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(StoreError::Unavailable { reason: e.to_string() }),
            Err(_) => Err(StoreError::Unavailable { reason: "subscribe timed out".into() }),
        }
    }

    async fn run(mut self, mut conn: (PubSubSink, PubSubStream)) {
        loop {
            self.pump(&mut conn).await;
            if self.tx.is_closed() {
                return;
            }
            conn = self.reconnect().await;
            // Subscribed again: whatever happened in between must be resynced by the caller.
            self.owe_gap = true;
            self.pay_gap();
            observe::emit(StoreEvent::WatchResubscribed { map: (&self.map).into() });
        }
    }

    /// Deliver messages until the connection breaks or the watch is dropped.
    async fn pump(&mut self, (sink, stream): &mut (PubSubSink, PubSubStream)) {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        // A second sender, so the select's futures borrow it rather than `self`.
        let tx = self.tx.clone();
        loop {
            let owe_gap = self.owe_gap;
            tokio::select! {
                biased; // fixed poll order: tokio's per-thread select RNG would break replay
                msg = stream.next() => match msg {
                    Some(msg) => self.deliver(msg.get_payload_bytes()),
                    None => {
                        observe::emit(StoreEvent::WatchDisconnected { map: (&self.map).into() });
                        return;
                    }
                },
                _ = ping.tick() => {
                    let alive = tokio::time::timeout(self.config.op_timeout, sink.ping::<redis::Value>()).await;
                    if !matches!(alive, Ok(Ok(_))) {
                        observe::emit(StoreEvent::WatchUnresponsive { map: (&self.map).into() });
                        return;
                    }
                }
                permit = tx.reserve(), if owe_gap => match permit {
                    Ok(p) => {
                        p.send(WatchEvent::Gap);
                        self.owe_gap = false;
                    }
                    Err(_) => return,
                },
                _ = tx.closed() => return,
            }
        }
    }

    async fn reconnect(&self) -> (PubSubSink, PubSubStream) {
        let mut wait = RETRY_MIN;
        loop {
            match self.subscribe().await {
                Ok(conn) => return conn,
                Err(e) => debug!(target: "keel::store::redis", map = %self.map, error = %e, "watch reconnect failed"),
            }
            tokio::time::sleep(wait).await;
            wait = next_retry(wait);
        }
    }

    fn pay_gap(&mut self) {
        if self.owe_gap && self.tx.try_send(WatchEvent::Gap).is_ok() {
            self.owe_gap = false;
        }
    }

    fn deliver(&mut self, payload: &[u8]) {
        let events = match super::decode::changes(&self.map, payload) {
            Ok(changes) => changes.into_iter().map(WatchEvent::Change).collect(),
            Err(e) => {
                debug!(target: "keel::store::redis", map = %self.map, error = %e, "unparsable change message");
                observe::emit(StoreEvent::WatchGarbage { map: (&self.map).into() });
                vec![WatchEvent::Gap]
            }
        };
        // A transaction's changes go out one by one, as if each had its own message.
        for ev in events {
            self.pay_gap();
            if self.owe_gap || self.tx.try_send(ev).is_err() {
                // Lagging consumer (or a gap still owed): drop, and owe a gap.
                self.owe_gap = true;
            }
        }
    }
}

/// The wait before the next reconnect attempt: doubled, at most `RETRY_MAX`, so a watch finds its
/// server within `RETRY_MAX` of its return however long it was gone.
fn next_retry(wait: Duration) -> Duration {
    (wait * 2).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hunt 31 A #6: a bound applied with `max` for `min` grew the waits without end, so a watch
    /// came back minutes after a long outage.
    #[test]
    fn reconnect_waits_double_up_to_their_bound() {
        let mut waits = vec![RETRY_MIN];
        for _ in 0..20 {
            waits.push(next_retry(*waits.last().unwrap_or(&RETRY_MIN)));
        }
        assert!(waits.iter().all(|w| *w <= RETRY_MAX), "{waits:?}");
        assert_eq!(waits[1], RETRY_MIN * 2, "doubles");
        assert_eq!(waits.last(), Some(&RETRY_MAX), "reaches the bound and stays: {waits:?}");
    }
}
