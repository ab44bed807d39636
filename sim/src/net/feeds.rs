//! L4: a watch's feed carries each change of its map, in revision order, or says it may not.
//!
//! The store node's forwarders read each watch's feed from the embedded store and send it on to
//! the client. The store's code is its own specification to the linearizability check, so a feed
//! that goes silent (a second watch replacing the first one's channel: the blind-spot hunt's
//! round 16 A #5) or skips a change agrees with itself there; a replica repairs the loss at its
//! next resync and a pool's sweeps within their slack, so no rule of the parts sees it either.
//! Here the store node keeps its own record: for each open feed, the revision it last carried
//! (or the map's revision when it opened or reported a gap), and for each map the revision and
//! instant of its last commit. Two judgements, each recorded as `feed_lost`:
//!
//! - **in order**: no change skips past the revision after the feed's last, unless a gap came
//!   between or the feed carried nothing since the store's boot (the map's first commit then
//!   takes its revision from store time);
//! - **none silent**: when a map commits, every feed that was open at its previous commit and is
//!   waiting on the store (not sending) carried that commit's revision, once [`FEED_SLACK_US`]
//!   has passed since it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use keel::store::WatchEvent;

use crate::history::{History, ServerEv, Who};

/// How long a feed may take to carry a commit to its forwarder (same node, no network: a task
/// wake-up; a generous bound, so that no schedule of the forwarder's sends is judged).
const FEED_SLACK_US: u64 = 10_000;

/// The store node's record of its open feeds and of each map's last commit.
#[derive(Default)]
pub struct Feeds(Mutex<State>);

#[derive(Default)]
struct State {
    next_id: u64,
    /// By map: its last commit (revision, µs), and its open feeds by id.
    maps: BTreeMap<String, MapFeeds>,
}

#[derive(Default)]
struct MapFeeds {
    last_commit: Option<(u64, u64)>,
    open: BTreeMap<u64, Open>,
}

struct Open {
    /// The revision the feed last carried, or the map's when it opened or reported a gap.
    carried: u64,
    /// Whether the forwarder is sending (not waiting on the feed).
    sending: bool,
    /// Whose connection it serves.
    by: Who,
}

/// One open feed, unregistered when its forwarder ends (dropped with its task).
pub struct Feed {
    feeds: Arc<Feeds>,
    map: String,
    id: u64,
}

impl Feeds {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forget every feed and commit (the store booted: its feeds died with its connections).
    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    /// A watch of `map` opened for `by` while the map was at revision `rev`.
    pub fn opened(self: &Arc<Self>, map: &str, rev: u64, by: Who) -> Feed {
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        let open = Open { carried: rev, sending: false, by };
        st.maps.entry(map.to_owned()).or_default().open.insert(id, open);
        Feed { feeds: self.clone(), map: map.to_owned(), id }
    }

    /// `map` is at revision `rev` after a write (a commit if it moved). Judges that every feed
    /// open at the previous commit carried it.
    pub fn written(&self, map: &str, rev: u64, history: &History) {
        let mut st = self.lock();
        let Some(m) = st.maps.get_mut(map) else { return };
        if m.last_commit.is_some_and(|(r, _)| r == rev) {
            return;
        }
        let now = history.now_us();
        if let Some((prev, at)) = m.last_commit
            && now > at + FEED_SLACK_US
        {
            for o in m.open.values_mut().filter(|o| !o.sending && o.carried < prev) {
                let (map, by) = (map.to_owned(), o.by);
                let why = format!("the commit at revision {prev} was never carried (the feed's last: {})", o.carried);
                history.record(Who::Store, ServerEv::FeedLost { map, why, by });
                o.carried = prev; // once per loss
            }
        }
        m.last_commit = Some((rev, now));
    }
}

impl Feed {
    /// The forwarder took `ev` from the feed; `map_rev` is the map's revision now, `boot_rev` the
    /// one it had at the store's boot. Judges the order of its changes: a change past the next
    /// revision is a skip, but for the map's first commit since the boot (a feed that carried
    /// nothing newer than the boot's revision), which takes its revision from store time.
    pub fn took(&self, ev: &WatchEvent, map_rev: u64, boot_rev: u64, history: &History) {
        let mut st = self.feeds.lock();
        let Some(o) = st.maps.get_mut(&self.map).and_then(|m| m.open.get_mut(&self.id)) else { return };
        o.sending = true;
        match ev {
            WatchEvent::Gap => o.carried = map_rev,
            WatchEvent::Change(c) => {
                if c.rev > o.carried + 1 && o.carried != boot_rev {
                    let (map, by) = (self.map.clone(), o.by);
                    let why = format!("a change at revision {} after {}, with no gap between", c.rev, o.carried);
                    history.record(Who::Store, ServerEv::FeedLost { map, why, by });
                }
                o.carried = o.carried.max(c.rev);
            }
        }
    }

    /// The forwarder sent what it took and waits on the feed again.
    pub fn sent(&self) {
        let mut st = self.feeds.lock();
        if let Some(o) = st.maps.get_mut(&self.map).and_then(|m| m.open.get_mut(&self.id)) {
            o.sending = false;
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let mut st = self.feeds.lock();
        if let Some(m) = st.maps.get_mut(&self.map) {
            m.open.remove(&self.id);
        }
    }
}
