//! [`ByNumber`]: values by number, where numbers are given out in order and
//! taken back in any order (the dispatcher's events in flight).

use std::collections::VecDeque;

/// Values by number, where numbers are given out in order and taken back
/// in any order: chunks of a ring from the oldest number still held, so
/// that adding and taking back cost no tree walk and no allocation per
/// value, and a chunk whose values are all taken back is freed even behind
/// an older one still held (one value retrying for a minute does not keep
/// the slots of everything numbered since).
pub(super) struct ByNumber<T> {
    /// The number of the first slot of `chunks[0]`.
    first: u64,
    chunks: VecDeque<Option<Chunk<T>>>,
    held: usize,
}

/// Slots per chunk.
const CHUNK: usize = 256;

struct Chunk<T> {
    slots: Vec<Option<T>>,
    held: usize,
}

impl<T> Default for ByNumber<T> {
    fn default() -> Self {
        ByNumber {
            first: 0,
            chunks: VecDeque::new(),
            held: 0,
        }
    }
}

impl<T> ByNumber<T> {
    /// Where `number` is: (chunk, slot), if it is not before the first.
    fn place(&self, number: u64) -> Option<(usize, usize)> {
        let at = usize::try_from(number.checked_sub(self.first)?).ok()?;
        Some((at / CHUNK, at % CHUNK))
    }

    /// Adds `value` as `number`, the one after the last added.
    pub(super) fn insert(&mut self, number: u64, value: T) {
        if self.chunks.is_empty() {
            // Chunks start at multiples of CHUNK, so `place` stays a
            // division whatever number comes first.
            self.first = number - number % CHUNK as u64;
        }
        let Some((chunk, slot)) = self.place(number) else {
            return;
        };
        while self.chunks.len() <= chunk {
            // The chunk that was being added to is full now: gone if empty.
            if let Some(last) = self.chunks.back_mut()
                && last.as_ref().is_some_and(|c| c.held == 0)
            {
                *last = None;
            }
            self.chunks.push_back(Some(Chunk {
                slots: Vec::with_capacity(CHUNK),
                held: 0,
            }));
        }
        if let Some(Some(chunk)) = self.chunks.get_mut(chunk) {
            chunk.slots.resize_with(slot, || None);
            chunk.slots.push(Some(value));
            chunk.held += 1;
            self.held += 1;
        }
    }

    pub(super) fn get_mut(&mut self, number: u64) -> Option<&mut T> {
        let (chunk, slot) = self.place(number)?;
        self.chunks
            .get_mut(chunk)?
            .as_mut()?
            .slots
            .get_mut(slot)?
            .as_mut()
    }

    pub(super) fn remove(&mut self, number: u64) -> Option<T> {
        let (at, slot) = self.place(number)?;
        let last = at + 1 == self.chunks.len();
        let chunk = self.chunks.get_mut(at)?.as_mut()?;
        let value = chunk.slots.get_mut(slot)?.take()?;
        chunk.held -= 1;
        self.held -= 1;
        // A chunk emptied for good (full, and not the one being added to)
        // goes; so do leading ones.
        if chunk.held == 0 && chunk.slots.len() == CHUNK && !last {
            self.chunks[at] = None;
        }
        while let Some(front) = self.chunks.front() {
            let spent = match front {
                None => true,
                Some(chunk) => chunk.held == 0 && chunk.slots.len() == CHUNK,
            };
            if !spent {
                break;
            }
            self.chunks.pop_front();
            self.first += CHUNK as u64;
        }
        Some(value)
    }

    /// The oldest number still held.
    pub(super) fn oldest(&self) -> Option<u64> {
        if self.held == 0 {
            return None;
        }
        self.chunks.iter().enumerate().find_map(|(c, chunk)| {
            let slot = chunk.as_ref()?.slots.iter().position(Option::is_some)?;
            Some(self.first + (c * CHUNK + slot) as u64)
        })
    }

    pub(super) fn len(&self) -> usize {
        self.held
    }

    /// Takes every value out, oldest first.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = T> + use<T> {
        self.held = 0;
        std::mem::take(&mut self.chunks)
            .into_iter()
            .flatten()
            .flat_map(|chunk| chunk.slots)
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_held_keep_only_their_chunks_however_many_were_settled_since() {
        let mut held = ByNumber::default();
        for n in 7..100_007u64 {
            held.insert(n, n);
        }
        for n in 7..100_007u64 {
            if n != 500 {
                assert_eq!(held.remove(n), Some(n));
            }
        }
        assert_eq!((held.len(), held.oldest()), (1, Some(500)));
        let chunks = held.chunks.iter().filter(|c| c.is_some()).count();
        assert!(chunks <= 2, "{chunks} chunks kept for one value");
        assert_eq!(held.get_mut(500).copied(), Some(500));
        assert_eq!(held.remove(501), None);
        held.insert(100_007, 1);
        assert_eq!(held.remove(500), Some(500));
        assert_eq!(held.oldest(), Some(100_007));
        assert_eq!(held.drain().collect::<Vec<_>>(), [1]);
        assert_eq!(held.len(), 0);
    }
}
