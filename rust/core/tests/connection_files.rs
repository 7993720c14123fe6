//! Static files on the WebSocket's port, one connection at a time through the real transport and
//! an in-memory socket: a large file streamed within the outbound limit as the client reads,
//! keep-alive and pipelined requests, an upgrade after files on the same connection, `HEAD`,
//! `304`, the stall deadline, a shutdown during a download, and what the game still answers.

mod harness;
use harness::*;

use std::sync::Arc;
use wss_core::files::{StaticFiles, DOWNLOAD_STALL_TIMEOUT};

fn serving(dir: &std::path::Path, answer_requests: bool) -> ServerConfig {
    let mut files = StaticFiles::default();
    files.mount("/", dir).unwrap();
    files.headers = vec!["Cross-Origin-Opener-Policy: same-origin".into()];
    ServerConfig {
        files: Some(Arc::new(files)),
        answer_requests,
        ..config()
    }
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<p>hello</p>").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("big.pck"), big).unwrap();
    dir
}

/// Splits `HTTP/1.1 ...\r\n\r\n<body>` responses off the front of `out`: (head, body) pairs.
/// `heads`: which of them answer `HEAD` (no body).
fn responses_with(mut out: &[u8], heads: &[usize]) -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    while !out.is_empty() {
        let end = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a whole head") + 4;
        let head = String::from_utf8(out[..end].to_vec()).unwrap();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
        let len = if head.starts_with("HTTP/1.1 304") || heads.contains(&all.len()) {
            0
        } else {
            len
        };
        all.push((head, out[end..end + len].to_vec()));
        out = &out[end + len..];
    }
    all
}

fn responses(out: &[u8]) -> Vec<(String, Vec<u8>)> {
    responses_with(out, &[])
}

#[test]
fn a_large_file_streams_within_the_outbound_limit_as_the_client_reads() {
    let dir = site();
    let mut h = Harness::new(serving(dir.path(), false));
    h.pipe.room = Some(0);
    h.pipe.input.extend(b"GET /big.pck HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.readable(), Status::Alive);
    assert!(h.take().is_empty(), "the game hears nothing of files");
    let mut most = 0;
    for _ in 0..10_000 {
        most = most.max(h.conn.out_capacity());
        if h.pipe.written > 0 && h.conn.buffered_out() == 0 && h.conn.shutdown_due().is_none() {
            break;
        }
        h.pipe.room = Some(10_000);
        h.now += Duration::from_millis(1);
        if h.writable() == Status::Gone {
            break;
        }
    }
    assert!(
        most <= 65_535 + 1024,
        "a download holds at most the outbound limit: {most}"
    );
    let all = responses(&h.pipe.output);
    assert_eq!(all.len(), 1);
    let (head, body) = &all[0];
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: application/octet-stream\r\n"), "{head}");
    assert!(head.contains("Cross-Origin-Opener-Policy: same-origin\r\n"), "{head}");
    assert_eq!(body, &std::fs::read(dir.path().join("big.pck")).unwrap(), "byte-exact");
}

#[test]
fn keep_alive_serves_pipelined_requests_then_upgrades_on_the_same_connection() {
    let dir = site();
    let mut h = Harness::new(serving(dir.path(), false));
    let first = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let second = "HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
    h.pipe.input.extend(format!("{first}{second}").as_bytes());
    assert_eq!(h.readable(), Status::Alive);
    let out = std::mem::take(&mut h.pipe.output);
    let all = responses_with(&out, &[1]);
    assert_eq!(all.len(), 2, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(all[0].1, b"<p>hello</p>");
    assert!(all[0].0.contains("Connection: keep-alive\r\n"));
    assert!(
        all[1].0.contains("Content-Length: 12\r\n"),
        "HEAD tells the size: {}",
        all[1].0
    );
    assert!(all[1].1.is_empty());
    // Revalidation: 304 with the validator, no body, and the connection stays.
    let etag = all[0]
        .0
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .unwrap()
        .to_string();
    h.pipe
        .input
        .extend(format!("GET / HTTP/1.1\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes());
    assert_eq!(h.readable(), Status::Alive);
    let out = h.output();
    assert!(
        out.starts_with("HTTP/1.1 304 Not Modified\r\n") && out.ends_with("\r\n\r\n"),
        "{out}"
    );
    // The same connection upgrades: a WebSocket after the page.
    h.pipe.input.extend(REQUEST.as_bytes());
    assert_eq!(h.readable(), Status::Alive);
    assert!(h.output().starts_with("HTTP/1.1 101 "));
    assert!(matches!(h.take().as_slice(), [Event::Connected { .. }]));
}

#[test]
fn an_idle_keep_alive_connection_ends_at_the_handshake_timeout_without_counting_as_one() {
    let dir = site();
    let mut h = Harness::new(serving(dir.path(), false));
    h.pipe.input.extend(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(h.readable(), Status::Alive);
    assert!(h.output().contains("<p>hello</p>"));
    h.now += Duration::from_secs(2);
    assert_eq!(
        h.timeout(),
        Status::Alive,
        "not yet: the idle time counts from the answer"
    );
    h.now += Duration::from_secs(2);
    assert_eq!(h.timeout(), Status::Gone);
    assert_eq!(wss_core::stats::read(&h.settings.totals.timed_out), 0);
    // HTTP/1.0, or Connection: close: the answer closes.
    for request in ["GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"] {
        let mut h = Harness::new(serving(dir.path(), false));
        h.pipe.input.extend(request.as_bytes());
        assert_eq!(h.readable(), Status::Gone, "{request}");
        assert!(h.output().contains("Connection: close\r\n"));
        assert!(h.pipe.fin);
    }
}

#[test]
fn a_download_that_stalls_is_dropped_and_a_shutdown_lets_it_finish() {
    let dir = site();
    let mut h = Harness::new(serving(dir.path(), false));
    h.pipe.room = Some(1000);
    h.pipe.input.extend(b"GET /big.pck HTTP/1.1\r\n\r\n");
    assert_eq!(h.readable(), Status::Alive);
    h.now += DOWNLOAD_STALL_TIMEOUT - Duration::from_secs(1);
    h.pipe.room = Some(1000);
    assert_eq!(h.writable(), Status::Alive);
    h.now += DOWNLOAD_STALL_TIMEOUT - Duration::from_secs(1);
    assert_eq!(h.timeout(), Status::Alive, "progress moved the deadline");
    h.now += Duration::from_secs(2);
    assert_eq!(h.timeout(), Status::Gone);

    let mut h = Harness::new(serving(dir.path(), false));
    h.pipe.room = Some(1000);
    h.pipe.input.extend(b"GET /big.pck HTTP/1.1\r\n\r\n");
    assert_eq!(h.readable(), Status::Alive);
    assert_eq!(h.input(|c, cx| c.shut_down(1001, "bye", cx)), Status::Alive);
    h.pipe.room = None;
    // At most FILE_BYTES_PER_SERVICE per service: the endpoint comes back while some is left.
    let mut services = 0;
    while h.conn.has_output() {
        services += 1;
        if h.writable() == Status::Gone {
            break;
        }
    }
    assert!(services >= 3, "{services} services for 3 MB");
    let all = responses(&h.pipe.output);
    assert_eq!(all[0].1.len(), 3_000_000, "the download finishes");
    assert!(h.pipe.fin, "then the connection closes");
}

#[test]
fn unmounted_or_missing_paths_go_to_the_game_when_it_answers_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("web")).unwrap();
    let mut files = StaticFiles::default();
    files.mount("/web", &dir.path().join("web")).unwrap();
    let config = |answer_requests| ServerConfig {
        files: Some(Arc::new(files.clone())),
        answer_requests,
        ..config()
    };
    let mut h = Harness::new(config(true));
    h.pipe.input.extend(b"GET /healthz HTTP/1.1\r\n\r\n");
    let _ = h.readable();
    assert!(matches!(h.take().as_slice(), [Event::Requested { request, .. }] if request.path() == "/healthz"));
    let mut h = Harness::new(config(true));
    h.pipe.input.extend(b"GET /web/missing.js HTTP/1.1\r\n\r\n");
    let _ = h.readable();
    assert!(matches!(h.take().as_slice(), [Event::Requested { .. }]));
    // Without the game answering: 404, and traversal is refused whether or not it does.
    for (answering, path, status) in [
        (false, "/healthz", "404"),
        (false, "/web/missing.js", "404"),
        (true, "/web/%2e%2e/secret", "403"),
    ] {
        let mut h = Harness::new(config(answering));
        h.pipe.input.extend(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes());
        let _ = h.readable();
        assert!(h.output().starts_with(&format!("HTTP/1.1 {status} ")), "{path}");
        assert!(h.take().is_empty());
    }
}
