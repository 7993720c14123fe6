//! What a connection keeps for context takeover (the dedicated setting): the last `2^bits` bytes
//! of the messages compressed in one direction, the LZ77 window the other side holds too. The
//! compressor or inflater itself stays shared (or lives only while a message arrives): before each
//! message it is given this window as its dictionary, which lets the message refer back into it
//! exactly as a compressor kept per connection would. So a connection's cost is the window's
//! bytes, allocated at its first compressed message, never more.

pub struct Window {
    bytes: Vec<u8>,
    size: usize,
}

impl Window {
    /// A window of `2^bits` bytes (9-15), empty.
    pub fn new(bits: u8) -> Window {
        Window {
            bytes: Vec::new(),
            size: 1 << bits.clamp(9, 15),
        }
    }

    /// The last bytes of the messages so far, at most the window's size.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The memory held (its capacity: the window's size once a message went through).
    pub fn held(&self) -> usize {
        self.bytes.capacity()
    }

    /// Appends one message's (uncompressed) bytes, dropping what falls out of the window.
    pub fn push(&mut self, data: &[u8]) {
        if self.bytes.capacity() < self.size {
            self.bytes.reserve_exact(self.size - self.bytes.len());
        }
        if data.len() >= self.size {
            self.bytes.clear();
            self.bytes.extend_from_slice(&data[data.len() - self.size..]);
            return;
        }
        let excess = (self.bytes.len() + data.len()).saturating_sub(self.size);
        self.bytes.drain(..excess);
        self.bytes.extend_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_keeps_the_last_bytes_and_never_grows_past_its_size() {
        let mut w = Window::new(9);
        assert_eq!(w.held(), 0, "nothing until the first message");
        w.push(b"abc");
        assert_eq!(w.bytes(), b"abc");
        assert_eq!(w.held(), 512);
        let long: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
        w.push(&long);
        assert_eq!(w.bytes(), &long[2000 - 512..]);
        for n in [1usize, 100, 511, 512, 513] {
            let before = w.bytes().to_vec();
            let data = vec![n as u8; n];
            w.push(&data);
            let mut all = before;
            all.extend_from_slice(&data);
            assert_eq!(w.bytes(), &all[all.len() - 512..], "{n}");
            assert_eq!(w.held(), 512, "{n}");
        }
    }
}
