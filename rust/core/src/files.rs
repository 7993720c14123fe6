//! Static files on the WebSocket's port: directories mounted under URL prefixes, answered to
//! `GET` and `HEAD` by the connection itself (on the I/O thread), never by the game.
//!
//! This module decides what a request gets: it maps the URL to a file (refusing every way out of
//! the mounted directory), applies the validators (`ETag`, `Last-Modified`, answering `304`),
//! picks a precompressed `.gz` when the client accepts gzip, and writes the response head. The
//! connection streams the body through its output queue, a chunk at a time as the socket takes
//! it, so a download holds no more than the peer's outbound limit whatever the file's size.
//!
//! Paths: the URL's path (its query string dropped) is percent-decoded once, must be UTF-8 without
//! NUL, and is split at `/`; a segment that is `..`, starts with `.` (dot files are not served),
//! holds a `\` or a `:` (Windows separators, drives and alternate streams) is refused with `403`.
//! The file found is resolved with every symbolic link followed and must still lie inside the
//! mount's (resolved) directory, else `403`. A directory is answered with its `index.html`
//! (a URL without the final `/` is redirected to it first, so that the page's relative links
//! work).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::ConfigError;
use crate::request::Request;

/// Requests one keep-alive connection may make; the last answer says `Connection: close`. A Godot
/// web export's page is about six files; a browser reuses a connection for them.
pub const MAX_REQUESTS_PER_CONNECTION: u32 = 100;

/// A file whose download takes no byte for this long is dropped (a client that stopped reading).
pub const DOWNLOAD_STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The least a download may hold in its output queue whatever `outbound_buffer_size` is (smaller
/// reads would cost a system call per few bytes); the most is the larger of the two.
pub const MIN_DOWNLOAD_BUFFER: usize = 16 * 1024;

/// The most mounts a server may have.
pub const MAX_MOUNTS: usize = 64;

/// One directory served under a URL prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// `/` or `/game/`: starts and ends with `/`.
    pub prefix: String,
    /// The directory, every symbolic link resolved.
    pub root: PathBuf,
}

/// The directories a server serves, and the header lines added to every file it answers with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticFiles {
    /// Longest prefix first, so that `/game/` wins over `/` for `/game/index.html`.
    mounts: Vec<Mount>,
    /// Header lines (`Name: value`, checked) for every file answer (`200` and `304`).
    pub headers: Vec<String>,
}

/// What a request under the mounts gets.
#[derive(Debug)]
pub enum Served {
    /// No mount's prefix matches the path.
    Unmounted,
    /// Under a mount, but no such file: `404` (`response`), unless the game answers such requests.
    NotFound { response: Vec<u8> },
    /// An answer without a body to stream (`301`, `304`, `400`, `403`, `405`); `keep_alive`: the
    /// connection may take another request after it.
    Answer { response: Vec<u8>, keep_alive: bool },
    /// `head`, then `len` bytes of `body` (`None` for `HEAD`).
    File {
        head: Vec<u8>,
        body: Option<File>,
        len: u64,
        keep_alive: bool,
    },
}

impl StaticFiles {
    /// Adds a mount: `prefix` is the URL path it is served under (`/` or `/game`, a trailing `/` is
    /// added), `directory` an existing directory. A prefix mounted again is replaced.
    pub fn mount(&mut self, prefix: &str, directory: &Path) -> Result<(), ConfigError> {
        let prefix = normal_prefix(prefix)?;
        let root = directory
            .canonicalize()
            .map_err(|e| ConfigError(format!("cannot mount {}: {e}", directory.display())))?;
        if !root.is_dir() {
            return Err(ConfigError(format!(
                "cannot mount {}: not a directory",
                directory.display()
            )));
        }
        self.mounts.retain(|m| m.prefix != prefix);
        if self.mounts.len() >= MAX_MOUNTS {
            return Err(ConfigError(format!("at most {MAX_MOUNTS} directories can be mounted")));
        }
        self.mounts.push(Mount { prefix, root });
        self.mounts.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        Ok(())
    }

    /// Sets the header lines added to every file answer (e.g. `Cross-Origin-Opener-Policy:
    /// same-origin`); a `Cache-Control` among them replaces the server's `no-cache`. Lines the
    /// server writes itself for a file are refused.
    pub fn set_headers(&mut self, lines: Vec<String>) -> Result<(), ConfigError> {
        crate::config::validate_response_headers(&lines)?;
        for line in &lines {
            let name = line.split_once(':').map_or("", |(n, _)| n.trim());
            let ours = ["content-type", "content-encoding", "etag", "last-modified", "vary"];
            if ours.iter().any(|o| o.eq_ignore_ascii_case(name)) {
                return Err(ConfigError(format!(
                    "header {line:?}: {name} is written by the server for each file"
                )));
            }
        }
        self.headers = lines;
        Ok(())
    }

    /// Removes the mount at `prefix`; whether there was one.
    pub fn unmount(&mut self, prefix: &str) -> bool {
        let Ok(prefix) = normal_prefix(prefix) else {
            return false;
        };
        let before = self.mounts.len();
        self.mounts.retain(|m| m.prefix != prefix);
        self.mounts.len() != before
    }

    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// What `request` (a plain `GET`, `HEAD` or other method) gets. `keep_alive`: the client keeps
    /// the connection open (HTTP/1.1 without `Connection: close`) and this is not its last
    /// allowed request.
    pub fn serve(&self, request: &Request, keep_alive: bool) -> Served {
        let raw = request.resource.split(['?', '#']).next().unwrap_or("/");
        let Some(mount) = self.mounts.iter().find(|m| under(raw, &m.prefix)) else {
            return Served::Unmounted;
        };
        let head = request.method == "HEAD";
        let refuse = |status: u16, why: &str| Served::Answer {
            response: plain(status, "", why, head),
            keep_alive: false,
        };
        if !head && request.method != "GET" {
            return Served::Answer {
                response: plain(405, "Allow: GET, HEAD\r\n", "only GET and HEAD are served", head),
                keep_alive: false,
            };
        }
        let rest = raw.get(mount.prefix.len().min(raw.len())..).unwrap_or("");
        let decoded = match percent_encoding::percent_decode_str(rest).decode_utf8() {
            Ok(d) if !d.contains('\0') => d,
            _ => return refuse(400, "the path is not valid UTF-8"),
        };
        let mut path = mount.root.clone();
        for segment in decoded.split('/').filter(|s| !s.is_empty()) {
            if segment.starts_with('.') || segment.contains(['\\', ':']) {
                return refuse(403, "forbidden");
            }
            path.push(segment);
        }
        let not_found = || Served::NotFound {
            response: plain(404, "", "not found", head),
        };
        let Ok(mut path) = path.canonicalize() else {
            return not_found();
        };
        if !path.starts_with(&mount.root) {
            return refuse(403, "forbidden");
        }
        if path.is_dir() {
            if !raw.ends_with('/') {
                let location = format!("Location: {raw}/\r\n");
                return Served::Answer {
                    response: plain(301, &location, "", head),
                    keep_alive,
                };
            }
            path.push("index.html");
            match path.canonicalize() {
                Ok(p) if p.starts_with(&mount.root) => path = p,
                Ok(_) => return refuse(403, "forbidden"),
                Err(_) => return not_found(),
            }
        }
        self.file(request, &path, head, keep_alive)
            .unwrap_or_else(|_| not_found())
    }

    /// The answer for the regular file at `path` (or its `.gz` beside it).
    fn file(&self, request: &Request, path: &Path, head: bool, keep_alive: bool) -> io::Result<Served> {
        let mut gz = path.as_os_str().to_owned();
        gz.push(".gz");
        let gz = PathBuf::from(gz);
        let has_gz = gz.is_file();
        // The `.gz` only for a client that takes gzip, and only if it resolves beside the file.
        let gz = (has_gz && accepts_gzip(request))
            .then(|| gz.canonicalize().ok())
            .flatten()
            .filter(|p| p.parent() == path.parent());
        let (file, encoded) = match &gz {
            Some(gz) => (File::open(gz)?, true),
            None => (File::open(path)?, false),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::ErrorKind::NotFound.into());
        }
        let len = meta.len();
        let modified = meta.modified().ok();
        let etag = etag(len, modified, encoded);
        let mut headers = String::new();
        headers.push_str(&format!("ETag: {etag}\r\n"));
        if let Some(m) = modified {
            headers.push_str(&format!("Last-Modified: {}\r\n", httpdate::fmt_http_date(m)));
        }
        let ours = |name: &str| {
            self.headers
                .iter()
                .any(|l| l.split(':').next().is_some_and(|n| n.trim().eq_ignore_ascii_case(name)))
        };
        if !ours("cache-control") {
            // Revalidated on every load (a cheap `304`): a new build of the game is seen at once.
            headers.push_str("Cache-Control: no-cache\r\n");
        }
        if has_gz {
            headers.push_str("Vary: Accept-Encoding\r\n");
        }
        for line in &self.headers {
            headers.push_str(line);
            headers.push_str("\r\n");
        }
        let connection = if keep_alive { "keep-alive" } else { "close" };
        if not_modified(request, &etag, modified) {
            let response = format!("HTTP/1.1 304 Not Modified\r\n{headers}Connection: {connection}\r\n\r\n");
            return Ok(Served::Answer {
                response: response.into_bytes(),
                keep_alive,
            });
        }
        let mut content_type = mime_guess::from_path(path)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_string();
        if content_type.starts_with("text/") || content_type == "application/json" {
            content_type.push_str("; charset=utf-8");
        }
        let encoding = if encoded { "Content-Encoding: gzip\r\n" } else { "" };
        let head_bytes = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{encoding}{headers}Connection: {connection}\r\nContent-Length: {len}\r\n\r\n"
        );
        Ok(Served::File {
            head: head_bytes.into_bytes(),
            body: (!head).then_some(file),
            len: if head { 0 } else { len },
            keep_alive,
        })
    }
}

/// `/`, `/game` or `/game/` → `/` or `/game/`; a prefix must be a plain path.
fn normal_prefix(prefix: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| Err(ConfigError(format!("mount prefix {prefix:?} {why}")));
    if !prefix.starts_with('/') {
        return bad("must start with /");
    }
    if prefix.contains(['?', '#', '%', '\\', '\0']) || prefix.chars().any(char::is_whitespace) {
        return bad("must be a plain path (no ?, #, %, \\ or spaces)");
    }
    if prefix.split('/').any(|s| s == "." || s == "..") {
        return bad("must not contain . or .. segments");
    }
    let mut p = prefix.to_string();
    if !p.ends_with('/') {
        p.push('/');
    }
    Ok(p)
}

/// Whether URL path `path` is under `prefix` (`/game/`): `/game/x`, `/game/`, and `/game` itself
/// (redirected to `/game/`).
fn under(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix) || path.len() + 1 == prefix.len() && prefix.starts_with(path)
}

/// A strong validator from the size and the modification time (as nginx makes them), marked for
/// the gzip variant, which is another representation.
fn etag(len: u64, modified: Option<SystemTime>, gz: bool) -> String {
    let t = modified
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    format!(
        "\"{:x}-{:x}{}\"",
        t.as_secs() * 1_000_000 + u64::from(t.subsec_micros()),
        len,
        if gz { "-gz" } else { "" }
    )
}

/// RFC 9110 §13.1: `If-None-Match` (any listed tag, weak or not, or `*`) when present, otherwise
/// `If-Modified-Since` at or after the file's time (to the second).
fn not_modified(request: &Request, etag: &str, modified: Option<SystemTime>) -> bool {
    if let Some(tags) = request.header("if-none-match") {
        return tags
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag);
    }
    let (Some(since), Some(modified)) = (request.header("if-modified-since"), modified) else {
        return false;
    };
    let Ok(since) = httpdate::parse_http_date(since.trim()) else {
        return false;
    };
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    secs(modified) <= secs(since)
}

/// `Accept-Encoding` names `gzip` (or `*`) with a weight above zero.
fn accepts_gzip(request: &Request) -> bool {
    request
        .values("accept-encoding")
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero
        })
}

/// A short plain-text answer that closes the connection (or keeps it, for `301`).
fn plain(status: u16, headers: &str, body: &str, head: bool) -> Vec<u8> {
    crate::handshake::answer(status, headers, body.as_bytes(), head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            upgrade: false,
            resource: path.into(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            ..Request::default()
        }
    }

    fn site() -> (tempfile::TempDir, StaticFiles) {
        let dir = tempfile::tempdir().unwrap();
        let web = dir.path().join("web");
        std::fs::create_dir_all(web.join("sub")).unwrap();
        std::fs::write(web.join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(web.join("game.wasm"), [0u8, 97, 115, 109]).unwrap();
        std::fs::write(web.join("game.js"), "let a = 1;").unwrap();
        std::fs::write(web.join("game.js.gz"), "GZ").unwrap();
        std::fs::write(web.join("sub/index.html"), "sub").unwrap();
        std::fs::write(web.join(".secret"), "no").unwrap();
        std::fs::write(dir.path().join("outside.txt"), "outside").unwrap();
        let mut files = StaticFiles::default();
        files.mount("/", &web).unwrap();
        (dir, files)
    }

    fn status(s: &Served) -> String {
        let bytes = match s {
            Served::Unmounted => return "unmounted".into(),
            Served::NotFound { response } | Served::Answer { response, .. } => response,
            Served::File { head, .. } => head,
        };
        String::from_utf8_lossy(&bytes[9..12]).into_owned()
    }

    fn head_of(s: &Served) -> String {
        match s {
            Served::File { head, .. } => String::from_utf8(head.clone()).unwrap(),
            Served::Answer { response, .. } | Served::NotFound { response } => {
                String::from_utf8_lossy(response).into_owned()
            }
            Served::Unmounted => String::new(),
        }
    }

    #[test]
    fn files_get_their_type_length_and_validators() {
        let (_d, files) = site();
        let s = files.serve(&get("/game.wasm", &[]), true);
        let head = head_of(&s);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Type: application/wasm\r\n"), "{head}");
        assert!(head.contains("Content-Length: 4\r\n"), "{head}");
        assert!(head.contains("Connection: keep-alive\r\n"), "{head}");
        assert!(head.contains("Last-Modified: "), "{head}");
        let etag = head
            .split("ETag: ")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap()
            .to_string();
        assert_eq!(
            status(&files.serve(&get("/game.wasm", &[("If-None-Match", &etag)]), true)),
            "304"
        );
        assert_eq!(
            status(&files.serve(&get("/game.wasm", &[("If-None-Match", "\"x\"")]), true)),
            "200"
        );
        let html = head_of(&files.serve(&get("/", &[]), false));
        assert!(html.contains("Content-Type: text/html; charset=utf-8\r\n"), "{html}");
        assert!(html.contains("Connection: close\r\n"), "{html}");
    }

    #[test]
    fn a_gz_beside_the_file_goes_to_clients_that_take_gzip() {
        let (_d, files) = site();
        let gz = head_of(&files.serve(&get("/game.js", &[("Accept-Encoding", "br, gzip;q=0.8")]), true));
        assert!(
            gz.contains("Content-Encoding: gzip\r\n") && gz.contains("Content-Length: 2\r\n"),
            "{gz}"
        );
        assert!(gz.contains("Content-Type: text/javascript; charset=utf-8\r\n"), "{gz}");
        assert!(gz.contains("Vary: Accept-Encoding\r\n"), "{gz}");
        for refused in ["identity", "gzip;q=0", "br"] {
            let plain = head_of(&files.serve(&get("/game.js", &[("Accept-Encoding", refused)]), true));
            assert!(
                !plain.contains("Content-Encoding") && plain.contains("Content-Length: 10\r\n"),
                "{plain}"
            );
            assert!(plain.contains("Vary: Accept-Encoding\r\n"), "{plain}");
        }
    }

    #[test]
    fn no_way_out_of_the_directory() {
        let (d, files) = site();
        // (Windows needs a privilege to make symbolic links: checked on Unix.)
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.path().join("outside.txt"), d.path().join("web/link.txt")).unwrap();
        #[cfg(not(unix))]
        let _ = &d;
        for path in [
            "/../outside.txt",
            "/%2e%2e/outside.txt",
            "/%2E%2E%2Foutside.txt",
            "/sub/../../outside.txt",
            "/..%5coutside.txt",
            "/.secret",
            "/%2esecret",
            "/link.txt",
            "/c:/windows",
            "/%00",
            "/%ff",
        ] {
            let s = files.serve(&get(path, &[]), true);
            assert!(
                ["400", "403", "404"].contains(&status(&s).as_str()),
                "{path}: {}",
                status(&s)
            );
        }
        assert_eq!(status(&files.serve(&get("/sub", &[]), true)), "301");
        assert_eq!(status(&files.serve(&get("/sub/", &[]), true)), "200");
        assert_eq!(status(&files.serve(&get("/nothing", &[]), true)), "404");
        let mut post = get("/", &[]);
        post.method = "POST".into();
        assert_eq!(status(&files.serve(&post, true)), "405");
    }

    #[test]
    fn the_longest_prefix_wins_and_others_are_not_mounted() {
        let (d, mut files) = site();
        files.mount("/sub", &d.path().join("web/sub")).unwrap();
        let s = files.serve(&get("/sub/", &[]), true);
        assert!(matches!(s, Served::File { len: 3, .. }), "{s:?}");
        let mut only = StaticFiles::default();
        only.mount("/game/", &d.path().join("web")).unwrap();
        assert!(matches!(only.serve(&get("/healthz", &[]), true), Served::Unmounted));
        assert!(matches!(only.serve(&get("/gamex", &[]), true), Served::Unmounted));
        assert_eq!(status(&only.serve(&get("/game", &[]), true)), "301");
        assert!(only.mount("game", d.path()).is_err());
        assert!(only.mount("/a/../b", d.path()).is_err());
        assert!(only.mount("/x", &d.path().join("missing")).is_err());
        assert!(only.unmount("/game"));
        assert!(only.is_empty());
    }
}
