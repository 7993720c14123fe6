//! Topics across processes through a real Redis server (Debian's, from `scripts/redis.sh`, or the
//! one `WSS_REDIS_SERVER` names): two servers on one bus with a client each; a publish reaches
//! the local subscriber directly and the other server's through the bus, exactly once; the bus
//! killed and restarted, and stopped and continued: the servers are told, local delivery goes on,
//! publishes while it is down are counted as failed, and after it comes back the topics cross
//! again (re-subscribed without the game doing anything).

#![cfg(unix)]
// (Unix only: the test starts Debian's redis-server and signals it with kill; the bus itself is the
// same std::net code on Windows.)

use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};
use wss_core::bus::BusConfig;
use wss_core::{Server, ServerConfig, Signal};

mod common;
use common::listen;

struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn redis_server() -> String {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(path) = std::env::var("WSS_REDIS_SERVER") {
            return path;
        }
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let out = Command::new(format!("{root}/scripts/redis.sh"))
            .output()
            .expect("scripts/redis.sh runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
    .clone()
}

impl Redis {
    fn start(port: u16) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = if port == 0 {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        } else {
            port
        };
        let child = Command::new(redis_server())
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port, _dir: dir }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server(redis_port: u16) -> Server {
    listen(ServerConfig {
        bus: Some(BusConfig {
            url: format!("redis://127.0.0.1:{redis_port}"),
            prefix: "test:".into(),
        }),
        ..ServerConfig::default()
    })
}

fn connect(server: &Server) -> WebSocket<TcpStream> {
    let port = server.local_addr().port();
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let ws = tungstenite::client(format!("ws://127.0.0.1:{port}/"), stream)
        .unwrap()
        .0;
    // (After the handshake: under qemu the answer can take longer than a read's wait here.)
    ws.get_ref().set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    ws
}

/// Polls both servers until `done` holds for the signals seen so far (each server's, in order).
fn pump(servers: &mut [&mut Server], seen: &mut [Vec<Signal>], done: impl Fn(&[Vec<Signal>]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for (s, seen) in servers.iter_mut().zip(seen.iter_mut()) {
            s.poll().unwrap();
            while let Some(signal) = s.next_signal() {
                seen.push(signal);
            }
        }
        if done(seen) {
            return;
        }
        assert!(Instant::now() < deadline, "never happened; signals: {seen:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn count(seen: &[Signal], f: impl Fn(&Signal) -> bool) -> usize {
    seen.iter().filter(|s| f(s)).count()
}

/// Reads what `ws` receives within `wait`.
fn received(ws: &mut WebSocket<TcpStream>, wait: Duration) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Text(t)) => got.push(t.to_string()),
            Ok(Message::Binary(b)) => got.push(format!("binary {}", b.len())),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
    }
    got
}

/// Polls the servers while reading `ws` until `n` messages came (or 5 s passed); then a little
/// longer, so that a duplicate would be seen.
fn collect(
    servers: &mut [&mut Server],
    seen: &mut [Vec<Signal>],
    ws: &mut WebSocket<TcpStream>,
    n: usize,
) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut extra = 10;
    while Instant::now() < deadline && (got.len() < n || extra > 0) {
        if got.len() >= n {
            extra -= 1;
        }
        pump(servers, seen, |_| true);
        got.extend(received(ws, Duration::from_millis(20)));
    }
    got
}

fn connected_id(seen: &[Signal]) -> i32 {
    seen.iter()
        .find_map(|s| match s {
            Signal::Connected { id, .. } => Some(*id),
            _ => None,
        })
        .unwrap()
}

#[test]
fn topics_cross_processes_and_survive_the_bus_going_and_coming_back() {
    let redis = Redis::start(0);
    let port = redis.port;
    let (mut a, mut b) = (server(port), server(port));
    let mut seen = vec![Vec::new(), Vec::new()];
    let (mut ca, mut cb) = (connect(&a), connect(&b));
    pump(&mut [&mut a, &mut b], &mut seen, |s| {
        s.iter().all(|s| {
            count(s, |x| matches!(x, Signal::Connected { .. })) == 1 && count(s, |x| *x == Signal::BusConnected) == 1
        })
    });
    let (ia, ib) = (connected_id(&seen[0]), connected_id(&seen[1]));
    a.subscribe(ia, "room").unwrap();
    b.subscribe(ib, "room").unwrap();
    b.subscribe(ib, "other").unwrap();
    // The subscription reaches Redis from B's thread: wait until a publish from A crosses.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let p = a.publish("room", "probe".into(), true, &[]).unwrap();
        assert_eq!(p.local, 1);
        pump(&mut [&mut a, &mut b], &mut seen, |_| true);
        let got = received(&mut cb, Duration::from_millis(100));
        if got.iter().any(|m| m == "probe") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B never heard A's publish: {seen:?} {:?} {:?}",
            a.bus_stats(),
            b.bus_stats()
        );
    }
    let _ = received(&mut ca, Duration::from_millis(100));
    let _ = received(&mut cb, Duration::from_millis(200));

    // Each message once at each subscriber, in order; never back to the publisher's process twice.
    for i in 0..20 {
        a.publish("room", format!("A{i}").into(), true, &[]).unwrap();
        b.publish("room", format!("B{i}").into(), true, &[]).unwrap();
        b.publish("other", "only B".into(), true, &[]).unwrap();
    }
    a.publish("room", vec![0u8; 3].into(), false, &[]).unwrap();
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while (got_a.len() < 41 || got_b.len() < 61) && Instant::now() < deadline {
        pump(&mut [&mut a, &mut b], &mut seen, |_| true);
        got_a.extend(received(&mut ca, Duration::from_millis(50)));
        got_b.extend(received(&mut cb, Duration::from_millis(50)));
    }
    pump(&mut [&mut a, &mut b], &mut seen, |_| true);
    got_a.extend(received(&mut ca, Duration::from_millis(300)));
    got_b.extend(received(&mut cb, Duration::from_millis(300)));
    let of = |got: &[String], p: &str| got.iter().filter(|m| m.starts_with(p)).cloned().collect::<Vec<_>>();
    let want = |p: &str| (0..20).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    assert_eq!(of(&got_a, "A"), want("A"), "A's own, locally, once, in order");
    assert_eq!(of(&got_a, "B"), want("B"), "B's, through the bus, once, in order");
    assert_eq!(of(&got_b, "A"), want("A"));
    assert_eq!(of(&got_b, "B"), want("B"));
    assert_eq!(
        of(&got_a, "only"),
        Vec::<String>::new(),
        "A's client is not subscribed to other"
    );
    assert_eq!(of(&got_b, "only").len(), 20);
    assert_eq!(of(&got_a, "binary"), ["binary 3"]);
    assert_eq!(of(&got_b, "binary"), ["binary 3"]);
    let (stats, _) = a.bus_stats();
    assert!(
        stats.published >= 21 && stats.received >= 20 && stats.failed == 0,
        "{stats:?}"
    );

    // Killed: both are told; A's subscriber still gets A's publishes; the cross-process ones
    // fail and are reported.
    redis.signal("-KILL");
    drop(redis);
    pump(&mut [&mut a, &mut b], &mut seen, |s| {
        s.iter()
            .all(|s| count(s, |x| matches!(x, Signal::BusDisconnected { .. })) == 1)
    });
    assert!(!a.is_bus_up());
    let p = a.publish("room", "while down".into(), true, &[]).unwrap();
    assert_eq!((p.local, p.bus), (1, Some(false)));
    pump(&mut [&mut a, &mut b], &mut seen, |s| {
        count(&s[0], |x| matches!(x, Signal::BusPublishFailed { count: 1 })) == 1
    });
    assert_eq!(collect(&mut [&mut a, &mut b], &mut seen, &mut ca, 1), ["while down"]);
    assert!(collect(&mut [&mut a, &mut b], &mut seen, &mut cb, 0).is_empty());

    // Back on the same port: both reconnect and subscribe again by themselves.
    let redis = Redis::start(port);
    pump(&mut [&mut a, &mut b], &mut seen, |s| {
        s.iter().all(|s| count(s, |x| *x == Signal::BusConnected) == 2)
    });
    std::thread::sleep(Duration::from_millis(200));
    a.publish("room", "after restart".into(), true, &[]).unwrap();
    assert_eq!(collect(&mut [&mut a, &mut b], &mut seen, &mut cb, 1), ["after restart"]);
    assert_eq!(collect(&mut [&mut a, &mut b], &mut seen, &mut ca, 1), ["after restart"]);

    // Stopped (a hung server: its sockets stay open): noticed within DEAD_AFTER and a ping; then
    // continued: connected again.
    redis.signal("-STOP");
    let stopped = Instant::now();
    pump(&mut [&mut a, &mut b], &mut seen, |s| {
        s.iter()
            .all(|s| count(s, |x| matches!(x, Signal::BusDisconnected { .. })) == 2)
    });
    assert!(stopped.elapsed() < Duration::from_secs(6), "{:?}", stopped.elapsed());
    a.publish("room", "while stopped".into(), true, &[]).unwrap();
    assert_eq!(collect(&mut [&mut a, &mut b], &mut seen, &mut ca, 1), ["while stopped"]);
    redis.signal("-CONT");
    pump(&mut [&mut a, &mut b], &mut seen, |s| {
        s.iter().all(|s| count(s, |x| *x == Signal::BusConnected) == 3)
    });
    std::thread::sleep(Duration::from_millis(200));
    b.publish("room", "after continue".into(), true, &[]).unwrap();
    assert_eq!(
        collect(&mut [&mut a, &mut b], &mut seen, &mut ca, 1),
        ["after continue"]
    );
    // The subscriber leaves: B stops hearing the topic (A's publish reaches nobody there).
    drop(cb);
    pump(&mut [&mut a, &mut b], &mut seen, |s| {
        count(&s[1], |x| matches!(x, Signal::Disconnected { .. })) == 1
    });
    assert!(b.subscribers("room").is_empty() && b.topics_of(ib).is_empty());
}

#[test]
fn a_bus_that_is_not_there_at_listen_is_reported_and_local_topics_work() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut a = server(port);
    let mut seen = vec![Vec::new()];
    let mut c = connect(&a);
    pump(&mut [&mut a], &mut seen, |s| {
        count(&s[0], |x| matches!(x, Signal::BusDisconnected { .. })) == 1
            && count(&s[0], |x| matches!(x, Signal::Connected { .. })) == 1
    });
    let id = connected_id(&seen[0]);
    a.subscribe(id, "t").unwrap();
    let p = a.publish("t", "local only".into(), true, &[]).unwrap();
    assert_eq!((p.local, p.bus), (1, Some(false)));
    assert_eq!(received(&mut c, Duration::from_millis(300)), ["local only"]);
    // Told once, not at every retry.
    pump(&mut [&mut a], &mut seen, |_| true);
    std::thread::sleep(Duration::from_millis(500));
    pump(&mut [&mut a], &mut seen, |_| true);
    assert_eq!(
        count(&seen[0], |x| matches!(x, Signal::BusDisconnected { .. })),
        1,
        "{:?}",
        seen[0]
    );
    // And it connects once the bus appears.
    let _redis = Redis::start(port);
    pump(&mut [&mut a], &mut seen, |s| {
        count(&s[0], |x| *x == Signal::BusConnected) == 1
    });
}
