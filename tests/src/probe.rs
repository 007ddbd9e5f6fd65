//! Connectivity probes: tiny UDP/TCP servers that answer with the peer
//! address they saw (to check masquerading / port mapping), run on threads
//! inside a namespace, and their clients.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::netns::Netns;

const POLL: Duration = Duration::from_millis(20);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// A server thread inside a namespace; stops on drop.
pub struct PeerServer {
    seen: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl PeerServer {
    /// UDP server on `0.0.0.0:port` in `ns`: replies to each datagram with the
    /// sender address it saw.
    pub fn udp(ns: &Netns, port: u16) -> PeerServer {
        Self::start(ns, move |seen, stop, ready| {
            let sock = match UdpSocket::bind(("0.0.0.0", port)) {
                Ok(s) => s,
                Err(e) => return ready.send(Err(e.to_string())).unwrap_or(()),
            };
            sock.set_read_timeout(Some(POLL)).expect("udp read timeout");
            ready.send(Ok(())).unwrap_or(());
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::SeqCst) {
                match sock.recv_from(&mut buf) {
                    Ok((_, from)) => {
                        seen.lock().expect("seen lock").push(from);
                        if let Err(e) = sock.send_to(from.to_string().as_bytes(), from) {
                            eprintln!("[probe] udp reply to {from}: {e}");
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => eprintln!("[probe] udp recv: {e}"),
                }
            }
        })
    }

    /// TCP server on `0.0.0.0:port` in `ns`: writes the peer address it saw and closes.
    pub fn tcp(ns: &Netns, port: u16) -> PeerServer {
        Self::start(ns, move |seen, stop, ready| {
            let l = match TcpListener::bind(("0.0.0.0", port)) {
                Ok(l) => l,
                Err(e) => return ready.send(Err(e.to_string())).unwrap_or(()),
            };
            l.set_nonblocking(true).expect("nonblocking listener");
            ready.send(Ok(())).unwrap_or(());
            while !stop.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((mut s, from)) => {
                        seen.lock().expect("seen lock").push(from);
                        s.set_nonblocking(false).expect("blocking stream");
                        if let Err(e) = s.write_all(format!("{from}\n").as_bytes()) {
                            eprintln!("[probe] tcp reply to {from}: {e}");
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(POLL),
                    Err(e) => eprintln!("[probe] tcp accept: {e}"),
                }
            }
        })
    }

    fn start(
        ns: &Netns,
        body: impl FnOnce(Arc<Mutex<Vec<SocketAddr>>>, Arc<AtomicBool>, mpsc::Sender<Result<(), String>>)
            + Send
            + 'static,
    ) -> PeerServer {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (s2, st2) = (seen.clone(), stop.clone());
        let handle = ns.spawn(move || body(s2, st2, tx));
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("probe server in {}: {e}", ns.name()),
            Err(e) => panic!("probe server in {} did not start: {e}", ns.name()),
        }
        PeerServer {
            seen,
            stop,
            handle: Some(handle),
        }
    }

    /// Peer addresses seen so far.
    pub fn seen(&self) -> Vec<SocketAddr> {
        self.seen.lock().expect("seen lock").clone()
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                eprintln!("[probe] server thread panicked");
            }
        }
    }
}

/// From `ns`, sends a UDP datagram to `dst` and returns the reply text (the
/// address the server saw us as), retrying a few times.
pub fn udp_ask(ns: &Netns, dst: &str) -> Option<String> {
    let dst: SocketAddr = dst.parse().expect("socket address");
    ns.within(move || {
        let sock = UdpSocket::bind("0.0.0.0:0").ok()?;
        sock.set_read_timeout(Some(Duration::from_millis(700)))
            .ok()?;
        let mut buf = [0u8; 256];
        for _ in 0..4 {
            if sock.send_to(b"who am i", dst).is_err() {
                thread::sleep(Duration::from_millis(200));
                continue;
            }
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                return Some(String::from_utf8_lossy(&buf[..n]).trim().to_string());
            }
        }
        None
    })
}

/// From `ns`, connects to `dst` over TCP and returns the line the server sent.
pub fn tcp_ask(ns: &Netns, dst: &str) -> Option<String> {
    let dst: SocketAddr = dst.parse().expect("socket address");
    ns.within(move || {
        for _ in 0..3 {
            let Ok(mut s) = TcpStream::connect_timeout(&dst, IO_TIMEOUT) else {
                thread::sleep(Duration::from_millis(200));
                continue;
            };
            s.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
            let mut text = String::new();
            if s.read_to_string(&mut text).is_ok() && !text.is_empty() {
                return Some(text.trim().to_string());
            }
        }
        None
    })
}

/// The IP part of a `a.b.c.d:port` string.
pub fn ip_of(addr: &str) -> String {
    addr.rsplit_once(':')
        .map(|(ip, _)| ip.to_string())
        .unwrap_or_default()
}

/// Sends `bytes` over one TCP connection from `from` to a listener on
/// `listen` (an `ip:port` of `to`), and returns how many bytes the receiving
/// side read and how long it took from accepting to end of stream: a shaper
/// or a drop shows on the side that received.
pub fn tcp_transfer(from: &Netns, to: &Netns, listen: &str, bytes: usize) -> (usize, Duration) {
    let addr: SocketAddr = listen.parse().expect("socket address");
    let (ready_tx, ready) = mpsc::channel();
    let receiver = to.spawn(move || {
        let listener = TcpListener::bind(addr).expect("bulk listener");
        ready_tx.send(()).expect("ready");
        let (mut s, _) = listener.accept().expect("accept");
        let start = std::time::Instant::now();
        s.set_read_timeout(Some(Duration::from_secs(20))).ok();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        while let Ok(n @ 1..) = s.read(&mut buf) {
            got += n;
        }
        (got, start.elapsed())
    });
    ready.recv().expect("listener up");
    from.within(move || {
        // The first SYN may go while a neighbour is still being resolved.
        let mut s = (0..3)
            .find_map(|_| TcpStream::connect_timeout(&addr, IO_TIMEOUT).ok())
            .expect("bulk connect");
        let chunk = vec![0x5a; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            s.write_all(&chunk[..n]).expect("bulk send");
            left -= n;
        }
    });
    receiver.join().expect("bulk receiver")
}
