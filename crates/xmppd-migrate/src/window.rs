//! The reader's byte window: the input read but not yet consumed, with the
//! line and column of its first byte.

use std::sync::Arc;

use crate::error::Location;

/// Compact the buffer once this many consumed bytes sit in front of it (and
/// they are at least half of it), so that consuming is O(1) amortised.
const COMPACT_AT: usize = 64 * 1024;

/// Unconsumed input. Every parser the reader drives holds the same bytes in
/// its own buffer; the window keeps them for locating errors and for
/// handing them from one parser to the next.
#[derive(Debug)]
pub(crate) struct Window {
    file: Option<Arc<str>>,
    buf: Vec<u8>,
    /// Index in `buf` of the first unconsumed byte.
    head: usize,
    /// Input offset of `buf[head]`.
    offset: u64,
    line: u64,
    column: u64,
}

impl Window {
    pub(crate) fn new(file: Option<Arc<str>>) -> Window {
        Window { file, buf: Vec::new(), head: 0, offset: 0, line: 1, column: 1 }
    }

    pub(crate) fn set_file(&mut self, file: Option<Arc<str>>) {
        self.file = file;
    }

    /// The unconsumed bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(self.head..).unwrap_or_default()
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len().saturating_sub(self.head)
    }

    /// Input offset of the first unconsumed byte.
    pub(crate) fn start(&self) -> u64 {
        self.offset
    }

    /// Input offset just after the last byte read.
    pub(crate) fn end(&self) -> u64 {
        self.offset + self.len() as u64
    }

    /// Appends newly read bytes.
    pub(crate) fn extend(&mut self, data: &[u8]) {
        if self.head >= COMPACT_AT && self.head * 2 >= self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The location of the first unconsumed byte.
    pub(crate) fn location(&self) -> Location {
        Location { file: self.file.clone(), line: self.line, column: self.column, offset: self.offset }
    }

    /// The location of input offset `target`, clamped to the window.
    pub(crate) fn location_at(&self, target: u64) -> Location {
        let count = self.index_of(target);
        let (line, column) = advance_position(self.line, self.column, self.bytes().get(..count).unwrap_or_default());
        Location { file: self.file.clone(), line, column, offset: self.offset + count as u64 }
    }

    /// Consumes bytes up to input offset `target` (clamped to the window)
    /// and returns the location of the new first byte.
    pub(crate) fn advance_to(&mut self, target: u64) -> Location {
        let count = self.index_of(target);
        let consumed = self.bytes().get(..count).unwrap_or_default();
        (self.line, self.column) = advance_position(self.line, self.column, consumed);
        self.head += count;
        self.offset += count as u64;
        self.location()
    }

    /// Consumes `count` bytes that do not move the line and column (a byte
    /// order mark).
    pub(crate) fn skip_invisible(&mut self, count: usize) {
        let count = count.min(self.len());
        self.head += count;
        self.offset += count as u64;
    }

    /// Consumes leading XML whitespace.
    pub(crate) fn skip_whitespace(&mut self) {
        let count = self.bytes().iter().take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')).count();
        self.advance_to(self.offset + count as u64);
    }

    /// The input offset of the first non-whitespace byte, if any.
    pub(crate) fn first_non_whitespace(&self) -> Option<u64> {
        let index = self.bytes().iter().position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))?;
        Some(self.offset + index as u64)
    }

    fn index_of(&self, target: u64) -> usize {
        usize::try_from(target.saturating_sub(self.offset)).unwrap_or(usize::MAX).min(self.len())
    }
}

/// Line and column after `bytes`, starting from (`line`, `column`). Lines end
/// at LF; columns count characters (UTF-8 lead bytes).
pub(crate) fn advance_position(line: u64, column: u64, bytes: &[u8]) -> (u64, u64) {
    let mut line = line;
    let mut column = column;
    let mut rest = bytes;
    while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
        line += 1;
        column = 1;
        rest = rest.get(newline + 1..).unwrap_or_default();
    }
    column += rest.iter().filter(|&&b| b & 0xC0 != 0x80).count() as u64;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        assert_eq!(advance_position(1, 1, b"ab\ncd"), (2, 3));
        assert_eq!(advance_position(1, 1, "é\n\nxé".as_bytes()), (3, 3));
        let mut window = Window::new(None);
        window.extend(b"  <a>\n <b/>");
        window.skip_whitespace();
        assert_eq!((window.location().line, window.location().column, window.start()), (1, 3, 2));
        let at = window.location_at(7);
        assert_eq!((at.line, at.column), (2, 2));
        assert_eq!(window.advance_to(100).offset, 11);
        assert_eq!(window.len(), 0);
    }
}
