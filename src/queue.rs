//! A bounded multi-producer, single-consumer queue whose storage grows
//! with what it holds: the channel behind `Client::messages()` and each
//! subscription stream.
//!
//! tokio's `mpsc` allocates room for 32 values the moment a channel is
//! made; a received message is a few hundred bytes, so that is 8 KiB in
//! every client and every subscription stream, idle or not. This queue
//! starts empty and grows (and, once drained after a burst, shrinks)
//! with its contents, up to its capacity. The API is the small part of
//! `mpsc` the client uses: `try_send`, waiting for room with
//! `reserve_owned`, and `recv` / `try_recv` / `poll_recv`.
//!
//! One mutex guards the state. Every operation is a short critical
//! section with no await inside, and wakers are woken after the lock is
//! released.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Above this many slots, a queue that empties gives its storage back.
const KEEP_SLOTS: usize = 32;

/// A bounded queue of `capacity` values (at least 1).
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        capacity: capacity.max(1),
        state: Mutex::new(State {
            buf: VecDeque::new(),
            reserved: 0,
            senders: 1,
            receiver_gone: false,
            receiver_waker: None,
            space_wakers: Vec::new(),
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

struct Shared<T> {
    capacity: usize,
    state: Mutex<State<T>>,
}

struct State<T> {
    buf: VecDeque<T>,
    /// Places promised to `OwnedPermit`s not yet used.
    reserved: usize,
    senders: usize,
    receiver_gone: bool,
    /// The receiver waiting for a value.
    receiver_waker: Option<Waker>,
    /// Senders waiting for room.
    space_wakers: Vec<Waker>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock but a value's own drop,
        // after which the state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> State<T> {
    fn has_room(&self, capacity: usize) -> bool {
        self.buf.len() + self.reserved < capacity
    }

    /// Queues `value` and returns the receiver's waker to wake.
    fn push(&mut self, value: T) -> Option<Waker> {
        self.buf.push_back(value);
        self.receiver_waker.take()
    }
}

/// Why [`Sender::try_send`] gave the value back.
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    /// The queue is at capacity.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// The receiver is gone.
#[derive(Debug)]
pub(crate) struct Closed;

/// The sending side; clones send into the same queue.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            if state.senders == 0 {
                state.receiver_waker.take()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> Sender<T> {
    /// Queues `value` if there is room, without waiting.
    pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let waker = {
            let mut state = self.shared.lock();
            if state.receiver_gone {
                return Err(TrySendError::Closed(value));
            }
            if !state.has_room(self.shared.capacity) {
                return Err(TrySendError::Full(value));
            }
            state.push(value)
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Waits for room and holds it for one value. Cancel safe: a dropped
    /// wait holds nothing.
    pub(crate) async fn reserve_owned(self) -> Result<OwnedPermit<T>, Closed> {
        poll_fn(|cx| self.poll_reserve(cx)).await?;
        Ok(OwnedPermit { sender: Some(self) })
    }

    fn poll_reserve(&self, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return Poll::Ready(Err(Closed));
        }
        if state.has_room(self.shared.capacity) {
            state.reserved += 1;
            return Poll::Ready(Ok(()));
        }
        if !state.space_wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.space_wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// A place held in the queue by [`Sender::reserve_owned`].
pub(crate) struct OwnedPermit<T> {
    sender: Option<Sender<T>>,
}

impl<T> OwnedPermit<T> {
    /// Queues `value` in the place held (or drops it if the receiver went
    /// away meanwhile).
    pub(crate) fn send(mut self, value: T) {
        let Some(sender) = self.sender.take() else {
            return;
        };
        let waker = {
            let mut state = sender.shared.lock();
            state.reserved -= 1;
            if state.receiver_gone {
                None
            } else {
                state.push(value)
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for OwnedPermit<T> {
    fn drop(&mut self) {
        // Unused: give the place back to whoever waits for one.
        if let Some(sender) = self.sender.take() {
            let wakers = {
                let mut state = sender.shared.lock();
                state.reserved -= 1;
                std::mem::take(&mut state.space_wakers)
            };
            wakers.into_iter().for_each(Waker::wake);
        }
    }
}

/// The receiving side.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (values, wakers) = {
            let mut state = self.shared.lock();
            state.receiver_gone = true;
            (
                std::mem::take(&mut state.buf),
                std::mem::take(&mut state.space_wakers),
            )
        };
        // Dropped outside the lock: a value's drop may do anything.
        drop(values);
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TryRecvError {
    /// Nothing queued right now.
    Empty,
    /// Nothing queued, and every sender is gone.
    Disconnected,
}

impl<T> Receiver<T> {
    /// The next value, waiting for one; `None` once every sender is gone
    /// and the queue is empty. Cancel safe.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next value, or why there is none now.
    pub(crate) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let (value, wakers) = {
            let mut state = self.shared.lock();
            match state.buf.pop_front() {
                Some(v) => (v, Self::after_pop(&mut state)),
                None if state.senders == 0 => return Err(TryRecvError::Disconnected),
                None => return Err(TryRecvError::Empty),
            }
        };
        wakers.into_iter().for_each(Waker::wake);
        Ok(value)
    }

    /// Polls for the next value, as `recv`.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let (value, wakers) = {
            let mut state = self.shared.lock();
            match state.buf.pop_front() {
                Some(v) => (v, Self::after_pop(&mut state)),
                None if state.senders == 0 => return Poll::Ready(None),
                None => {
                    match &state.receiver_waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => state.receiver_waker = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                }
            }
        };
        wakers.into_iter().for_each(Waker::wake);
        Poll::Ready(Some(value))
    }

    /// A place came free: the senders waiting for one may try again. A
    /// queue drained after a burst gives back its storage.
    fn after_pop(state: &mut State<T>) -> Vec<Waker> {
        if state.buf.is_empty() && state.buf.capacity() > KEEP_SLOTS {
            state.buf = VecDeque::new();
        }
        std::mem::take(&mut state.space_wakers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    #[tokio::test]
    async fn values_come_out_in_order_and_the_bound_holds() {
        let (tx, mut rx) = channel::<u32>(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.recv().await, Some(1));
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[tokio::test]
    async fn recv_ends_once_every_sender_is_gone_and_the_queue_is_drained() {
        let (tx, mut rx) = channel::<u32>(4);
        let tx2 = tx.clone();
        tx.try_send(7).unwrap();
        drop(tx);
        drop(tx2);
        assert_eq!(rx.recv().await, Some(7));
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_send_and_by_the_last_sender_leaving() {
        let (tx, mut rx) = channel::<u32>(4);
        let recv = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.try_send(5).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(tx);
        let got = tokio::time::timeout(Duration::from_secs(5), recv)
            .await
            .expect("woken")
            .expect("no panic");
        assert_eq!(got, (Some(5), None));
    }

    #[tokio::test]
    async fn reserve_waits_for_room_and_the_permit_keeps_its_place() {
        let (tx, mut rx) = channel::<u32>(1);
        tx.try_send(1).unwrap();
        let waiting = tokio::spawn(tx.clone().reserve_owned());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "no room yet");
        assert_eq!(rx.recv().await, Some(1));
        let permit = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the room made")
            .expect("no panic")
            .expect("receiver alive");
        // The held place is not for anyone else.
        assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
        permit.send(2);
        assert_eq!(rx.recv().await, Some(2));
    }

    #[tokio::test]
    async fn an_unused_permit_gives_its_place_back() {
        let (tx, mut rx) = channel::<u32>(1);
        let permit = tx.clone().reserve_owned().await.expect("room");
        assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
        drop(permit);
        tx.try_send(1).unwrap();
        assert_eq!(rx.recv().await, Some(1));
    }

    #[tokio::test]
    async fn a_dropped_receiver_closes_the_queue_for_senders_and_waiters() {
        let (tx, rx) = channel::<u32>(1);
        tx.try_send(1).unwrap();
        let waiting = tokio::spawn(tx.clone().reserve_owned());
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(rx);
        let result = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("no panic");
        assert!(result.is_err());
        assert!(matches!(tx.try_send(2), Err(TrySendError::Closed(2))));
    }

    #[tokio::test]
    async fn storage_grows_with_the_contents_and_is_given_back_when_drained() {
        let (tx, mut rx) = channel::<u64>(1024);
        assert_eq!(tx.shared.lock().buf.capacity(), 0, "nothing up front");
        for n in 0..500 {
            tx.try_send(n).unwrap();
        }
        assert!(tx.shared.lock().buf.capacity() >= 500);
        for n in 0..500 {
            assert_eq!(rx.try_recv(), Ok(n));
        }
        assert_eq!(tx.shared.lock().buf.capacity(), 0, "drained: given back");
    }
}
