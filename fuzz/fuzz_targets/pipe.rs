//! An in-memory socket for the fuzz targets: `input` is what the client sent, writes are kept
//! (`output`) up to `room` bytes before they would block.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use wss_core::connection::Stream;

#[derive(Default)]
pub struct Pipe {
    pub input: VecDeque<u8>,
    pub output: Vec<u8>,
    /// Keep what is written (the multiplayer target reads it back); otherwise only count it.
    pub keep_output: bool,
    pub written: usize,
    pub eof: bool,
    /// Bytes the "kernel" still takes before writes would block; `None`: no limit.
    pub room: Option<usize>,
    /// `close_write` was called: nothing may be written after it.
    pub closed_write: bool,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(self.input.len());
        for (d, s) in buf.iter_mut().zip(self.input.drain(..n)) {
            *d = s;
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        assert!(!self.closed_write, "a write after close_notify and FIN");
        let n = match &mut self.room {
            Some(0) => return Err(io::ErrorKind::WouldBlock.into()),
            Some(room) => {
                let n = buf.len().min(*room);
                *room -= n;
                n
            }
            None => buf.len(),
        };
        if self.keep_output {
            self.output.extend_from_slice(&buf[..n]);
        }
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Pipe {
    fn close_write(&mut self) -> io::Result<()> {
        self.closed_write = true;
        Ok(())
    }
    fn half_close(&mut self) {}
    fn peek_raw(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(self.input.len());
        for (d, s) in buf.iter_mut().zip(self.input.iter()) {
            *d = *s;
        }
        Ok(n)
    }
    fn skip_raw(&mut self, n: usize) -> io::Result<()> {
        self.input.drain(..n.min(self.input.len()));
        Ok(())
    }
}
