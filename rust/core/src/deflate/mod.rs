//! permessage-deflate (RFC 7692): the negotiation (`negotiate`), the client's compressed messages
//! inflated before tungstenite reads them (`inbound`: its message layer refuses RSV1), and the
//! game's messages compressed with a compressor per thread (`outbound`). In the shared setting
//! each message is compressed on its own both ways and a connection holds no compression state; in
//! the dedicated setting a connection keeps each direction's window of history (`window`), which
//! the shared compressor or the message's inflater is given as a dictionary. The connection uses
//! them in `connection/deflating.rs`.

pub mod inbound;
pub mod negotiate;
pub mod outbound;
pub mod window;
