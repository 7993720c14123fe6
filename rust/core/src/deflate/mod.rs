//! permessage-deflate (RFC 7692), with no compression state kept per connection: the negotiation
//! (`negotiate`: the server always takes no context takeover both ways), the client's compressed
//! messages inflated before tungstenite reads them (`inbound`: its message layer refuses RSV1),
//! and the game's messages compressed with a compressor per thread (`outbound`). The connection
//! uses them in `connection/deflating.rs`.

pub mod inbound;
pub mod negotiate;
pub mod outbound;
