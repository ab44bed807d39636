//! Events of supervised services (target `keel::lifecycle`).

use tracing::{debug, info, warn};

use super::{Text, events};

events! {
    /// What a service runner or a service group did.
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub enum LifecycleEvent<'a> {
        /// A service run started.
        RunStarted { service: Text<'a>, run: u64 } = "run_started",
        /// A service run exited.
        RunExited { service: Text<'a>, run: u64 } = "run_exited",
        /// A stop asked run `run` to stop (cancelled its token): the status is `Stopping` until
        /// its `run_exited`.
        StopBegun { service: Text<'a>, run: u64 } = "stop_begun",
        /// A stop of run `run` returned: the run has exited by now (rule V5).
        StopReturned { service: Text<'a>, run: u64 } = "stop_returned",
        /// A group's start began: `services` in stop order (started last first).
        GroupStartBegun { services: Vec<Text<'a>> } = "group_start_begun",
        /// A service of a group started (its start returned `Ok`).
        ServiceStarted { service: Text<'a> } = "service_started",
        /// A service of a group failed to start; the others are stopped.
        StartFailed { service: Text<'a>, error: Text<'a> } = "start_failed",
        /// A group's start returned (`ok`), or failed with the services it had started stopped
        /// again: no run of those is left going (rule V19).
        GroupStartEnded { services: Vec<Text<'a>>, ok: bool } = "group_start_ended",
        /// A service of a group reported an error when stopped.
        StopFailed { service: Text<'a>, error: Text<'a> } = "stop_failed",
        /// A group's stop returned, whatever it reported: `services` in stop order; `failed`, the
        /// service whose stop error it returned (the first to fail), if any. Every run of each
        /// has exited by now (rule V9).
        GroupStopped { services: Vec<Text<'a>>, failed: Option<Text<'a>> } = "group_stopped",
    }
}

/// Logged without a `kind` field, as before the seam.
pub(super) fn log(e: &LifecycleEvent<'_>) {
    use LifecycleEvent as E;
    const T: &str = "keel::lifecycle";
    match e {
        E::RunStarted { service, run } => debug!(target: T, service = %service, run, "run started"),
        E::RunExited { service, run } => debug!(target: T, service = %service, run, "run exited"),
        E::StopBegun { service, run } => debug!(target: T, service = %service, run, "stop begun"),
        E::StopReturned { service, run } => debug!(target: T, service = %service, run, "stop returned"),
        E::StartFailed { service, error } => {
            warn!(target: T, service = %service, error = %error, "start failed; stopping the others")
        }
        E::GroupStartBegun { services } => {
            let services: Vec<_> = services.iter().map(Text::as_str).collect();
            debug!(target: T, services = ?services, "group starting")
        }
        E::ServiceStarted { service } => debug!(target: T, service = %service, "service started"),
        E::GroupStartEnded { services, ok } => {
            let services: Vec<_> = services.iter().map(Text::as_str).collect();
            debug!(target: T, services = ?services, ok, "group start returned")
        }
        E::StopFailed { service, error } => {
            warn!(target: T, service = %service, error = %error, "stop reported an error")
        }
        E::GroupStopped { services, failed } => {
            let services: Vec<_> = services.iter().map(Text::as_str).collect();
            let failed = failed.as_ref().map(Text::as_str);
            info!(target: T, services = ?services, failed = ?failed, "group stopped")
        }
    }
}
