//! A group of services started together and stopped in a declared order.

use std::sync::Arc;

use futures::future::join_all;

use super::{Service, ServiceError};
use crate::mutants::{self, Mutant};
use crate::observe::{self, LifecycleEvent, Text};
use crate::shutdown::Shutdown;

/// Services declared in **stop order** (producers → completer → subscription manager). They are
/// started in the reverse order (consumers first) and stopped one after the other in the
/// declared order, each stop awaited before the next begins: that is what lets the completer
/// drain what the producers completed and the subscription manager drain what the completer
/// emitted.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), keel::lifecycle::ServiceError> {
/// use std::sync::Arc;
/// use keel::completer::{Completer, CompleterConfig, SubscriptionManager};
/// use keel::lifecycle::ServiceGroup;
/// use keel::shutdown::Shutdown;
/// use keel::MemoryStore;
/// let completer = Arc::new(Completer::new(MemoryStore::new(), CompleterConfig::builder("jobs").build()?));
/// let subscriptions = Arc::new(SubscriptionManager::new(&completer));
/// let group = ServiceGroup::new().then(completer.clone()).then(subscriptions.clone());
/// let caller = Shutdown::new("app");
/// group.start(&caller).await?;
/// group.stop().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct ServiceGroup {
    services: Vec<Arc<dyn Service>>,
}

impl std::fmt::Debug for ServiceGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.services.iter().map(|s| s.name().to_owned())).finish()
    }
}

impl ServiceGroup {
    /// An empty group.
    pub fn new() -> Self {
        ServiceGroup::default()
    }

    /// Append `service`: it stops after every service added before it.
    pub fn then(mut self, service: Arc<dyn Service>) -> Self {
        self.services.push(service);
        self
    }

    /// Names in stop order.
    pub fn names(&self) -> Vec<String> {
        self.services.iter().map(|s| s.name().to_owned()).collect()
    }

    /// Start every service, last declared first. On a failure the services already started are
    /// stopped again (in stop order) and the error is returned. Reported as `GroupStartBegun`
    /// and `GroupStartEnded` (after those stops, however it returns).
    pub async fn start(&self, parent: &Shutdown) -> Result<(), ServiceError> {
        observe::emit(LifecycleEvent::GroupStartBegun { services: self.texts() });
        let r = self.start_in_order(parent).await;
        observe::emit(LifecycleEvent::GroupStartEnded { services: self.texts(), ok: r.is_ok() });
        r
    }

    async fn start_in_order(&self, parent: &Shutdown) -> Result<(), ServiceError> {
        let order: Vec<usize> = if mutants::active(Mutant::MC108) {
            (0..self.services.len()).collect() // MC108: producers before the completer they feed
        } else {
            (0..self.services.len()).rev().collect()
        };
        for i in order {
            let s = &self.services[i];
            let r = s.start(parent).await;
            if r.is_ok() {
                observe::emit(LifecycleEvent::ServiceStarted { service: s.name().into() });
            }
            if let Err(e) = r {
                observe::emit(LifecycleEvent::StartFailed { service: s.name().into(), error: Text::display(&e) });
                // Those declared after it were started first: stop them (in stop order).
                let started =
                    if mutants::active(Mutant::MC107) { &self.services[..i] } else { &self.services[i + 1..] };
                // MC146: stopped in start order (the reverse of stop order).
                let reversed = mutants::active(Mutant::MC146);
                let order: Vec<_> = if reversed { started.iter().rev().collect() } else { started.iter().collect() };
                if mutants::active(Mutant::MC197) {
                    // MC197: the rollback's stops all at once.
                    let _ = join_all(order.into_iter().map(|s| s.stop())).await;
                    return Err(e);
                }
                for started in order {
                    let _ = started.stop().await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn texts(&self) -> Vec<Text<'_>> {
        self.services.iter().map(|s| Text::from(s.name())).collect()
    }

    /// Stop every service in the declared order, each after the previous one finished stopping.
    /// Every service is stopped even if an earlier one reports an error; the first error is
    /// returned. Reported as `GroupStopped` however it returns.
    pub async fn stop(&self) -> Result<(), ServiceError> {
        let r = self.stop_in_order().await;
        let failed = r.as_ref().err().map(|e| Text::from(e.service.as_str()));
        observe::emit(LifecycleEvent::GroupStopped { services: self.texts(), failed });
        r
    }

    async fn stop_in_order(&self) -> Result<(), ServiceError> {
        if mutants::active(Mutant::MR4) {
            // MR4 (River #258): everything stopped at once; the completer drains while its
            // producers are still stopping (its own wait for them is still on).
            let results = join_all(self.services.iter().map(|s| s.stop())).await;
            return results.into_iter().find(Result::is_err).unwrap_or(Ok(()));
        }
        let mut first = Ok(());
        for s in &self.services {
            let r = s.stop().await;
            if let Err(e) = &r {
                observe::emit(LifecycleEvent::StopFailed { service: s.name().into(), error: Text::display(e) });
                if mutants::active(Mutant::MC20) {
                    return r; // MC20: the services after it are never asked to stop
                }
            }
            if first.is_ok() || mutants::active(Mutant::MC110) {
                first = r; // MC110: the last result kept, an earlier error lost behind an `Ok`
            }
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::BoxFuture;

    use super::*;

    /// A service that logs its starts and stops, and refuses to start if told to.
    struct Logged {
        name: &'static str,
        refuse: bool,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Service for Logged {
        fn name(&self) -> &str {
            self.name
        }
        fn start<'a>(&'a self, _parent: &'a Shutdown) -> BoxFuture<'a, Result<(), ServiceError>> {
            Box::pin(async move {
                self.log.lock().unwrap_or_else(|p| p.into_inner()).push(format!("start {}", self.name));
                if self.refuse {
                    return Err(ServiceError { service: self.name.into(), reason: "refused".into() });
                }
                Ok(())
            })
        }
        fn stop(&self) -> BoxFuture<'_, Result<(), ServiceError>> {
            Box::pin(async move {
                self.log.lock().unwrap_or_else(|p| p.into_inner()).push(format!("stop {}", self.name));
                Ok(())
            })
        }
    }

    /// Started last declared first (MC108 started them in declared order); a failed start stops
    /// exactly those started before it, in stop order (MC107 stopped those never started).
    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_start_stops_what_it_started_in_stop_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let svc = |name, refuse| Arc::new(Logged { name, refuse, log: log.clone() });
        let group =
            ServiceGroup::new().then(svc("a", false)).then(svc("b", true)).then(svc("c", false)).then(svc("d", false));
        let err = group.start(&Shutdown::new("app")).await.unwrap_err();
        assert_eq!(err.service, "b");
        let got = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(got, ["start d", "start c", "start b", "stop c", "stop d"]);
    }
}
