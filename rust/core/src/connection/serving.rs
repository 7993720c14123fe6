//! Plain HTTP requests as the connection takes them: a file under a mount is streamed from here
//! (`files::StaticFiles` decides what the request gets), anything else goes to the game when it
//! answers such requests (`Phase::Deciding` without an upgrade), or gets `404`.
//!
//! A file's body goes through the output queue a chunk at a time, refilled when the socket has
//! taken half of it: a download holds at most `chunk_limit` bytes (`outbound_buffer_size`, at
//! least `MIN_DOWNLOAD_BUFFER`) whatever the file's size, and reading the file waits for the client. A response
//! that keeps the connection alive (HTTP/1.1, at most `MAX_REQUESTS_PER_CONNECTION`) sends the
//! connection back to reading a request once its last byte is on the socket, with
//! `handshake_timeout` to send it; the bytes the client sent after the request are its start.

use std::sync::Arc;

use super::{Connection, Context, Phase};
use crate::event::Event;
use crate::files::{Served, DOWNLOAD_STALL_TIMEOUT, MAX_REQUESTS_PER_CONNECTION, MIN_DOWNLOAD_BUFFER};
use crate::handshake::refusal;
use crate::request::Request;

/// What a round of streaming found.
pub(super) enum Streamed {
    /// More to send, or nothing to do.
    Going,
    /// The response is on the socket and the connection reads the next request.
    Next,
    /// The file could not be read to the length announced: the client must see the response cut.
    Failed,
}

/// Bytes of a file one service of the socket may queue: one fast reader on loopback cannot keep
/// the I/O thread from its other connections (the rest goes in the next turn), while a game
/// polling 60 times a second with inline I/O still serves 60 MiB/s per download.
pub const FILE_BYTES_PER_SERVICE: usize = 1024 * 1024;

impl Connection {
    /// The shell starts moving this connection's bytes (`Transport::service`): a file being
    /// served may queue up to `FILE_BYTES_PER_SERVICE` more. `has_output` stays true while any of
    /// the file is left, so the endpoint comes back in its next turn even if the socket never
    /// blocked.
    pub fn begin_service(&mut self, cx: &mut Context) -> super::Status {
        if !matches!(self.phase, Phase::Serving { .. }) {
            return super::Status::Alive;
        }
        self.stream_budget = FILE_BYTES_PER_SERVICE;
        self.drive(cx, false)
    }

    /// A complete plain request (`request`, with `next` the bytes after it).
    pub(super) fn take_plain(&mut self, request: Request, next: Vec<u8>, keep_alive: bool, cx: &mut Context) {
        self.served += 1;
        let keep_alive = keep_alive && self.served < MAX_REQUESTS_PER_CONNECTION && !self.shutting_down;
        let answers = cx.settings.config.answer_requests;
        if let Some(files) = &cx.settings.config.files {
            match files.serve(&request, keep_alive) {
                Served::Unmounted => {}
                Served::NotFound { response } if !answers => return self.refuse(response),
                Served::NotFound { .. } => {}
                Served::Answer { response, keep_alive } => {
                    self.out.push(&response);
                    return self.serve(None, 0, keep_alive, next, cx);
                }
                Served::File {
                    head,
                    body,
                    len,
                    keep_alive,
                } => {
                    self.out.push(&head);
                    return self.serve(body, len, keep_alive, next, cx);
                }
            }
        }
        if !answers {
            return self.refuse(refusal(404, "", "not found"));
        }
        let request = Arc::new(request);
        let id = cx.ids.allocate();
        cx.events.push(Event::Requested {
            id,
            request: request.clone(),
        });
        // Nothing after the request is read as another one (the game's answer closes).
        self.phase = Phase::Deciding {
            upgrade: None,
            request,
            id,
            early: Vec::new(),
        };
    }

    fn serve(&mut self, body: Option<std::fs::File>, len: u64, keep_alive: bool, next: Vec<u8>, cx: &mut Context) {
        self.deadline = Some(cx.now + DOWNLOAD_STALL_TIMEOUT);
        // (The service that read the request may queue the first part of the file.)
        self.stream_budget = FILE_BYTES_PER_SERVICE;
        self.phase = Phase::Serving {
            body,
            left: len,
            keep_alive,
            next,
        };
    }

    /// Refills the output queue from the file being served, and ends the response once all of it
    /// is on the socket.
    pub(super) fn stream(&mut self, cx: &mut Context) -> Streamed {
        let limit = cx.settings.config.limits.outbound_buffer_size.max(MIN_DOWNLOAD_BUFFER);
        let Phase::Serving {
            body,
            left,
            keep_alive,
            next,
        } = &mut self.phase
        else {
            return Streamed::Going;
        };
        if *left > 0 && self.out.len() <= limit / 2 && self.stream_budget > 0 {
            let Some(file) = body.as_mut() else {
                return Streamed::Failed;
            };
            let max = (*left).min((limit - self.out.len()) as u64) as usize;
            match self.out.read_from(file, max) {
                Ok(0) | Err(_) => return Streamed::Failed,
                Ok(n) => {
                    *left -= n as u64;
                    self.stream_budget = self.stream_budget.saturating_sub(n);
                }
            }
        }
        if *left > 0 {
            return Streamed::Going;
        }
        if !*keep_alive {
            self.phase = Phase::Ending {
                peer: None,
                clean: true,
            };
            return Streamed::Going;
        }
        if !self.out.is_empty() {
            return Streamed::Going;
        }
        let buf = std::mem::take(next);
        self.phase = Phase::Handshake { buf, scanned: 0 };
        self.deadline = Some(cx.now + cx.settings.config.handshake_timeout);
        Streamed::Next
    }
}
