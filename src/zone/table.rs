//! The nodes of a snapshot, in fixed-size chunks shared between snapshots.
//!
//! An IXFR changes a few names of a zone that may hold millions. The next
//! snapshot takes the previous one's chunks by reference and copies only
//! the chunks whose nodes change, so a one-record change costs one chunk
//! and a pointer per chunk, not a copy of the zone. A node is found by its
//! number in two loads: the chunk pointer, then the node. The last chunk
//! grows by doubling up to [`CHUNK`], so a zone of ten names (a partner
//! site may serve ten thousand of them) holds a few nodes, not 128.

use std::sync::Arc;

use super::Node;

/// Nodes per chunk: big enough that the table of chunk pointers stays
/// small, small enough that copying one for a change is cheap.
pub const CHUNK: usize = 128;

/// The first size of the last chunk.
const FIRST: usize = 4;

/// Every chunk but the last holds exactly [`CHUNK`] nodes.
type Chunk = Arc<[Node]>;

#[derive(Debug, Default, Clone)]
pub struct NodeTable {
    chunks: Vec<Chunk>,
    len: usize,
}

fn chunk_of(size: usize, from: &[Node]) -> Chunk {
    from.iter()
        .cloned()
        .chain(std::iter::repeat_with(Node::default))
        .take(size)
        .collect()
}

impl NodeTable {
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn get(&self, id: u32) -> &Node {
        let id = id as usize;
        debug_assert!(id < self.len);
        &self.chunks[id / CHUNK][id % CHUNK]
    }

    /// The node to change, its chunk copied first if another snapshot
    /// shares it.
    pub fn get_mut(&mut self, id: u32) -> &mut Node {
        let id = id as usize;
        debug_assert!(id < self.len);
        &mut Arc::make_mut(&mut self.chunks[id / CHUNK])[id % CHUNK]
    }

    /// Appends a node and returns its number.
    pub fn push(&mut self, node: Node) -> u32 {
        let id = self.len;
        let at = id % CHUNK;
        if at == 0 {
            self.chunks.push(chunk_of(FIRST.min(CHUNK), &[]));
        } else {
            let last = self.chunks.last_mut().expect("a chunk holds node id - 1");
            if at == last.len() {
                *last = chunk_of((at * 2).min(CHUNK), last);
            }
        }
        self.len += 1;
        *self.get_mut(id as u32) = node;
        id as u32
    }

    /// Appends `other`, whose first node must start a chunk here (both
    /// halves of a parallel build split on a chunk boundary).
    pub fn append(&mut self, other: NodeTable) {
        assert_eq!(self.len % CHUNK, 0, "append must start on a chunk boundary");
        debug_assert!(self.chunks.iter().all(|c| c.len() == CHUNK));
        self.chunks.extend(other.chunks);
        self.len += other.len;
    }

    /// Drops the unused tail of the last chunk.
    pub fn shrink_to_fit(&mut self) {
        let used = self.len % CHUNK;
        if let Some(last) = self.chunks.last_mut()
            && used != 0
            && last.len() > used
        {
            *last = chunk_of(used, &last[..used]);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        self.chunks.iter().flat_map(|c| c.iter()).take(self.len)
    }

    /// Nodes with their numbers.
    pub fn iter_ids(&self) -> impl Iterator<Item = (u32, &Node)> {
        self.iter().enumerate().map(|(i, n)| (i as u32, n))
    }

    /// Every node, for a change that touches them all.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        let len = self.len;
        self.chunks
            .iter_mut()
            .flat_map(|c| Arc::make_mut(c).iter_mut())
            .take(len)
    }

    /// Nodes allocated, used or not.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }

    /// Chunks this table shares with `other`.
    #[cfg(test)]
    pub fn shared_chunks(&self, other: &NodeTable) -> usize {
        self.chunks
            .iter()
            .zip(&other.chunks)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(len: u8) -> Node {
        Node {
            owner_len: len,
            ..Node::default()
        }
    }

    /// A small zone holds the nodes it has, not a whole chunk: ten
    /// thousand ten-name zones would otherwise take 5 KiB each for nodes.
    #[test]
    fn small_tables_hold_what_they_use() {
        let mut t = NodeTable::default();
        for i in 0..10u32 {
            assert_eq!(t.push(node(i as u8)), i);
            assert!(t.capacity() < 2 * t.len().max(FIRST), "{}", t.capacity());
        }
        t.shrink_to_fit();
        assert_eq!(t.capacity(), 10);
        assert_eq!(
            t.iter().map(|n| n.owner_len).collect::<Vec<_>>(),
            (0..10).collect::<Vec<u8>>()
        );
        // Growing again after a shrink, across a chunk boundary.
        for i in 10..(CHUNK as u32 + 3) {
            assert_eq!(t.push(node(i as u8)), i);
        }
        assert_eq!(t.get(CHUNK as u32 + 2).owner_len, (CHUNK + 2) as u8);
        assert_eq!(t.get(9).owner_len, 9);
        t.shrink_to_fit();
        assert_eq!(t.capacity(), CHUNK + 3);
    }

    #[test]
    fn push_get_share_copy_on_write() {
        let mut t = NodeTable::default();
        for i in 0..1000u32 {
            assert_eq!(t.push(node((i % 200) as u8)), i);
        }
        assert_eq!(t.len(), 1000);
        assert_eq!(t.iter().count(), 1000);
        assert_eq!(t.get(999).owner_len, (999 % 200) as u8);
        let copy = t.clone();
        assert_eq!(copy.shared_chunks(&t), 1000usize.div_ceil(CHUNK));
        let mut changed = copy.clone();
        changed.get_mut(5).owner_len = 77;
        assert_eq!(changed.shared_chunks(&t), 1000usize.div_ceil(CHUNK) - 1);
        assert_eq!(t.get(5).owner_len, 5);
        assert_eq!(changed.get(5).owner_len, 77);
        let mut second = NodeTable::default();
        second.push(node(9));
        let mut first = NodeTable::default();
        for _ in 0..CHUNK {
            first.push(node(1));
        }
        first.append(second);
        assert_eq!(first.len(), CHUNK + 1);
        assert_eq!(first.get(CHUNK as u32).owner_len, 9);
    }
}
