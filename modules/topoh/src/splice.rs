//! Changes to a message's bytes, collected while reading the parsed
//! message and applied in one pass (Kamailio's lumps, for what topoh
//! needs: replace a range, insert at a point).

/// Edits to one buffer: each replaces `start..end` (empty for an insert).
#[derive(Debug, Default)]
pub struct Splice {
    edits: Vec<(usize, usize, Vec<u8>)>,
}

impl Splice {
    /// Replaces `start..end` with `with`.
    pub fn replace(&mut self, start: usize, end: usize, with: Vec<u8>) {
        self.edits.push((start, end, with));
    }

    /// Inserts `with` at `at`.
    pub fn insert(&mut self, at: usize, with: Vec<u8>) {
        self.edits.push((at, at, with));
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// The buffer with the edits applied in order of position; an edit
    /// overlapping an earlier one (or out of the buffer) is skipped.
    pub fn apply(mut self, buf: &[u8]) -> Vec<u8> {
        self.edits.sort_by_key(|e| (e.0, e.1));
        let extra: usize = self.edits.iter().map(|e| e.2.len()).sum();
        let mut out = Vec::with_capacity(buf.len() + extra);
        let mut at = 0;
        for (start, end, with) in self.edits {
            if start < at || end > buf.len() || start > end {
                continue;
            }
            out.extend_from_slice(&buf[at..start]);
            out.extend_from_slice(&with);
            at = end;
        }
        out.extend_from_slice(&buf[at..]);
        out
    }
}

/// Where `part` (a slice of `whole`) starts in it.
pub fn offset(whole: &[u8], part: &str) -> usize {
    (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_apply_in_position_order_and_overlaps_are_skipped() {
        let mut s = Splice::default();
        s.replace(6, 11, b"there".to_vec());
        s.insert(0, b">".to_vec());
        s.insert(11, b"!".to_vec());
        s.replace(7, 9, b"XX".to_vec());
        assert_eq!(s.apply(b"hello world"), b">hello there!".to_vec());
    }
}
