//! Typed observation: every protocol event of keel, one enum per part, through one seam.
//!
//! The core never formats a protocol event itself: it builds a typed [`Event`] (fields borrowed
//! from its own state, so building one costs nothing) and hands it to [`emit`]. What happens then
//! depends on the observer installed on the current thread:
//!
//! - none (production, the default): the event is logged through `tracing` exactly as before the
//!   seam existed — same target, level, message and fields, including the `kind` field
//!   ([`log`]);
//! - an [`Observer`] installed with [`set_thread_observer`]: it receives the event instead. The
//!   simulator installs one per simulated run (madsim runs a whole simulation on one thread) and
//!   records the typed events, so its checkers match on variants, never on strings: renaming or
//!   removing an event breaks the checker's build.
//!
//! An event borrows; [`Event::to_static`] makes an owned copy for an observer that keeps it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

mod completer;
mod lease;
mod lifecycle;
mod pool;
mod rmap;
mod store;

pub use completer::CompleterEvent;
pub use lease::LeaseEvent;
pub use lifecycle::LifecycleEvent;
pub use pool::{MoveKind, PoolEvent, StaleOp};
pub use rmap::{ResyncReason, RmapEvent};
pub use store::StoreEvent;

/// A text field of an event: borrowed from the emitter, formatted lazily, or owned.
#[derive(Clone)]
pub enum Text<'a> {
    /// A borrowed string.
    Str(&'a str),
    /// A value shown with `Display` (errors), formatted only if someone looks.
    Display(&'a (dyn fmt::Display + Sync)),
    /// A value shown with `Debug` (lists), formatted only if someone looks.
    Debug(&'a (dyn fmt::Debug + Sync)),
    /// An owned string (events kept by an observer).
    Owned(Box<str>),
}

impl<'a> Text<'a> {
    /// Show `v` with `Display`.
    pub fn display(v: &'a (dyn fmt::Display + Sync)) -> Self {
        Text::Display(v)
    }

    /// Show `v` with `Debug`.
    pub fn debug(v: &'a (dyn fmt::Debug + Sync)) -> Self {
        Text::Debug(v)
    }

    /// The text (formats a lazy value).
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            Text::Str(s) => Cow::Borrowed(s),
            Text::Owned(s) => Cow::Borrowed(s),
            Text::Display(v) => Cow::Owned(v.to_string()),
            Text::Debug(v) => Cow::Owned(format!("{v:?}")),
        }
    }

    /// An owned copy.
    pub fn to_static(&self) -> Text<'static> {
        Text::Owned(self.as_str().into())
    }

    /// The text without formatting: `None` for a lazy value (never for an owned copy).
    pub fn as_plain(&self) -> Option<&str> {
        match self {
            Text::Str(s) => Some(s),
            Text::Owned(s) => Some(s),
            Text::Display(_) | Text::Debug(_) => None,
        }
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text::Str(s)
    }
}

impl<'a> From<&'a String> for Text<'a> {
    fn from(s: &'a String) -> Self {
        Text::Str(s)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Text::Str(s) => f.write_str(s),
            Text::Owned(s) => f.write_str(s),
            Text::Display(v) => v.fmt(f),
            Text::Debug(v) => write!(f, "{v:?}"),
        }
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.as_str() == o.as_str()
    }
}

impl Eq for Text<'_> {}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}

impl Hash for Text<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h);
    }
}

// A text field is written as its string and read back as an owned copy (a history read by a
// checker in another process).
#[cfg(feature = "serde")]
impl serde::Serialize for Text<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Text<'_> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Text::Owned(s.into_boxed_str()))
    }
}

/// A field value of an event: shown in one line, copied into an owned event.
pub trait Field {
    /// The owned form.
    type Static;
    /// An owned copy.
    fn to_static(&self) -> Self::Static;
    /// Show it in a line.
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

macro_rules! plain_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            type Static = $t;
            fn to_static(&self) -> $t {
                *self
            }
            fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{self}")
            }
        }
    )*};
}
plain_field!(u64, u32, usize, i64, bool);

impl Field for String {
    type Static = String;
    fn to_static(&self) -> String {
        self.clone()
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

macro_rules! debug_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            type Static = $t;
            fn to_static(&self) -> $t {
                *self
            }
            fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{self:?}")
            }
        }
    )*};
}
debug_field!(crate::error::Outcome, crate::lease::LostReason);

impl Field for Text<'_> {
    type Static = Text<'static>;
    fn to_static(&self) -> Text<'static> {
        Text::to_static(self)
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl<T: Field> Field for Vec<T> {
    type Static = Vec<T::Static>;
    fn to_static(&self) -> Self::Static {
        self.iter().map(Field::to_static).collect()
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            v.show(f)?;
        }
        Ok(())
    }
}

impl<T: Field> Field for Option<T> {
    type Static = Option<T::Static>;
    fn to_static(&self) -> Self::Static {
        self.as_ref().map(Field::to_static)
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Some(v) => v.show(f),
            None => f.write_str("-"),
        }
    }
}

/// Defines an event enum: its variants, their `kind` names, an owned copy (for enums with a
/// lifetime), and a one-line form (`kind field=value …`) for timelines. Exported (hidden) so the
/// simulator defines its own events the same way; use it as `keel::observe::events!`.
#[doc(hidden)]
#[macro_export]
macro_rules! __keel_events {
    (
        $(#[$m:meta])*
        pub enum $name:ident<$lt:lifetime> {
            $( $(#[$vm:meta])* $var:ident { $( $f:ident : $t:ty ),* $(,)? } = $kind:literal, )*
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name<$lt> {
            $( $(#[$vm])* $var { $( #[allow(missing_docs)] $f: $t ),* }, )*
        }

        impl<$lt> $name<$lt> {
            /// The event's name (the `kind` field of its log line).
            pub fn kind(&self) -> &'static str {
                match self { $( Self::$var { .. } => $kind, )* }
            }

            /// An owned copy.
            pub fn to_static(&self) -> $name<'static> {
                match self {
                    $( Self::$var { $( $f ),* } => $name::$var { $( $f: $crate::observe::Field::to_static($f) ),* }, )*
                }
            }

            fn fields(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $( Self::$var { $( $f ),* } => {
                        $( f.write_str(concat!(" ", stringify!($f), "="))?; $crate::observe::Field::show($f, f)?; )*
                        Ok(())
                    } )*
                }
            }
        }

        impl std::fmt::Display for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.kind())?;
                self.fields(f)
            }
        }
    };
    (
        $(#[$m:meta])*
        pub enum $name:ident {
            $( $(#[$vm:meta])* $var:ident { $( $f:ident : $t:ty ),* $(,)? } = $kind:literal, )*
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vm])* $var { $( #[allow(missing_docs)] $f: $t ),* }, )*
        }

        impl $name {
            /// The event's name.
            pub fn kind(&self) -> &'static str {
                match self { $( Self::$var { .. } => $kind, )* }
            }

            fn fields(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $( Self::$var { $( $f ),* } => {
                        $( f.write_str(concat!(" ", stringify!($f), "="))?; $crate::observe::Field::show($f, f)?; )*
                        Ok(())
                    } )*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.kind())?;
                self.fields(f)
            }
        }
    };
}
pub use crate::__keel_events as events;

/// One protocol event of keel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Event<'a> {
    /// The store (memory store, Redis watch feeds).
    Store(StoreEvent<'a>),
    /// Lease ownership.
    Lease(LeaseEvent<'a>),
    /// Replicated maps.
    Rmap(RmapEvent<'a>),
    /// The worker pool.
    Pool(PoolEvent<'a>),
    /// The completer and its subscription manager.
    Completer(CompleterEvent<'a>),
    /// Supervised services.
    Lifecycle(LifecycleEvent<'a>),
}

impl Event<'_> {
    /// An owned copy.
    pub fn to_static(&self) -> Event<'static> {
        match self {
            Event::Store(e) => Event::Store(e.to_static()),
            Event::Lease(e) => Event::Lease(e.to_static()),
            Event::Rmap(e) => Event::Rmap(e.to_static()),
            Event::Pool(e) => Event::Pool(e.to_static()),
            Event::Completer(e) => Event::Completer(e.to_static()),
            Event::Lifecycle(e) => Event::Lifecycle(e.to_static()),
        }
    }
}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Store(e) => e.fmt(f),
            Event::Lease(e) => e.fmt(f),
            Event::Rmap(e) => e.fmt(f),
            Event::Pool(e) => e.fmt(f),
            Event::Completer(e) => e.fmt(f),
            Event::Lifecycle(e) => e.fmt(f),
        }
    }
}

macro_rules! into_event {
    ($($part:ident => $var:ident),*) => {$(
        impl<'a> From<$part<'a>> for Event<'a> {
            fn from(e: $part<'a>) -> Self {
                Event::$var(e)
            }
        }
    )*};
}
into_event!(StoreEvent => Store, LeaseEvent => Lease, RmapEvent => Rmap, PoolEvent => Pool,
    CompleterEvent => Completer, LifecycleEvent => Lifecycle);

/// Receives every event emitted on the thread it is installed on.
pub trait Observer {
    /// One event, synchronously, at the moment the core emits it.
    fn event(&self, e: &Event<'_>);
}

thread_local! {
    static OBSERVER: RefCell<Option<Rc<dyn Observer>>> = const { RefCell::new(None) };
}

/// Install `observer` for events emitted on this thread (`None`: back to logging). Returns the
/// one it replaces, so a caller can put it back.
pub fn set_thread_observer(observer: Option<Rc<dyn Observer>>) -> Option<Rc<dyn Observer>> {
    OBSERVER.with(|o| std::mem::replace(&mut *o.borrow_mut(), observer))
}

/// A duration as an event's microseconds (saturating: a config may hold `Duration::MAX`).
pub(crate) fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Emit one event: to this thread's observer if one is installed, else to `tracing` ([`log`]).
pub fn emit<'a>(e: impl Into<Event<'a>>) {
    let e = e.into();
    // Metrics are recorded here, from the typed event, whoever observes it (a no-op without a
    // recorder installed: see `keel::metrics`).
    crate::metrics::record(&e);
    // Cloned out of the cell so an observer may itself emit or swap observers.
    match OBSERVER.with(|o| o.borrow().clone()) {
        Some(o) => o.event(&e),
        None => log(&e),
    }
}

/// Log one event through `tracing`, as keel always has (target `keel::<part>`, the event's
/// level, message and fields, with a `kind` field naming it).
pub fn log(e: &Event<'_>) {
    match e {
        Event::Store(e) => store::log(e),
        Event::Lease(e) => lease::log(e),
        Event::Rmap(e) => rmap::log(e),
        Event::Pool(e) => pool::log(e),
        Event::Completer(e) => completer::log(e),
        Event::Lifecycle(e) => lifecycle::log(e),
    }
}

#[cfg(all(test, not(keel_loom)))]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::lease::LostReason;

    #[derive(Default)]
    struct Keep(RefCell<Vec<Event<'static>>>);

    impl Observer for Keep {
        fn event(&self, e: &Event<'_>) {
            self.0.borrow_mut().push(e.to_static());
        }
    }

    #[test]
    fn a_thread_observer_gets_typed_events_and_can_be_removed() {
        let keep = Rc::new(Keep::default());
        let before = set_thread_observer(Some(keep.clone()));
        let err = crate::StoreError::Timeout { op: "lease_renew" };
        let owner = String::from("n1");
        emit(LeaseEvent::RenewFailed {
            lease: "leader".into(),
            owner: (&owner).into(),
            error: Text::display(&err),
            took_us: 5_000,
        });
        emit(LeaseEvent::Lost {
            lease: "leader".into(),
            owner: (&owner).into(),
            fence: 7,
            reason: LostReason::Deadline,
        });
        set_thread_observer(before);
        emit(LeaseEvent::Released { lease: "leader".into(), owner: (&owner).into() }); // logged, not kept
        let got = keep.0.borrow();
        assert_eq!(got.len(), 2);
        let Event::Lease(LeaseEvent::RenewFailed { error, .. }) = &got[0] else { panic!("{:?}", got[0]) };
        assert_eq!(error.as_plain(), Some(err.to_string().as_str()), "an owned copy formats the lazy value once");
        assert_eq!(
            got[1].to_string(),
            "lost lease=leader owner=n1 fence=7 reason=Deadline",
            "one line: kind, then the fields in order"
        );
        assert_eq!(got[1].to_static(), got[1]);
    }

    /// The lines operators alert on (docs/operations.md, "Observability") are logged at warn or
    /// above, on the part's target, with the event's kind: the simulator reads typed events, not
    /// these lines, so a level lowered to debug (round 28 B #12: `retry_budget_exhausted`) or a
    /// kind misspelt would pass every sweep.
    #[cfg(feature = "testkit")]
    #[test]
    fn alerts_log_at_warn_or_above_with_their_kind() {
        let err = crate::StoreError::Timeout { op: "x" };
        let alerts: Vec<(Event<'_>, &str)> = vec![
            (
                LeaseEvent::Lost { lease: "l".into(), owner: "n".into(), fence: 1, reason: LostReason::Deadline }
                    .into(),
                "keel::lease",
            ),
            (
                LeaseEvent::Quarantined { lease: "l".into(), owner: "n".into(), remaining_ms: 1, took_us: 1 }.into(),
                "keel::lease",
            ),
            (
                LeaseEvent::StoreErrors {
                    lease: "l".into(),
                    owner: "n".into(),
                    op: "renew".into(),
                    count: 1,
                    total: 1,
                    permanent: true,
                    error: Text::display(&err),
                }
                .into(),
                "keel::lease",
            ),
            (
                PoolEvent::DataLoss { pool: "p".into(), old_epoch: "a".into(), new_epoch: None, took_us: 1 }.into(),
                "keel::pool",
            ),
            (PoolEvent::CompletionEventsUnflushed { error: Text::display(&err) }.into(), "keel::pool"),
            (CompleterEvent::RetryBudgetExhausted { completer: "c".into(), run: 1 }.into(), "keel::completer"),
            (CompleterEvent::Unflushed { completer: "c".into(), run: 1, unflushed: 2 }.into(), "keel::completer"),
        ];
        for (e, target) in alerts {
            let capture = crate::testkit::LogCapture::default();
            tracing::subscriber::with_default(capture.clone(), || log(&e));
            let line = capture.last().unwrap_or_default();
            let kind = match &e {
                Event::Lease(e) => e.kind(),
                Event::Pool(e) => e.kind(),
                Event::Completer(e) => e.kind(),
                other => panic!("{other:?}"),
            };
            assert!(line.level.is_some_and(|l| l <= tracing::Level::WARN), "{kind}: logged at {:?}", line.level);
            assert_eq!((line.target.as_str(), line.kind.as_str()), (target, kind), "{e:?}");
        }
    }

    #[test]
    fn kinds_are_the_log_names() {
        let e = PoolEvent::Moved {
            kind: MoveKind::OrphanRequeued,
            job: "j".into(),
            from: "w1".into(),
            worker: "w2".into(),
            attempt: 2,
            now_ms: 10,
            cleaned: "w1".into(),
        };
        assert_eq!(e.kind(), "moved");
        assert_eq!(e.to_string(), "moved kind=orphan_requeued job=j from=w1 worker=w2 attempt=2 now_ms=10 cleaned=w1");
        assert_eq!(RmapEvent::RevJump { map: "m".into(), expected: 3 }.kind(), "gap");
        assert_eq!(StoreEvent::MemoryReset {}.to_string(), "memory_reset");
    }
}
