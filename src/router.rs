//! Per-subscription message routing: which subscription streams and message
//! callbacks an incoming message belongs to, and which messages are left
//! for [`Client::messages`](crate::Client::messages).
//!
//! The table ([`Router`]) is a plain value with no tasks, channels or locks
//! in its logic: [`Router::route_into`] looks at a topic and the message's
//! Subscription Identifiers and says which routes take it. It is generic
//! over what a stream route delivers into, so the unit tests below use
//! plain tags where the event loop uses channels.
//!
//! # Rules
//!
//! - A route whose subscription carries a 5.0 Subscription Identifier takes
//!   exactly the messages that carry that identifier. The broker must put
//!   the identifier of every subscription a message is delivered through
//!   into that message [MQTT-3.3.4-3], whether it sends one copy per
//!   matching subscription or one copy with several identifiers, so the
//!   identifier says precisely which subscription a copy came through, and
//!   overlapping subscriptions neither duplicate nor steal messages.
//! - A route without an identifier (MQTT 3.1.1, a broker without
//!   Subscription Identifiers, or a 5.0 subscription made without one)
//!   takes the messages whose topic matches one of its filters
//!   ([`topic::matches`](crate::topic::matches), which also understands
//!   `$share/{group}/{filter}`).
//! - A message goes to each route that takes it once, however many of the
//!   route's filters or identifiers it matches.
//! - Callbacks (paho's `message_callback_add`) take the messages whose topic
//!   matches their filter.
//! - A message that no route and no callback took goes to the catch-all
//!   stream (paho's `on_message`).
//!
//! # Sharing with the event loop
//!
//! [`Routing`] holds the table behind a mutex for the client handles, with
//! a version number bumped by every change. The event loop keeps its own
//! copy and reloads it only when the version moved, so delivering a message
//! costs one atomic load when nothing changed, and nothing more than today
//! when there are no routes at all.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};

use crate::client::Message;
use crate::codec::TopicFilter;
use crate::queue;
use crate::topic::matches;

/// A message callback: called on the event loop task, so it must be quick.
pub(crate) type Callback = Arc<dyn Fn(&Message) + Send + Sync>;

/// Names a stream route in the table.
pub(crate) type RouteId = u64;

/// The largest Subscription Identifier MQTT can carry (a variable byte
/// integer, §3.8.2.1.2).
const MAX_SUBSCRIPTION_ID: u32 = 268_435_455;

/// The routing table. `S` is what a stream route delivers into.
#[derive(Clone)]
pub(crate) struct Router<S> {
    routes: Vec<Route<S>>,
    callbacks: Vec<CallbackRoute>,
    /// The next Subscription Identifier to hand out. Identifiers are never
    /// reused: the broker keeps a subscription (and tags its messages with
    /// the identifier) until it is unsubscribed, which may be long after the
    /// stream that asked for it was dropped.
    next_subscription_id: u32,
    /// Identifiers the application chose itself, which automatic ones skip.
    caller_ids: HashSet<NonZeroU32>,
    next_route: RouteId,
}

#[derive(Clone)]
struct Route<S> {
    id: RouteId,
    /// When set, the route takes the messages carrying it, and only those.
    subscription_id: Option<NonZeroU32>,
    /// The client chose the identifier (rather than the application).
    automatic_id: bool,
    filters: Vec<TopicFilter>,
    sink: S,
}

#[derive(Clone)]
struct CallbackRoute {
    filter: TopicFilter,
    callback: Callback,
}

/// Which routes take a message: indices into the table it came from, each
/// at most once. Reused between messages so routing does not allocate.
#[derive(Debug, Default)]
pub(crate) struct Targets {
    /// Stream routes, in the order they were added.
    pub(crate) streams: Vec<usize>,
    /// Callbacks, in the order they were added.
    pub(crate) callbacks: Vec<usize>,
    /// Scratch: the message's Subscription Identifiers.
    ids: Vec<NonZeroU32>,
}

#[cfg(test)]
impl Targets {
    /// True when no route and no callback takes the message: it belongs to
    /// the catch-all stream.
    pub(crate) fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.callbacks.is_empty()
    }
}

/// An identifier the application chose is already used by a subscription
/// stream the client numbered itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdInUse;

impl<S> Default for Router<S> {
    fn default() -> Self {
        Router {
            routes: Vec::new(),
            callbacks: Vec::new(),
            next_subscription_id: 1,
            caller_ids: HashSet::new(),
            next_route: 0,
        }
    }
}

impl<S> Router<S> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Router::default()
    }

    /// No routes and no callbacks: every message goes to the catch-all.
    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.callbacks.is_empty()
    }

    /// Adds a stream route; `subscription_id` makes it route by identifier
    /// (see the [module docs](self)). `automatic` says the client chose the
    /// identifier.
    pub(crate) fn add_route(
        &mut self,
        filters: Vec<TopicFilter>,
        subscription_id: Option<NonZeroU32>,
        automatic: bool,
        sink: S,
    ) -> RouteId {
        let id = self.next_route;
        self.next_route += 1;
        self.routes.push(Route {
            id,
            subscription_id,
            automatic_id: automatic && subscription_id.is_some(),
            filters,
            sink,
        });
        id
    }

    /// Removes a stream route; false if there was none.
    pub(crate) fn remove_route(&mut self, id: RouteId) -> bool {
        let before = self.routes.len();
        self.routes.retain(|r| r.id != id);
        self.routes.len() != before
    }

    /// Sets the callback for `filter`, replacing any earlier one for the
    /// same filter (as paho's `message_callback_add` does).
    pub(crate) fn add_callback(&mut self, filter: TopicFilter, callback: Callback) {
        match self.callbacks.iter_mut().find(|c| c.filter == filter) {
            Some(existing) => existing.callback = callback,
            None => self.callbacks.push(CallbackRoute { filter, callback }),
        }
    }

    /// Removes the callback for exactly this filter; false if there was none.
    pub(crate) fn remove_callback(&mut self, filter: &str) -> bool {
        let before = self.callbacks.len();
        self.callbacks.retain(|c| c.filter != filter);
        self.callbacks.len() != before
    }

    /// A fresh Subscription Identifier for a stream: never handed out
    /// before by this table and not one the application uses. `None` once
    /// all 268,435,455 are spent.
    pub(crate) fn allocate_subscription_id(&mut self) -> Option<NonZeroU32> {
        while self.next_subscription_id <= MAX_SUBSCRIPTION_ID {
            let candidate = NonZeroU32::new(self.next_subscription_id);
            self.next_subscription_id += 1;
            if let Some(id) = candidate.filter(|id| !self.caller_ids.contains(id)) {
                return Some(id);
            }
        }
        None
    }

    /// Records an identifier the application put on a SUBSCRIBE, so that
    /// automatic ones avoid it. Refused when a live stream the client
    /// numbered already uses it: its messages could not be told apart.
    pub(crate) fn note_caller_id(&mut self, id: NonZeroU32) -> Result<(), IdInUse> {
        if self
            .routes
            .iter()
            .any(|r| r.automatic_id && r.subscription_id == Some(id))
        {
            return Err(IdInUse);
        }
        self.caller_ids.insert(id);
        Ok(())
    }

    /// Fills `out` with the routes and callbacks that take a message
    /// published to `topic` carrying the Subscription Identifiers `ids`.
    pub(crate) fn route_into(
        &self,
        topic: &str,
        ids: impl IntoIterator<Item = NonZeroU32>,
        out: &mut Targets,
    ) {
        out.streams.clear();
        out.callbacks.clear();
        out.ids.clear();
        out.ids.extend(ids);
        for (i, route) in self.routes.iter().enumerate() {
            let takes = match route.subscription_id {
                Some(id) => out.ids.contains(&id),
                None => route.filters.iter().any(|f| matches(f, topic)),
            };
            if takes {
                out.streams.push(i);
            }
        }
        for (i, cb) in self.callbacks.iter().enumerate() {
            if matches(&cb.filter, topic) {
                out.callbacks.push(i);
            }
        }
    }

    /// [`route_into`](Self::route_into) into a new `Targets`.
    #[cfg(test)]
    pub(crate) fn route(&self, topic: &str, ids: &[u32]) -> Targets {
        let mut out = Targets::default();
        self.route_into(
            topic,
            ids.iter().filter_map(|&id| NonZeroU32::new(id)),
            &mut out,
        );
        out
    }

    /// The sink of the stream route at `index` (from [`Targets::streams`]).
    pub(crate) fn sink(&self, index: usize) -> Option<&S> {
        self.routes.get(index).map(|r| &r.sink)
    }

    /// The callback at `index` (from [`Targets::callbacks`]).
    pub(crate) fn callback(&self, index: usize) -> Option<&Callback> {
        self.callbacks.get(index).map(|c| &c.callback)
    }
}

// ---------------------------------------------------------------------------
// The event loop's side: what a route delivers into, and the shared table.

/// Where a stream route delivers.
#[derive(Clone)]
pub(crate) enum Sink {
    /// A [`Subscription`]'s bounded channel.
    Stream(queue::Sender<Message>),
    /// The responses to [`Client::request`](crate::Client::request),
    /// matched to their requests by correlation data on the spot.
    Responses(Arc<crate::request::Pending>),
}

/// The table shared by the client handles (which change it) and the event
/// loop (which reads a copy of it per change).
pub(crate) struct Routing {
    table: Mutex<Router<Sink>>,
    version: AtomicU64,
}

impl std::fmt::Debug for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routing")
            .field("version", &self.version.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Routing {
    pub(crate) fn new() -> Self {
        Routing {
            table: Mutex::new(Router::new()),
            version: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Router<Sink>> {
        // No user code runs under this lock (callbacks are called on the
        // event loop's copy), and every change is complete when the guard
        // drops, so a poisoned lock still holds a consistent table.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the table and tells the event loop to reload it.
    pub(crate) fn update<R>(&self, change: impl FnOnce(&mut Router<Sink>) -> R) -> R {
        let mut table = self.lock();
        let result = change(&mut table);
        // Bumped under the lock, so a reader that sees the new version and
        // then takes the lock sees this change.
        self.version.fetch_add(1, Ordering::Release);
        result
    }

    /// The version of the table; it changes with every [`update`](Self::update).
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// A copy of the table and its version.
    pub(crate) fn snapshot(&self) -> (Router<Sink>, u64) {
        let table = self.lock();
        (table.clone(), self.version.load(Ordering::Acquire))
    }
}

/// Removes a stream route from the table when dropped.
#[derive(Debug)]
pub(crate) struct RouteGuard {
    routing: Weak<Routing>,
    id: RouteId,
}

impl RouteGuard {
    pub(crate) fn new(routing: &Arc<Routing>, id: RouteId) -> Self {
        RouteGuard {
            routing: Arc::downgrade(routing),
            id,
        }
    }
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        if let Some(routing) = self.routing.upgrade() {
            routing.update(|t| t.remove_route(self.id));
        }
    }
}

/// The messages of one subscription; see
/// [`Client::subscribe_stream`](crate::Client::subscribe_stream). Also a
/// [`Stream`](futures_core::Stream).
///
/// It has its own bounded buffer of
/// [`message_capacity`](crate::ClientBuilder::message_capacity) messages;
/// when it is full the client stops reading from the network until there
/// is room, exactly as for [`Client::messages`](crate::Client::messages),
/// so a stream nobody reads holds up every other stream too. Drop the ones
/// you no longer read.
///
/// Dropping it stops routing to it, but does not unsubscribe: the broker
/// keeps the subscription until
/// [`Client::unsubscribe`](crate::Client::unsubscribe), and its messages
/// then go to [`Client::messages`](crate::Client::messages) (or to a
/// matching callback).
#[derive(Debug)]
pub struct Subscription {
    rx: queue::Receiver<Message>,
    filters: Vec<TopicFilter>,
    identifier: Option<NonZeroU32>,
    _route: RouteGuard,
}

impl Subscription {
    pub(crate) fn new(
        rx: queue::Receiver<Message>,
        filters: Vec<TopicFilter>,
        identifier: Option<NonZeroU32>,
        route: RouteGuard,
    ) -> Self {
        Subscription {
            rx,
            filters,
            identifier,
            _route: route,
        }
    }

    /// The next message; `None` once the client is gone.
    ///
    /// Cancel safe: a message is never lost to a cancelled `recv`.
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.recv().await
    }

    /// The next message if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Message> {
        self.rx.try_recv().ok()
    }

    /// The topic filters this subscription was made with.
    pub fn filters(&self) -> &[TopicFilter] {
        &self.filters
    }

    /// The 5.0 Subscription Identifier its messages are routed by; `None`
    /// when they are routed by topic (3.1.1, or a broker without
    /// Subscription Identifiers).
    pub fn identifier(&self) -> Option<NonZeroU32> {
        self.identifier
    }
}

impl futures_core::Stream for Subscription {
    type Item = Message;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(filter: &str) -> TopicFilter {
        TopicFilter::try_from(filter).unwrap()
    }

    fn id(n: u32) -> Option<NonZeroU32> {
        NonZeroU32::new(n)
    }

    fn sinks<'a>(router: &'a Router<&'static str>, t: &Targets) -> Vec<&'a str> {
        t.streams
            .iter()
            .map(|&i| *router.sink(i).unwrap())
            .collect()
    }

    #[test]
    fn empty_router_routes_nothing() {
        let r: Router<&str> = Router::new();
        assert!(r.is_empty());
        assert!(r.route("a/b", &[]).is_empty());
        assert!(r.route("a/b", &[1, 2]).is_empty());
    }

    #[test]
    fn topic_routes_take_matching_topics() {
        let mut r = Router::new();
        r.add_route(vec![s("a/+")], None, false, "plus");
        r.add_route(vec![s("b/#")], None, false, "b");
        assert_eq!(sinks(&r, &r.route("a/x", &[])), ["plus"]);
        assert_eq!(sinks(&r, &r.route("b", &[])), ["b"]);
        assert_eq!(sinks(&r, &r.route("b/c/d", &[])), ["b"]);
        assert!(r.route("c", &[]).is_empty());
        assert!(r.route("a/x/y", &[]).is_empty());
    }

    #[test]
    fn overlapping_topic_routes_each_take_the_message_once() {
        let mut r = Router::new();
        r.add_route(vec![s("a/+")], None, false, "plus");
        r.add_route(vec![s("a/#"), s("a/b"), s("+/b")], None, false, "hash");
        assert_eq!(sinks(&r, &r.route("a/b", &[])), ["plus", "hash"]);
    }

    #[test]
    fn identifier_routes_take_only_their_identifier() {
        let mut r = Router::new();
        r.add_route(vec![s("a/+")], id(1), true, "one");
        r.add_route(vec![s("a/#")], id(2), true, "two");
        // One copy per subscription, each with its identifier.
        assert_eq!(sinks(&r, &r.route("a/b", &[1])), ["one"]);
        assert_eq!(sinks(&r, &r.route("a/b", &[2])), ["two"]);
        // One copy with both identifiers, even repeated.
        assert_eq!(sinks(&r, &r.route("a/b", &[2, 1, 2])), ["one", "two"]);
        // The topic does not matter, the identifier does: a copy without
        // identifiers came through some other subscription.
        assert!(r.route("a/b", &[]).is_empty());
        assert_eq!(sinks(&r, &r.route("zzz", &[1])), ["one"]);
    }

    #[test]
    fn unknown_identifiers_route_nowhere() {
        let mut r = Router::new();
        r.add_route(vec![s("a/#")], id(1), true, "one");
        assert!(r.route("a/b", &[7]).is_empty());
    }

    #[test]
    fn topic_routes_ignore_identifiers() {
        let mut r = Router::new();
        r.add_route(vec![s("a/#")], None, false, "topic");
        r.add_route(vec![s("a/#")], id(3), true, "three");
        assert_eq!(sinks(&r, &r.route("a/b", &[3])), ["topic", "three"]);
        assert_eq!(sinks(&r, &r.route("a/b", &[])), ["topic"]);
    }

    #[test]
    fn shared_subscriptions_route_on_the_inner_filter() {
        let mut r = Router::new();
        r.add_route(vec![s("$share/g/t/#")], None, false, "shared");
        r.add_route(vec![s("u/#")], None, false, "other");
        assert_eq!(sinks(&r, &r.route("t/1", &[])), ["shared"]);
        assert_eq!(sinks(&r, &r.route("u/1", &[])), ["other"]);
    }

    #[test]
    fn removed_routes_take_nothing() {
        let mut r = Router::new();
        let a = r.add_route(vec![s("a")], id(1), true, "a");
        let b = r.add_route(vec![s("a")], None, false, "b");
        assert!(r.remove_route(a));
        assert!(!r.remove_route(a));
        assert!(r.route("a", &[1]).streams.len() == 1);
        assert!(r.remove_route(b));
        assert!(r.is_empty());
        assert!(r.route("a", &[1]).is_empty());
    }

    #[test]
    fn callbacks_match_topics_and_replace_per_filter() {
        let mut r: Router<&str> = Router::new();
        let noop: Callback = Arc::new(|_| {});
        r.add_callback(s("a/#"), noop.clone());
        r.add_callback(s("a/+"), noop.clone());
        r.add_callback(s("a/#"), noop.clone());
        assert_eq!(r.route("a/b", &[]).callbacks, [0, 1]);
        assert_eq!(r.route("a/b/c", &[]).callbacks, [0]);
        assert!(r.route("b", &[]).is_empty());
        assert!(r.remove_callback("a/#"));
        assert!(!r.remove_callback("a/#"));
        assert_eq!(r.route("a/b", &[]).callbacks, [0]);
        assert!(r.route("a/b/c", &[]).is_empty());
    }

    #[test]
    fn automatic_identifiers_are_fresh_and_avoid_the_callers() {
        let mut r: Router<&str> = Router::new();
        r.note_caller_id(NonZeroU32::new(2).unwrap()).unwrap();
        let first = r.allocate_subscription_id().unwrap();
        let second = r.allocate_subscription_id().unwrap();
        assert_eq!((first.get(), second.get()), (1, 3));
        let route = r.add_route(vec![s("x")], Some(second), true, "x");
        // The application may not reuse a live automatic identifier...
        assert_eq!(r.note_caller_id(second), Err(IdInUse));
        // ... but may reuse one of its own, or one no longer routed.
        r.note_caller_id(NonZeroU32::new(2).unwrap()).unwrap();
        r.remove_route(route);
        r.note_caller_id(second).unwrap();
        // Identifiers are never handed out twice.
        assert_eq!(r.allocate_subscription_id().unwrap().get(), 4);
    }

    #[test]
    fn identifiers_run_out_at_the_protocol_limit() {
        let mut r: Router<&str> = Router::new();
        r.next_subscription_id = MAX_SUBSCRIPTION_ID;
        assert_eq!(
            r.allocate_subscription_id().map(NonZeroU32::get),
            Some(MAX_SUBSCRIPTION_ID)
        );
        assert_eq!(r.allocate_subscription_id(), None);
    }

    #[test]
    fn routing_versions_move_with_every_change() {
        let routing = Arc::new(Routing::new());
        let v0 = routing.version();
        let (tx, _rx) = crate::queue::channel(1);
        let id = routing.update(|t| t.add_route(vec![s("a")], None, false, Sink::Stream(tx)));
        let (table, v1) = routing.snapshot();
        assert!(v1 > v0);
        assert!(!table.is_empty());
        drop(RouteGuard::new(&routing, id));
        let (table, v2) = routing.snapshot();
        assert!(v2 > v1);
        assert!(table.is_empty());
    }
}
