//! The bytes of the packets replay holds (the reorder window, the copy
//! check), packed back to back in blocks of [`BLOCK`] bytes: one
//! allocation per block instead of one per packet, and a block is reused
//! once none of its packets is held. A packet larger than a block gets a
//! block of its own.

/// Bytes per block.
pub const BLOCK: usize = 1 << 20;

/// Where a held packet's bytes are.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    block: u32,
    off: u32,
    len: u32,
}

impl Span {
    pub fn len(&self) -> usize {
        self.len as usize
    }
}

#[derive(Default)]
struct Block {
    buf: Vec<u8>,
    /// Packets of this block still held.
    live: u32,
}

#[derive(Default)]
pub(super) struct Arena {
    blocks: Vec<Block>,
    /// Blocks with nothing held (their buffers kept for reuse).
    free: Vec<u32>,
    /// The block being filled.
    cur: Option<u32>,
}

impl Arena {
    /// Holds a copy of `data`.
    pub fn push(&mut self, data: &[u8]) -> Span {
        let fits = |b: &Block| b.buf.capacity() - b.buf.len() >= data.len();
        let cur = match self.cur {
            Some(c) if fits(&self.blocks[c as usize]) => c,
            _ => {
                let c = match self.free.pop() {
                    Some(c) => c,
                    None => {
                        self.blocks.push(Block::default());
                        (self.blocks.len() - 1) as u32
                    }
                };
                let b = &mut self.blocks[c as usize];
                b.buf.clear();
                if b.buf.capacity() < data.len().max(BLOCK) {
                    b.buf = Vec::with_capacity(data.len().max(BLOCK));
                }
                // The previous block is freed by its last release.
                if let Some(old) = self.cur
                    && self.blocks[old as usize].live == 0
                {
                    self.free.push(old);
                }
                self.cur = Some(c);
                c
            }
        };
        let b = &mut self.blocks[cur as usize];
        let off = b.buf.len();
        b.buf.extend_from_slice(data);
        b.live += 1;
        Span { block: cur, off: off as u32, len: data.len() as u32 }
    }

    pub fn get(&self, s: Span) -> &[u8] {
        let off = s.off as usize;
        &self.blocks[s.block as usize].buf[off..off + s.len as usize]
    }

    /// Lets go of a packet; its block is reused once it holds none.
    pub fn release(&mut self, s: Span) {
        let b = &mut self.blocks[s.block as usize];
        b.live -= 1;
        if b.live == 0 {
            if self.cur == Some(s.block) {
                // Nothing held: fill it again from the start.
                b.buf.clear();
            } else {
                self.free.push(s.block);
            }
        }
    }

    /// Heap bytes (for tests).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.buf.capacity()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_once_released() {
        let mut a = Arena::default();
        let mut held = std::collections::VecDeque::new();
        for i in 0..100_000u32 {
            let p = vec![(i % 251) as u8; 100 + (i % 300) as usize];
            let s = a.push(&p);
            assert_eq!(a.get(s), &p[..]);
            held.push_back((s, p));
            // A window of 5,000 packets.
            if held.len() > 5000 {
                let (s, p) = held.pop_front().expect("held");
                assert_eq!(a.get(s), &p[..], "bytes stay while held");
                a.release(s);
            }
        }
        // 5,000 packets of at most 400 bytes: two blocks, three at most.
        assert!(a.heap_bytes() <= 3 * BLOCK, "{} bytes", a.heap_bytes());
        let big = vec![1u8; 3 * BLOCK];
        let s = a.push(&big);
        assert_eq!(a.get(s).len(), big.len());
    }
}
