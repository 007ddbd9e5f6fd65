//! ADD as a sequence of [`Step`]s with an undo stack: [`run`] does the
//! steps in order and, when one fails, undoes in reverse what the earlier
//! ones (and the failed one, so far) made. The plugin's steps are
//! `add::Plumbing` (netlink, sysctls, the datapath, IPAM, netfilter, the
//! record); the unit tests below drive a recording fake through the same
//! [`run`], without root.

use std::net::Ipv4Addr;

use crate::cni::Result;
use crate::commands::fault::{checkpoint, Step};
use crate::datapath::PortAttach;

/// What ADD's steps do, one [`Step`] at a time, and how each thing they
/// made is removed again.
pub trait Steps {
    /// Does `step`; pushes onto `undo` what it is about to make before
    /// making it, so that a step failing half-way is undone too.
    async fn step(&mut self, step: Step, undo: &mut Undo) -> Result<()>;

    /// Removes one thing a step made (rolling back a failed ADD).
    async fn undo(&mut self, made: Made) -> Result<()>;
}

/// Runs every step in order; on a failure (or an injected one, see
/// [`checkpoint`]) rolls back and returns the error.
pub async fn run<S: Steps>(steps: &mut S) -> Result<()> {
    let mut undo = Undo::default();
    for step in Step::ALL {
        let done = match steps.step(step, &mut undo).await {
            Ok(()) => checkpoint(step),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            undo.run(steps).await;
            return Err(e);
        }
    }
    Ok(())
}

/// What ADD made, in order; undone in reverse on failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Made {
    /// lan mode: the node's /32 route to a pod address.
    HostRoute(Ipv4Addr),
    HostVeth,
    Datapath,
    Ipam,
    MacSpoof,
    Record,
}

#[derive(Default)]
pub struct Undo {
    made: Vec<Made>,
    /// The port's programs being attached meanwhile.
    attach: Option<PortAttach>,
}

impl Undo {
    pub fn push(&mut self, made: Made) {
        self.made.push(made);
    }

    pub fn attaching(&mut self, attach: PortAttach) {
        self.attach = Some(attach);
    }

    /// Waits for the port's programs (when an attach is under way).
    pub fn attached(&mut self) -> Result<()> {
        match self.attach.take() {
            Some(a) => Ok(a.wait()?),
            None => Ok(()),
        }
    }

    /// Rolls back; every step is tried even when an earlier one fails.
    async fn run<S: Steps>(mut self, steps: &mut S) {
        // Detaching must not race a link still being created.
        if let Err(e) = self.attached() {
            tracing::error!("attaching while rolling back: {e}");
        }
        for made in self.made.into_iter().rev() {
            if let Err(e) = steps.undo(made).await {
                tracing::error!("rolling back {made:?}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::Error;

    /// Records what ADD asked for, in order; makes what the plugin's step
    /// of the same name makes in lan mode with `macspoofchk`, and fails
    /// where told to.
    #[derive(Default)]
    struct Fake {
        log: Vec<String>,
        fail_at: Option<Step>,
        /// Half-way: after pushing what the step makes.
        fail_late: bool,
        refuse_undo: Option<Made>,
    }

    fn makes(step: Step) -> Vec<Made> {
        let ip = Ipv4Addr::new(192, 168, 77, 100);
        match step {
            Step::Veth => vec![Made::HostVeth],
            Step::Datapath => vec![Made::Datapath],
            Step::Ipam => vec![Made::Ipam],
            Step::Host => vec![Made::HostRoute(ip), Made::MacSpoof],
            Step::State => vec![Made::Record],
            Step::Bridge | Step::Firewall | Step::Container => vec![],
        }
    }

    impl Steps for Fake {
        async fn step(&mut self, step: Step, undo: &mut Undo) -> Result<()> {
            self.log.push(step.name().to_string());
            let fail = Err(Error::Injected(step.name().to_string()));
            if self.fail_at == Some(step) && !self.fail_late {
                return fail;
            }
            for made in makes(step) {
                undo.push(made);
            }
            match self.fail_at == Some(step) {
                true => fail,
                false => Ok(()),
            }
        }

        async fn undo(&mut self, made: Made) -> Result<()> {
            self.log.push(format!("undo {made:?}"));
            match self.refuse_undo == Some(made) {
                true => Err(Error::Injected(format!("{made:?}"))),
                false => Ok(()),
            }
        }
    }

    fn names(steps: &[Step]) -> Vec<String> {
        steps.iter().map(|s| s.name().to_string()).collect()
    }

    fn undos(steps: &[Step]) -> Vec<String> {
        let made: Vec<Made> = steps.iter().flat_map(|s| makes(*s)).collect();
        made.iter().rev().map(|m| format!("undo {m:?}")).collect()
    }

    #[tokio::test]
    async fn steps_run_in_order_and_undo_nothing_on_success() {
        let mut fake = Fake::default();
        run(&mut fake).await.unwrap();
        assert_eq!(fake.log, names(&Step::ALL));
    }

    #[tokio::test]
    async fn a_failed_step_undoes_the_earlier_ones_in_reverse() {
        for (k, step) in Step::ALL.into_iter().enumerate() {
            for fail_late in [false, true] {
                let mut fake = Fake {
                    fail_at: Some(step),
                    fail_late,
                    ..Fake::default()
                };
                let err = run(&mut fake).await.unwrap_err();
                assert!(
                    matches!(&err, Error::Injected(s) if s == step.name()),
                    "{err}"
                );
                // Steps 1..=k ran, no later one; what step k made before
                // failing is undone first, then k-1..1.
                let made_by = match fail_late {
                    true => &Step::ALL[..=k],
                    false => &Step::ALL[..k],
                };
                let want = [names(&Step::ALL[..=k]), undos(made_by)].concat();
                assert_eq!(fake.log, want, "failing at {step:?} (late: {fail_late})");
            }
        }
    }

    #[tokio::test]
    async fn a_failed_undo_does_not_stop_the_rollback() {
        let mut fake = Fake {
            fail_at: Some(Step::State),
            refuse_undo: Some(Made::Ipam),
            ..Fake::default()
        };
        run(&mut fake).await.unwrap_err();
        assert_eq!(
            fake.log[Step::ALL.len()..],
            undos(&Step::ALL[..Step::ALL.len() - 1]),
            "every undo tried"
        );
    }
}
