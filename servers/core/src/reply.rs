//! What a [`Session`](crate::session::Session) answers to one read: the types shared by the
//! session and the protocol it drives ([`http`](crate::http)), below both so that neither imports
//! the other.

/// What to do after a read.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply<'a> {
    /// Bytes to write back, in full, before reading again. May be empty (nothing to write).
    pub bytes: &'a [u8],
    /// Messages answered (the `messages` counter): for echo, 1 per non-empty read; for HTTP,
    /// the requests answered by this read, 400s included.
    pub messages: u64,
    /// Close the connection once `bytes` are written (HTTP: after a 400, `Connection: close`,
    /// or an HTTP/1.0 request without keep-alive).
    pub close: bool,
}

/// Where the reply to a read lies (`Session::on_read_into`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyAt {
    /// Nothing to write (HTTP: the read ended inside a request).
    Nothing,
    /// All of the input (echo).
    Input,
    /// All of the buffer lent to `on_read_into` (HTTP).
    Out,
}

/// What to do after a read, when the reply was built into a buffer the design owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub at: ReplyAt,
    /// As [`Reply::messages`].
    pub messages: u64,
    /// As [`Reply::close`].
    pub close: bool,
}
