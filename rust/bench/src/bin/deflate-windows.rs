//! deflate-windows: what COMPRESSION_DEDICATED's window size costs and gains per message, on the
//! core's own compressor (the I/O thread's work for one recipient, without sockets): a stream of
//! ~160-byte JSON game states that change a little each time, and of chat lines drawn from a few
//! sentences' words (seeded), each compressed after the connection's window of history, for
//! window bits 9-15, beside the shared setting (each message on its own). CPU time per message
//! (this process's, from /proc: contention on the machine does not inflate it) and bytes out.
//! Prints one `ROW {json}` line per stream and setting.
//! Usage: deflate-windows [--rounds N]   (each stream is 1,000 messages, N rounds; default 60)

use tungstenite::Bytes;
use wss_core::deflate::outbound::{compress, compress_after};
use wss_core::deflate::window::Window;

/// This process's CPU seconds (user + system).
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(60);
    let json: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            format!(
                "{{\"tick\": {i}, \"players\": [{{\"id\": 1, \"x\": {}.5, \"y\": 20.25, \"hp\": 100, \"name\": \"alice\"}}, \
                 {{\"id\": 2, \"x\": 7.75, \"y\": {}.0, \"hp\": 85, \"name\": \"bob\"}}], \"events\": []}}",
                i * 3,
                i % 40
            )
            .into_bytes()
        })
        .collect();
    let words: Vec<&str> = "hey everyone, anyone up for a match in the north arena? gg! that last round was close, \
        the blue team almost had it does anyone know how to unlock the second map? I have been stuck on level 4 for \
        ages now brb, dinner the server feels smooth today, no lag at all even with a full lobby who wants to trade: \
        I have two rare swords and need a shield, message me"
        .split(' ')
        .collect();
    let mut seed = 7u64;
    let mut pick = |n: usize| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n
    };
    let chat: Vec<Vec<u8>> = (0..1000)
        .map(|_| {
            let mut line = format!("player{}:", pick(40));
            for _ in 0..6 + pick(19) {
                line.push(' ');
                line.push_str(words[pick(words.len())]);
            }
            line.into_bytes()
        })
        .collect();
    for (stream, msgs) in [("json", &json), ("chat", &chat)] {
        let plain = msgs.iter().map(Vec::len).sum::<usize>() as f64 / msgs.len() as f64;
        let n = (rounds * msgs.len()) as f64;
        let report = |setting: String, secs: f64, out: usize| {
            println!(
                "ROW {{\"stream\":\"{stream}\",\"setting\":\"{setting}\",\"plain\":{plain:.1},\"bytes\":{:.1},\"us_per_msg\":{:.2}}}",
                out as f64 / n,
                secs * 1e6 / n
            );
        };
        for bits in 9..=15u8 {
            let mut window = Window::new(bits);
            let (c0, mut out) = (cpu(), 0);
            for _ in 0..rounds {
                for m in msgs.iter() {
                    out += compress_after(m, bits, window.bytes()).len();
                    window.push(m);
                }
            }
            report(format!("dedicated {bits}"), cpu() - c0, out);
        }
        // Shared: each message on its own (a new message each time: no broadcast cache).
        let (c0, mut out) = (cpu(), 0);
        for _ in 0..rounds {
            for m in msgs.iter() {
                out += compress(&Bytes::from(m.clone()), 15).len();
            }
        }
        report("shared".into(), cpu() - c0, out);
    }
}
