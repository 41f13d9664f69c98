//! Who is calling. Every Weft certificate names one [`Principal`] in a URI subject alternative
//! name (`spiffe://weft/node/node1`), so a server learns from the TLS handshake alone which node,
//! controller or operator it talks to, and authorises each request against that name.

pub mod identity;
pub mod issue;
pub mod peer;
pub mod tls;

pub use identity::{Principal, PrincipalError};
pub use issue::{Ca, IssueError, Issued};
pub use peer::{PeerError, principal_of, principal_of_chain};
