//! A loopback relay between one publisher and a stack that notes when each byte passed, so the
//! live-edge delay can be measured from the moment a frame left the publisher rather than from
//! the publisher's spawn (whose start-up time is one noisy draw per run).
//!
//! Frames are found on the wire by content: the first bytes of an IDR slice are copied verbatim
//! from the clip into the FLV video message (AVCC only changes the start code into a length), and
//! a whole slice header plus the start of its data is far shorter than an RTMP chunk, so it is
//! found unsplit.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// What went from the publisher to the stack, and when.
#[derive(Default)]
pub struct Capture {
    /// Every byte the publisher sent, in order.
    pub bytes: Vec<u8>,
    /// (when a read completed, offset just past its last byte), in order.
    pub reads: Vec<(Instant, usize)>,
}

impl Capture {
    /// When the byte at `offset` reached the relay (and, at once, went on to the stack).
    pub fn time_of(&self, offset: usize) -> Option<Instant> {
        let i = self.reads.partition_point(|&(_, end)| end <= offset);
        self.reads.get(i).map(|r| r.0)
    }

    /// Every place one of `signatures` occurs on the wire, as (when it passed, which signature),
    /// in wire order.
    pub fn occurrences(&self, signatures: &[Vec<u8>]) -> Vec<(Instant, usize)> {
        let mut found: Vec<(usize, usize)> = signatures
            .iter()
            .enumerate()
            .flat_map(|(which, sig)| {
                memchr::memmem::find_iter(&self.bytes, sig)
                    .map(move |at| (at + sig.len() - 1, which))
            })
            .collect();
        found.sort_unstable();
        found
            .into_iter()
            .filter_map(|(last_byte, which)| Some((self.time_of(last_byte)?, which)))
            .collect()
    }
}

/// The relay. Publish to [`Tap::addr`] instead of the stack; read [`Tap::capture`] afterwards.
pub struct Tap {
    addr: SocketAddr,
    capture: Arc<Mutex<Capture>>,
    sightings: Receiver<Instant>,
    thread: Option<JoinHandle<()>>,
}

impl Tap {
    /// Relays the first connection made to a fresh loopback port to `upstream`, telling
    /// [`Tap::sightings`] each time one of `watch` has just gone through.
    pub fn start(upstream: SocketAddr, watch: Vec<Vec<u8>>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let capture = Arc::new(Mutex::new(Capture::default()));
        let shared = Arc::clone(&capture);
        let (seen, sightings) = channel();
        let longest = watch.iter().map(Vec::len).max().unwrap_or(0);
        let thread = std::thread::spawn(move || {
            let Ok((mut client, _)) = listener.accept() else {
                return;
            };
            let Ok(mut server) = TcpStream::connect(upstream) else {
                return;
            };
            // The relay must not hold back a small tail waiting for an ACK.
            let _ = server.set_nodelay(true);
            let _ = client.set_nodelay(true);
            let (Ok(mut server_r), Ok(mut client_w)) = (server.try_clone(), client.try_clone())
            else {
                return;
            };
            let back = std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_r, &mut client_w);
                let _ = client_w.shutdown(Shutdown::Write);
            });
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match client.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let now = Instant::now();
                {
                    let mut c = shared.lock().unwrap();
                    c.bytes.extend_from_slice(&buf[..n]);
                    let end = c.bytes.len();
                    c.reads.push((now, end));
                    // What ends in this read, including a signature split by the previous one.
                    let from = (end - n).saturating_sub(longest.saturating_sub(1));
                    if watch
                        .iter()
                        .any(|w| memchr::memmem::find(&c.bytes[from..], w).is_some())
                    {
                        let _ = seen.send(now);
                    }
                }
                if server.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = server.shutdown(Shutdown::Both);
            let _ = back.join();
        });
        Ok(Self {
            addr,
            capture,
            sightings,
            thread: Some(thread),
        })
    }

    /// Where the publisher connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// When a watched sequence went through, one message per read that carried one.
    pub fn sightings(&self) -> &Receiver<Instant> {
        &self.sightings
    }

    /// What has passed so far.
    pub fn capture(&self) -> std::sync::MutexGuard<'_, Capture> {
        self.capture.lock().unwrap()
    }

    /// `url` (`rtmp://host:port/...`) with the stack's address replaced by the relay's, and the
    /// stack's address.
    pub fn split_url(url: &str) -> Option<(SocketAddr, String)> {
        let rest = url.strip_prefix("rtmp://")?;
        let (host, path) = rest.split_once('/')?;
        Some((host.parse().ok()?, path.to_string()))
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        // The publisher has gone by now (it is dropped first), which ends the relay; a tap
        // nobody connected to still waits in accept, so it is left to the process exit.
        if let Some(t) = self.thread.take() {
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_byte_is_timed_by_the_read_that_brought_it() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(5);
        let c = Capture {
            bytes: b"aaaaXYZbbbbXYZ".to_vec(),
            reads: vec![(t0, 5), (t1, 14)],
        };
        assert_eq!(c.time_of(0), Some(t0));
        assert_eq!(c.time_of(4), Some(t0));
        assert_eq!(c.time_of(5), Some(t1));
        assert_eq!(c.time_of(14), None);
        // "XYZ" at 4 ends at 6, in the second read: it had not wholly passed before t1.
        let found = c.occurrences(&[b"XYZ".to_vec(), b"bb".to_vec()]);
        assert_eq!(found, vec![(t1, 0), (t1, 1), (t1, 1), (t1, 0)]);
    }

    #[test]
    fn relays_both_ways_and_records_what_the_client_sent() {
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let tap = Tap::start(upstream.local_addr().unwrap(), vec![b"llo".to_vec()]).unwrap();
        let mut client = TcpStream::connect(tap.addr()).unwrap();
        let (mut server, _) = upstream.accept().unwrap();
        client.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        server.write_all(b"back").unwrap();
        let mut back = [0u8; 4];
        client.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"back");
        drop(client);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        assert!(tap.sightings().try_recv().is_ok(), "\"llo\" went through");
        assert!(tap.sightings().try_recv().is_err(), "once");
        let c = tap.capture();
        assert_eq!(c.bytes, b"hello");
        assert_eq!(c.reads.last().map(|r| r.1), Some(5));
    }

    #[test]
    fn splits_a_publish_url() {
        let (addr, path) = Tap::split_url("rtmp://127.0.0.1:1935/app/k").unwrap();
        assert_eq!(addr, "127.0.0.1:1935".parse().unwrap());
        assert_eq!(path, "app/k");
        assert!(Tap::split_url("http://x/y").is_none());
    }
}
