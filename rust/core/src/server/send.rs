//! Sending from the game to many peers at once: multiplayer mode's targets, `broadcast` and
//! `send_each`, with one copy of a message's bytes shared by all its recipients.

use tungstenite::Bytes;

use super::Server;
use crate::error::{BroadcastError, SendError, TargetError};
use crate::event::{Command, Kind, Packet, PeerId, PeerState};
use crate::peer_handle::PeerHandle;

impl Server {
    /// A copy of an outgoing message's bytes for `send_to`, `broadcast` or `send_each`: a slice of
    /// the chunk small messages share (see `payload`).
    pub fn copy_payload(&self, data: &[u8]) -> Bytes {
        self.channel.copy_payload(data)
    }

    /// Multiplayer mode's `put_packet`: `target > 0` one peer, `0` every peer, `< 0` every peer
    /// but `-target`. A broadcast shares one copy of the bytes among all recipients. Peers that
    /// are closing are skipped; peers whose queue is full are reported (the others still get it).
    pub fn send_to(&self, target: PeerId, data: Bytes, text: bool) -> Result<(), TargetError> {
        let packet = Packet::new(data, text);
        if target > 0 {
            let peer = self.peers.get(&target).ok_or(TargetError::UnknownPeer(target))?;
            return peer
                .send(packet.data, text)
                .map_err(|e| TargetError::Refused(vec![(target, e)]));
        }
        let mut ids = Vec::with_capacity(self.peers.len());
        let mut refused = Vec::new();
        for (&id, peer) in &self.peers {
            if !is_recipient(target, id) || peer.state() != PeerState::Open {
                continue;
            }
            match peer.shared.reserve_outbound(packet.data.len()) {
                Ok(()) => ids.push(id),
                Err(limit) => refused.push((id, SendError::Full(limit))),
            }
        }
        if !ids.is_empty() {
            self.channel.command(Command::SendMany { ids, packet });
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(TargetError::Refused(refused))
        }
    }

    /// Raw mode's one-call broadcast: `data` to every open peer (`to == None`) or to the peers in
    /// `to`, except those in `exclude`, with one copy of the bytes shared by all recipients until
    /// each frame is written. Returns the peers that did not get it and why (an id in `to` that is
    /// not connected, a peer that is closing, a full queue); everyone else has it queued.
    pub fn broadcast(
        &self,
        data: Bytes,
        kind: impl Into<Kind>,
        to: Option<&[PeerId]>,
        exclude: &[PeerId],
    ) -> Vec<(PeerId, BroadcastError)> {
        let mut ids = Vec::with_capacity(to.map_or(self.peers.len(), <[PeerId]>::len));
        let mut failed = Vec::new();
        let mut consider = |id: PeerId, peer: Option<&PeerHandle>| {
            if exclude.contains(&id) {
                return;
            }
            match reserve(peer, data.len()) {
                Ok(()) => ids.push(id),
                Err(why) => failed.push((id, why)),
            }
        };
        match to {
            Some(list) => {
                let mut seen = std::collections::HashSet::with_capacity(list.len());
                for &id in list.iter().filter(|id| seen.insert(**id)) {
                    consider(id, self.peers.get(&id));
                }
            }
            None => {
                for (&id, peer) in &self.peers {
                    consider(id, Some(peer));
                }
            }
        }
        if !ids.is_empty() {
            self.channel.command(Command::SendMany {
                ids,
                packet: Packet::new(data, kind),
            });
        }
        failed
    }

    /// Sends each message to its own peer, in order, with one wake of the I/O thread for all of
    /// them (a game server's per-client states; `queue_messages`' echo). Each item is a peer, the
    /// bytes, and its kind (a `bool`: text or binary); each is checked as `PeerHandle::send` checks it.
    /// Returns the position in `messages` and the reason of each one that was not queued; every
    /// other one is.
    pub fn send_each<K: Into<Kind>>(
        &self,
        messages: impl IntoIterator<Item = (PeerId, Bytes, K)>,
    ) -> Vec<(usize, BroadcastError)> {
        let mut failed = Vec::new();
        let mut cmds = Vec::new();
        for (i, (id, data, text)) in messages.into_iter().enumerate() {
            match reserve(self.peers.get(&id), data.len()) {
                Ok(()) => cmds.push(Command::Send {
                    id,
                    packet: Packet::new(data, text),
                }),
                Err(why) => failed.push((i, why)),
            }
        }
        self.channel.commands(&mut cmds);
        failed
    }
}

/// A multi-send's check of one recipient: connected, open, and room for `len` more bytes (which
/// are then reserved).
fn reserve(peer: Option<&PeerHandle>, len: usize) -> Result<(), BroadcastError> {
    let peer = peer.ok_or(BroadcastError::UnknownPeer)?;
    if peer.state() != PeerState::Open {
        return Err(BroadcastError::Send(SendError::NotOpen));
    }
    peer.shared
        .reserve_outbound(len)
        .map_err(|limit| BroadcastError::Send(SendError::Full(limit)))
}

/// Whether peer `id` receives a multiplayer packet sent to `target` (`MultiplayerPeer`'s
/// convention: `> 0` that peer, `0` everyone, `< 0` everyone but `-target`). `-i32::MIN` is not an
/// id, so that target excludes no one.
pub fn is_recipient(target: PeerId, id: PeerId) -> bool {
    match target {
        0 => true,
        t if t > 0 => id == t,
        t => Some(id) != t.checked_neg(),
    }
}
