//! A connection's socket. Until a publish is accepted it is an ordinary tokio socket, woken by
//! the reactor. Then it is polled on the process-wide grid of [`crate::ticks`]: out of the
//! reactor, the ~100 small writes a second a 2.5 Mb/s publisher makes wake no thread at all, and
//! one wake-up serves every publisher due at that moment. Media waits in the kernel up to one
//! coarse poll, except around the frame expected to complete a segment: for that short window the
//! socket goes back into the reactor and is read the moment anything arrives, because that frame
//! decides when viewers can have the segment.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::ticks::{next_read, NextRead};

/// Bytes we may owe a polled peer that does not read (acknowledgements are tiny; a megabyte
/// owed means the peer stopped reading).
const MAX_PENDING: usize = 1 << 20;

enum Inner {
    /// Registered with the reactor: before the publish, and while a publisher's segment is due.
    Reactor(TcpStream),
    /// Out of the reactor, read on the grid.
    Unregistered(std::net::TcpStream),
    Closed,
}

/// See the module documentation.
pub struct RtmpSocket {
    inner: Inner,
    /// Publishing: read on the grid and on arrival only when a segment is due.
    polled: bool,
    /// Output not yet accepted by the kernel (polled mode only).
    pending: Vec<u8>,
    /// The last read found nothing: polled, the next [`Self::ready`] waits for a poll.
    drained: bool,
}

impl RtmpSocket {
    /// Wraps an accepted socket, in reactor mode.
    pub fn new(socket: TcpStream) -> Self {
        Self {
            inner: Inner::Reactor(socket),
            polled: false,
            pending: Vec::new(),
            drained: false,
        }
    }

    /// From now on reads and writes happen on the tick grid. Idempotent.
    pub fn poll_on_ticks(&mut self) {
        self.polled = true;
    }

    /// Out of the reactor (a no-op when already out).
    fn unregister(&mut self) -> io::Result<()> {
        if let Inner::Reactor(_) = self.inner {
            if let Inner::Reactor(socket) = std::mem::replace(&mut self.inner, Inner::Closed) {
                // Stays non-blocking: tokio hands it over that way.
                self.inner = Inner::Unregistered(socket.into_std()?);
            }
        }
        Ok(())
    }

    /// Into the reactor (a no-op when already in).
    fn register(&mut self) -> io::Result<()> {
        if let Inner::Unregistered(_) = self.inner {
            if let Inner::Unregistered(socket) = std::mem::replace(&mut self.inner, Inner::Closed) {
                self.inner = Inner::Reactor(TcpStream::from_std(socket)?);
            }
        }
        Ok(())
    }

    /// Hands the kernel as much of the pending output as it takes now.
    fn write_pending(&mut self) -> io::Result<()> {
        let pending = &mut self.pending;
        match &mut self.inner {
            Inner::Reactor(socket) => write_pending(pending, |b| socket.try_write(b)),
            Inner::Unregistered(socket) => write_pending(pending, |b| socket.write(b)),
            Inner::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Reads what is available, waiting until `deadline` at most. `Ok(None)`: the deadline
    /// passed; `Ok(Some(0))`: the peer closed.
    pub async fn read(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        expected: Option<Instant>,
    ) -> io::Result<Option<usize>> {
        loop {
            if !self.ready(deadline, expected).await? {
                return Ok(None);
            }
            if let Some(n) = self.try_read(buf)? {
                return Ok(Some(n));
            }
        }
    }

    /// Waits until a read may find something: the reactor says so, or (polled) at once after a
    /// read that found data, else at the next read time of [`next_read`] — the coarse poll,
    /// unless the caller `expects` a frame that matters sooner. `Ok(false)`: the deadline passed.
    /// Split from [`Self::try_read`] so the caller can read into a buffer it does not hold across
    /// the wait.
    pub async fn ready(
        &mut self,
        deadline: Instant,
        expected: Option<Instant>,
    ) -> io::Result<bool> {
        if !self.polled {
            return match &mut self.inner {
                Inner::Reactor(socket) => match timeout_at(deadline, socket.readable()).await {
                    Err(_) => Ok(false),
                    Ok(result) => result.map(|()| true),
                },
                Inner::Unregistered(_) | Inner::Closed => Err(io::ErrorKind::NotConnected.into()),
            };
        }
        self.write_pending()?;
        if !self.drained {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        match next_read(now, expected) {
            NextRead::At(at) => {
                self.unregister()?;
                tokio::time::sleep_until(at.min(deadline)).await;
            }
            NextRead::OnArrival { until } => {
                self.register()?;
                if let Inner::Reactor(socket) = &self.inner {
                    // At `until` the caller's read finds nothing and asks again, on the grid.
                    if let Ok(result) = timeout_at(until.min(deadline), socket.readable()).await {
                        result?;
                    }
                }
            }
        }
        self.drained = false;
        Ok(true)
    }

    /// Reads what is there now, without waiting. `Ok(None)`: nothing yet; `Ok(Some(0))`: the
    /// peer closed.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let result = match &mut self.inner {
            Inner::Reactor(socket) => socket.try_read(buf),
            Inner::Unregistered(socket) => socket.read(buf),
            Inner::Closed => return Err(io::ErrorKind::NotConnected.into()),
        };
        match result {
            Ok(n) => {
                self.drained = false;
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.drained = true;
                Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes all of `bytes` (polled: hands the kernel what it takes now, the rest on later ticks,
    /// within a bound on what a peer may owe). In reactor mode a peer that does not read cannot
    /// hold the write past `deadline`: without it, a client that sends pings before `connect` and
    /// never reads the answers pinned its connection slot for ever, out of reach of every other
    /// deadline and of shutdown.
    pub async fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> io::Result<()> {
        if self.polled {
            self.pending.extend_from_slice(bytes);
            return self.write_pending();
        }
        match &mut self.inner {
            Inner::Reactor(socket) => match timeout_at(deadline, socket.write_all(bytes)).await {
                Ok(result) => result,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer did not read what we sent before the deadline",
                )),
            },
            Inner::Unregistered(_) | Inner::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Best-effort close of our sending side.
    pub async fn shutdown(&mut self) {
        if self.polled {
            let _ = self.write_pending();
        }
        match &mut self.inner {
            Inner::Reactor(socket) => {
                let _ = socket.shutdown().await;
            }
            Inner::Unregistered(socket) => {
                let _ = socket.shutdown(Shutdown::Write);
            }
            Inner::Closed => {}
        }
    }
}

/// Hands `write` as much of `pending` as the kernel takes now; the rest waits for a later tick.
fn write_pending(
    pending: &mut Vec<u8>,
    mut write: impl FnMut(&[u8]) -> io::Result<usize>,
) -> io::Result<()> {
    let mut written = 0;
    while written < pending.len() {
        match write(&pending[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    pending.drain(..written);
    if pending.len() > MAX_PENDING {
        return Err(io::Error::other("the peer stopped reading"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn ready_then_try_read_in_both_modes() {
        let (mut socket, mut peer) = pair().await;
        let far = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 16];
        for polled in [false, true] {
            if polled {
                socket.poll_on_ticks();
            }
            assert_eq!(socket.try_read(&mut buf).unwrap(), None, "nothing sent yet");
            peer.write_all(b"abc").await.unwrap();
            let mut got = None;
            while got.is_none() {
                assert!(socket.ready(far, None).await.unwrap());
                got = socket.try_read(&mut buf).unwrap();
            }
            assert_eq!(got, Some(3), "polled: {polled}");
            assert_eq!(&buf[..3], b"abc");
        }
        // Drained and nothing comes: ready reports the deadline.
        assert_eq!(socket.try_read(&mut buf).unwrap(), None);
        let soon = Instant::now() + Duration::from_millis(30);
        let mut expired = false;
        for _ in 0..3 {
            if !socket.ready(soon, None).await.unwrap() {
                expired = true;
                break;
            }
            assert_eq!(socket.try_read(&mut buf).unwrap(), None);
        }
        assert!(expired);
        drop(peer);
        assert_eq!(socket.read(&mut buf, far, None).await.unwrap(), Some(0));
    }

    #[tokio::test]
    async fn polled_leaves_the_reactor_except_while_a_segment_is_due() {
        let (mut socket, mut peer) = pair().await;
        socket.poll_on_ticks();
        let far = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 16];
        let registered = |s: &RtmpSocket| matches!(s.inner, Inner::Reactor(_));
        // Nothing due: drained, it waits for the grid out of the reactor.
        assert_eq!(socket.try_read(&mut buf).unwrap(), None);
        peer.write_all(b"a").await.unwrap();
        assert!(socket.ready(far, None).await.unwrap());
        assert!(!registered(&socket));
        assert_eq!(socket.try_read(&mut buf).unwrap(), Some(1));
        // A segment due now: drained, it waits in the reactor and wakes on the next bytes.
        assert_eq!(socket.try_read(&mut buf).unwrap(), None);
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            peer.write_all(b"bc").await.unwrap();
            peer
        });
        assert!(socket.ready(far, Some(Instant::now())).await.unwrap());
        assert!(registered(&socket));
        let mut got = Vec::new();
        while got.len() < 2 {
            match socket.try_read(&mut buf).unwrap() {
                Some(n) => got.extend_from_slice(&buf[..n]),
                None => assert!(socket.ready(far, Some(Instant::now())).await.unwrap()),
            }
        }
        assert_eq!(got, b"bc");
        // Writes work in the reactor too, and the next wait without a due segment leaves it.
        socket.write_all(b"ack", far).await.unwrap();
        let mut peer = writer.await.unwrap();
        let mut ack = [0u8; 3];
        peer.read_exact(&mut ack).await.unwrap();
        assert_eq!(&ack, b"ack");
        assert_eq!(socket.try_read(&mut buf).unwrap(), None);
        peer.write_all(b"d").await.unwrap();
        assert!(socket.ready(far, None).await.unwrap());
        assert!(!registered(&socket));
        drop(peer);
        let mut rest = Vec::new();
        loop {
            match socket.read(&mut buf, far, None).await.unwrap() {
                Some(0) => break,
                Some(n) => rest.extend_from_slice(&buf[..n]),
                None => panic!("deadline"),
            }
        }
        assert_eq!(rest, b"d");
    }

    #[tokio::test]
    async fn a_write_to_a_peer_that_never_reads_ends_at_the_deadline() {
        let (mut socket, _peer) = pair().await;
        let chunk = vec![0u8; 1 << 20];
        let deadline = Instant::now() + Duration::from_millis(300);
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Err(err) = socket.write_all(&chunk, deadline).await {
                    return err;
                }
            }
        })
        .await
        .expect("the write ended at its deadline, not held for ever");
        assert_eq!(outcome.kind(), io::ErrorKind::TimedOut);
    }

    async fn pair() -> (RtmpSocket, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (RtmpSocket::new(accepted.unwrap().0), client.unwrap())
    }

    #[tokio::test]
    async fn polled_mode_reads_writes_and_sees_the_close() {
        let (mut socket, mut peer) = pair().await;
        socket.poll_on_ticks();
        socket.poll_on_ticks(); // idempotent
        peer.write_all(b"media").await.unwrap();
        let mut buf = [0u8; 16];
        let far = Instant::now() + Duration::from_secs(5);
        assert_eq!(socket.read(&mut buf, far, None).await.unwrap(), Some(5));
        assert_eq!(&buf[..5], b"media");
        socket.write_all(b"ack", far).await.unwrap();
        let mut got = [0u8; 3];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ack");
        // Nothing sent: the deadline passes.
        let soon = Instant::now() + Duration::from_millis(120);
        assert_eq!(socket.read(&mut buf, soon, None).await.unwrap(), None);
        drop(peer);
        assert_eq!(socket.read(&mut buf, far, None).await.unwrap(), Some(0));
    }

    #[tokio::test]
    async fn a_peer_that_never_reads_is_cut_off() {
        let (mut socket, _peer) = pair().await;
        socket.poll_on_ticks();
        let chunk = vec![0u8; 256 * 1024];
        let mut refused = false;
        let far = Instant::now() + Duration::from_secs(5);
        for _ in 0..64 {
            if socket.write_all(&chunk, far).await.is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "owed bytes must be bounded");
    }
}
