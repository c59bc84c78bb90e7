//! Packet identifier allocation: non-zero, and never one that is still in use.

use std::num::NonZeroU16;

use crate::id_map::IdSet;

/// Hands out packet identifiers for our outgoing QoS 1/2 PUBLISH,
/// SUBSCRIBE and UNSUBSCRIBE packets.
///
/// Identifiers go round 1, 2, ..., 65535, 1, ... skipping any still in use,
/// so a freshly released one is not reused straight away: a late duplicate
/// acknowledgement for an old exchange is then unlikely to match a new one.
#[derive(Debug, Default)]
pub(crate) struct PacketIds {
    last: u16,
    in_use: IdSet<u16>,
}

impl PacketIds {
    /// The next free identifier, now marked in use; `None` if all 65,535 are.
    pub(crate) fn allocate(&mut self) -> Option<NonZeroU16> {
        if self.in_use.len() >= usize::from(u16::MAX) {
            return None;
        }
        loop {
            self.last = self.last.checked_add(1).unwrap_or(1);
            if self.in_use.insert(self.last) {
                return NonZeroU16::new(self.last);
            }
        }
    }

    /// Frees an identifier; true if it was in use.
    pub(crate) fn release(&mut self, id: NonZeroU16) -> bool {
        self.in_use.remove(&id.get())
    }

    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_nonzero_unique_and_wrap() {
        let mut ids = PacketIds::default();
        let first = ids.allocate().unwrap();
        assert_eq!(first.get(), 1);
        // Hold 1, burn through to the end of the range and wrap.
        for expected in 2..=u16::MAX {
            let id = ids.allocate().unwrap();
            assert_eq!(id.get(), expected);
            ids.release(id);
        }
        // 1 is still held, so the wrap skips it.
        assert_eq!(ids.allocate().unwrap().get(), 2);
    }

    #[test]
    fn exhaustion_is_reported_not_looped() {
        let mut ids = PacketIds::default();
        for _ in 0..u16::MAX {
            assert!(ids.allocate().is_some());
        }
        assert_eq!(ids.in_use(), 65_535);
        assert_eq!(ids.allocate(), None);
        assert!(ids.release(NonZeroU16::new(300).unwrap()));
        assert_eq!(ids.allocate().unwrap().get(), 300);
    }
}
