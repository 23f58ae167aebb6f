//! Push notification of changes to connected agents (`spirers.server.notify.v1`).
//! Writers call [`NotifyHub::entries_changed`] / [`NotifyHub::bundles_changed`] /
//! [`NotifyHub::revocations_changed`] after a
//! commit; every open `WatchChanges` stream gets a notification at once.

use std::pin::Pin;

use spire_proto::spirers::server::notify::v1::notify_server::Notify;
use spire_proto::spirers::server::notify::v1::{ChangeNotification, WatchChangesRequest};
use tokio::sync::watch;
use tokio_stream::Stream;

/// Change counters, shared by all watchers. Each watcher compares them with what it
/// last saw, so coalesced updates never lose which kinds of data changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Change {
    version: u64,
    entries: u64,
    bundles: u64,
    revocations: u64,
}

/// Fans committed changes out to watching agents.
#[derive(Debug, Clone)]
pub struct NotifyHub {
    tx: watch::Sender<Change>,
}

impl Default for NotifyHub {
    fn default() -> Self {
        NotifyHub::new()
    }
}

impl NotifyHub {
    /// A hub with no change yet.
    pub fn new() -> Self {
        NotifyHub {
            tx: watch::channel(Change::default()).0,
        }
    }

    /// Registration entries or attested nodes changed.
    pub fn entries_changed(&self) {
        self.bump(|c| c.entries += 1);
    }

    /// A bundle changed.
    pub fn bundles_changed(&self) {
        self.bump(|c| c.bundles += 1);
    }

    /// The X.509-SVID revocation list changed.
    pub fn revocations_changed(&self) {
        self.bump(|c| c.revocations += 1);
    }

    fn bump(&self, count: impl FnOnce(&mut Change)) {
        self.tx.send_modify(|c| {
            c.version += 1;
            count(c);
        });
    }
}

type NotificationStream =
    Pin<Box<dyn Stream<Item = Result<ChangeNotification, tonic::Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Notify for NotifyHub {
    type WatchChangesStream = NotificationStream;

    async fn watch_changes(
        &self,
        _request: tonic::Request<WatchChangesRequest>,
    ) -> Result<tonic::Response<Self::WatchChangesStream>, tonic::Status> {
        let mut rx = self.tx.subscribe();
        let stream = async_stream_of(move |tx| async move {
            // The first notification tells the agent the stream is live (and to sync in
            // case it missed changes while it was connecting).
            let mut seen = *rx.borrow_and_update();
            let first = ChangeNotification {
                version: seen.version,
                entries_changed: true,
                bundles_changed: true,
                revocations_changed: true,
            };
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            while rx.changed().await.is_ok() {
                let now = *rx.borrow_and_update();
                let note = ChangeNotification {
                    version: now.version,
                    entries_changed: now.entries != seen.entries,
                    bundles_changed: now.bundles != seen.bundles,
                    revocations_changed: now.revocations != seen.revocations,
                };
                seen = now;
                if tx.send(Ok(note)).await.is_err() {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(stream))
    }
}

/// A stream fed by a task that writes into a channel; the task stops when the client
/// goes away (the channel closes).
fn async_stream_of<F, Fut>(producer: F) -> NotificationStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<ChangeNotification, tonic::Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(producer(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
