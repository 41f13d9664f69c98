//! A reconnecting OVSDB client: keeps one session up with backoff and re-issues monitors.

use super::Error;
use super::conn::{ConnectOptions, Connection, Endpoint};
use super::monitor::{Event, MonitorRequest, TableUpdates};
use super::ops::{Operation, OperationResult};

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, watch};

#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect: ConnectOptions,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// How long a call waits for a session to be (re-)established before failing.
    pub wait_connected: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect: ConnectOptions::default(),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            wait_connected: Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
struct MonitorSpec {
    db: String,
    id: String,
    requests: Vec<MonitorRequest>,
}

#[derive(Default)]
struct State {
    conn: Option<Connection>,
    monitors: Vec<MonitorSpec>,
}

struct Shared {
    state: Mutex<State>,
    /// Bumped on every (re)connect so waiters notice.
    generation: watch::Sender<u64>,
    events: mpsc::UnboundedSender<Event>,
}

/// Stops the supervisor when the last `Client` clone goes away.
struct Shutdown(watch::Sender<bool>);

impl Drop for Shutdown {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// Reconnecting client. Calls made while disconnected wait (up to
/// [`ClientOptions::wait_connected`]) for the next session; a call in flight when the session
/// drops fails with a connection error and is not retried (the caller knows if it is idempotent).
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    opts: Arc<ClientOptions>,
    _shutdown: Arc<Shutdown>,
}

impl Client {
    /// Starts connecting in the background. Events: `Connected`, `Initial` per monitor,
    /// `Update`s, and `Disconnected` when a session is lost.
    pub fn start(
        endpoint: Endpoint,
        opts: ClientOptions,
    ) -> (Client, mpsc::UnboundedReceiver<Event>) {
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (generation, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            generation,
            events: ev_tx,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let opts = Arc::new(opts);
        tokio::spawn(supervise(endpoint, opts.clone(), shared.clone(), stop_rx));
        let client = Client {
            shared,
            opts,
            _shutdown: Arc::new(Shutdown(stop_tx)),
        };
        (client, ev_rx)
    }

    /// The current session, waiting for one if disconnected.
    pub(crate) async fn connection(&self) -> Result<Connection, Error> {
        let mut gen_rx = self.shared.generation.subscribe();
        let wait = async {
            loop {
                let conn = self.shared.state.lock().await.conn.clone();
                if let Some(c) = conn.filter(|c| !c.is_closed()) {
                    return Ok(c);
                }
                if gen_rx.changed().await.is_err() {
                    return Err(Error::Disconnected("client stopped".into()));
                }
            }
        };
        tokio::time::timeout(self.opts.wait_connected, wait)
            .await
            .map_err(|_| {
                Error::Timeout(format!(
                    "no OVSDB session within {:?}",
                    self.opts.wait_connected
                ))
            })?
    }

    pub async fn transact(
        &self,
        db: &str,
        ops: &[Operation],
    ) -> Result<Vec<OperationResult>, Error> {
        self.connection().await?.transact(db, ops).await
    }

    pub async fn list_dbs(&self) -> Result<Vec<String>, Error> {
        self.connection().await?.list_dbs().await
    }

    /// Starts a monitor that survives reconnects: it is re-issued on every new session, and its
    /// contents are sent again as [`Event::Initial`]. Returns the initial contents (which are
    /// also sent as `Event::Initial`, so a consumer can work from the event stream alone).
    pub async fn monitor(
        &self,
        db: &str,
        monitor_id: &str,
        requests: Vec<MonitorRequest>,
    ) -> Result<TableUpdates, Error> {
        let spec = MonitorSpec {
            db: db.to_string(),
            id: monitor_id.to_string(),
            requests,
        };
        loop {
            self.connection().await?;
            // Hold the state lock so a reconnect cannot re-issue this monitor concurrently.
            let mut st = self.shared.state.lock().await;
            let Some(conn) = st.conn.clone().filter(|c| !c.is_closed()) else {
                continue;
            };
            let initial = conn.monitor(&spec.db, &spec.id, &spec.requests).await?;
            st.monitors.retain(|m| m.id != spec.id);
            st.monitors.push(spec);
            let _ = self.shared.events.send(Event::Initial {
                monitor_id: monitor_id.to_string(),
                updates: initial.clone(),
            });
            return Ok(initial);
        }
    }

    /// Cancels a monitor and stops re-issuing it.
    pub async fn monitor_cancel(&self, monitor_id: &str) -> Result<(), Error> {
        let conn = {
            let mut st = self.shared.state.lock().await;
            st.monitors.retain(|m| m.id != monitor_id);
            st.conn.clone()
        };
        match conn {
            Some(c) => c.monitor_cancel(monitor_id).await,
            // No session: the server has no monitor to cancel.
            None => Ok(()),
        }
    }
}

async fn supervise(
    endpoint: Endpoint,
    opts: Arc<ClientOptions>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = opts.backoff_initial;
    loop {
        if *stop.borrow() {
            return;
        }
        match Connection::connect(&endpoint, &opts.connect).await {
            Err(e) => {
                tracing::warn!(%endpoint, error = %e, retry_in = ?backoff, "ovsdb connect failed")
            }
            Ok((conn, mut events)) => match establish(&shared, &conn).await {
                Ok(()) => {
                    backoff = opts.backoff_initial;
                    tracing::info!(%endpoint, "ovsdb session established");
                    let reason = loop {
                        tokio::select! {
                            ev = events.recv() => match ev {
                                Some(Event::Disconnected { reason }) => break reason,
                                Some(ev) => { let _ = shared.events.send(ev); }
                                None => break "session ended".to_string(),
                            },
                            _ = stop.changed() => return,
                        }
                    };
                    tracing::warn!(%endpoint, %reason, "ovsdb session lost");
                    shared.state.lock().await.conn = None;
                    let _ = shared.events.send(Event::Disconnected { reason });
                }
                Err(e) => {
                    tracing::warn!(%endpoint, error = %e, "re-issuing ovsdb monitors failed")
                }
            },
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(opts.backoff_max);
    }
}

/// Re-issues every registered monitor on a fresh session, then publishes the session.
async fn establish(shared: &Shared, conn: &Connection) -> Result<(), Error> {
    let mut st = shared.state.lock().await;
    let _ = shared.events.send(Event::Connected);
    for m in st.monitors.clone() {
        let initial = conn.monitor(&m.db, &m.id, &m.requests).await?;
        let _ = shared.events.send(Event::Initial {
            monitor_id: m.id.clone(),
            updates: initial,
        });
    }
    st.conn = Some(conn.clone());
    drop(st);
    shared.generation.send_modify(|g| *g += 1);
    Ok(())
}
