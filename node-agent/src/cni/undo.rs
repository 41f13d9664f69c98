//! Undo stack for ADD: every completed step pushes its inverse; a failure runs them newest first.
//! If the stack is dropped while still armed (a panic, a cancelled task) the inverses run on a
//! spawned task, so a half-made attachment never survives.

use futures::future::BoxFuture;

type Step = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Default)]
pub(crate) struct Undo {
    steps: Vec<(&'static str, Step)>,
}

impl Undo {
    pub(crate) fn new() -> Self {
        Undo::default()
    }

    /// Registers the inverse of a step that just succeeded.
    pub(crate) fn push<F>(&mut self, what: &'static str, f: F)
    where
        F: FnOnce() -> BoxFuture<'static, ()> + Send + Sync + 'static,
    {
        self.steps.push((what, Box::new(f)));
    }

    /// Runs every inverse, newest first.
    pub(crate) async fn rollback(mut self) {
        run(std::mem::take(&mut self.steps)).await;
    }

    /// Success: forget the inverses.
    pub(crate) fn commit(mut self) {
        self.steps.clear();
    }
}

async fn run(steps: Vec<(&'static str, Step)>) {
    for (what, f) in steps.into_iter().rev() {
        tracing::debug!(step = what, "rolling back");
        f().await;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if self.steps.is_empty() {
            return;
        }
        let steps = std::mem::take(&mut self.steps);
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                tracing::warn!(steps = steps.len(), "ADD abandoned midway; rolling back");
                h.spawn(run(steps));
            }
            Err(_) => tracing::error!("ADD abandoned without a runtime; cannot roll back"),
        }
    }
}
