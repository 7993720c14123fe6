//! In-memory sockets for tests, fuzzing and simulation: what the shell would read and write on a
//! real socket, with the kernel's behaviour made explicit (how much it takes before a write would
//! block, when the client's end of stream comes).

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};

use crate::transport::Socket;

/// A socket as the server sees it: `input` is what the client sent, `output` what we wrote.
#[derive(Debug, Default)]
pub struct Pipe {
    pub input: VecDeque<u8>,
    pub output: Vec<u8>,
    /// Count what is written, but do not keep it (long fuzzing runs).
    pub discard_output: bool,
    /// Bytes ever written.
    pub written: usize,
    /// The client's end of stream comes after `input`.
    pub eof: bool,
    /// Bytes the "kernel" still takes before writes would block; `None`: no limit.
    pub room: Option<usize>,
    /// Our FIN went out (`Socket::shutdown_write`).
    pub fin: bool,
    /// Reads served (each a system call on a real socket).
    pub reads: usize,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(self.input.len());
        for (slot, b) in buf.iter_mut().zip(self.input.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.room {
            Some(0) => return Err(ErrorKind::WouldBlock.into()),
            Some(room) => {
                let n = buf.len().min(*room);
                *room -= n;
                n
            }
            None => buf.len(),
        };
        if !self.discard_output {
            self.output.extend_from_slice(&buf[..n]);
        }
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for Pipe {
    fn shutdown_write(&mut self) {
        self.fin = true;
    }
}
