//! `ServerConfig::busy_poll`: after handing the game events, the I/O thread polls without sleeping
//! until the game answers or the window ends, and sleeps otherwise. Seen from the I/O thread's CPU
//! time in /proc, so this file is a process of its own: no other test's server runs beside it.
#![cfg(target_os = "linux")]

use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};
use wss_core::{Server, ServerConfig, Signal};

mod common;
use common::listen;

/// CPU time (user + system) of this process's I/O threads so far.
fn io_thread_cpu() -> Duration {
    let ticks_per_sec = 100; // USER_HZ on Linux
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != "websocket-serve" {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // a thread that just ended
        };
        // Fields 14 and 15 (utime, stime), counted after the parenthesised command name.
        let after: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        ticks += after[14 - 3].parse::<u64>().unwrap() + after[15 - 3].parse::<u64>().unwrap();
    }
    Duration::from_millis(ticks * 1000 / ticks_per_sec)
}

/// The I/O thread's CPU time over the next `wait`, the game not polling.
fn cpu_over(wait: Duration) -> Duration {
    let before = io_thread_cpu();
    std::thread::sleep(wait);
    io_thread_cpu().saturating_sub(before)
}

fn connect(server: &mut Server) -> (WebSocket<TcpStream>, i32) {
    let port = server.local_addr().port();
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}/"), stream).unwrap();
    match next_signal(server) {
        Signal::Connected { id, .. } => (ws, id),
        other => panic!("expected Connected, got {other:?}"),
    }
}

fn next_signal(server: &mut Server) -> Signal {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        server.poll().unwrap();
        if let Some(s) = server.next_signal() {
            return s;
        }
        assert!(Instant::now() < deadline, "no signal within 5 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

const WINDOW: Duration = Duration::from_millis(400);
/// What a sleeping I/O thread may use over `cpu_over`'s waits here (clock-tick granularity).
const ASLEEP: Duration = Duration::from_millis(40);
/// What a spinning one uses at least over 200 ms on a shared 2-core machine.
const SPINNING: Duration = Duration::from_millis(100);

#[test]
fn busy_poll_spins_until_the_game_answers_or_the_window_ends() {
    // Without busy polling the I/O thread sleeps while the game has not answered.
    {
        let mut server = listen(ServerConfig::default());
        let (mut client, _) = connect(&mut server);
        client.send(Message::binary(vec![1u8; 64])).unwrap();
        let used = cpu_over(Duration::from_millis(200));
        assert!(
            used <= ASLEEP,
            "no busy polling: {used:?} of CPU while the game was silent"
        );
    }

    let mut server = listen(ServerConfig {
        busy_poll: WINDOW,
        ..ServerConfig::default()
    });
    let (mut client, id) = connect(&mut server);
    // The Connected event was handed over, and the game sent nothing: after the window, it sleeps.
    std::thread::sleep(WINDOW);
    let used = cpu_over(Duration::from_millis(200));
    assert!(used <= ASLEEP, "{used:?} of CPU after the window ended");

    // A message goes to the game: the I/O thread spins while the game has not answered...
    client.send(Message::binary(vec![2u8; 64])).unwrap();
    let used = cpu_over(Duration::from_millis(200));
    assert!(
        used >= SPINNING,
        "only {used:?} of CPU while waiting for the game's answer"
    );
    // ... and sleeps as soon as the answer came (long before the window ends).
    assert!(matches!(next_signal(&mut server), Signal::DataReceived { id: got } if got == id));
    let packet = server.peer(id).unwrap().pop().unwrap();
    server.peer(id).unwrap().send(packet.data, false).unwrap();
    assert_eq!(client.read().unwrap(), Message::binary(vec![2u8; 64]));
    let used = cpu_over(Duration::from_millis(200));
    assert!(used <= ASLEEP, "{used:?} of CPU after the game answered");

    // A message the game never answers: spinning ends with the window.
    client.send(Message::binary(vec![3u8; 64])).unwrap();
    std::thread::sleep(WINDOW);
    let used = cpu_over(Duration::from_millis(200));
    assert!(used <= ASLEEP, "{used:?} of CPU after an unanswered window");
}
