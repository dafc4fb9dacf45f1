//! Minimal HTTP/1.1 handling: one request per connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::render;
use super::script::{Action, Options, RecordedRequest, Reply};
use super::State;

const MAX_HEAD: usize = 64 * 1024;

/// Accepts connections until the task is aborted; aborting drops the
/// `JoinSet`, which aborts every connection task.
pub(crate) async fn serve(listener: TcpListener, state: Arc<Mutex<State>>, options: Arc<Options>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((sock, _)) = accepted else { continue };
                let _ = sock.set_nodelay(true);
                conns.spawn(handle(sock, Arc::clone(&state), Arc::clone(&options)));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn read_request(sock: &mut TcpStream) -> Option<RecordedRequest> {
    let mut buf = Vec::with_capacity(4096);
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split_whitespace();
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    body.truncate(len);
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    let body = serde_json::from_str(&raw_body).unwrap_or(Value::Null);
    Some(RecordedRequest {
        method,
        path,
        headers,
        body,
        raw_body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Scripted",
    }
}

async fn write_simple(
    sock: &mut TcpStream,
    status: u16,
    body: &str,
    extra: &[(&str, String)],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (n, v) in extra {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body.as_bytes()).await?;
    sock.flush().await?;
    let _ = sock.shutdown().await;
    Ok(())
}

/// Writes `pieces` as a chunked SSE body. With `limit`, stops after that many
/// body bytes and returns without the terminating chunk (an abrupt drop).
async fn write_sse(
    sock: &mut TcpStream,
    pieces: Vec<String>,
    options: &Options,
    limit: Option<usize>,
) -> std::io::Result<()> {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    sock.write_all(head.as_bytes()).await?;
    let all: Vec<u8> = pieces.concat().into_bytes();
    let mut chunks: Vec<&[u8]> = match options.chunk_size {
        Some(n) => all.chunks(n).collect(),
        None => {
            let mut v = Vec::new();
            let mut at = 0;
            for p in &pieces {
                v.push(&all[at..at + p.len()]);
                at += p.len();
            }
            v
        }
    };
    if let Some(limit) = limit {
        let mut left = limit;
        let mut cut = Vec::new();
        for c in chunks {
            if left == 0 {
                break;
            }
            let take = c.len().min(left);
            cut.push(&c[..take]);
            left -= take;
        }
        chunks = cut;
    }
    for c in chunks {
        if c.is_empty() {
            continue;
        }
        let mut frame = format!("{:x}\r\n", c.len()).into_bytes();
        frame.extend_from_slice(c);
        frame.extend_from_slice(b"\r\n");
        sock.write_all(&frame).await?;
        sock.flush().await?;
        if let Some(d) = options.chunk_delay {
            tokio::time::sleep(d).await;
        }
    }
    if limit.is_none() {
        sock.write_all(b"0\r\n\r\n").await?;
        sock.flush().await?;
        let _ = sock.shutdown().await;
    }
    Ok(())
}

async fn handle(mut sock: TcpStream, state: Arc<Mutex<State>>, options: Arc<Options>) {
    let _ = handle_inner(&mut sock, &state, &options).await;
}

/// Counts one request as being served while it lives. Dropped when the
/// response is finished, on a write error, or when the connection task is
/// aborted (server stopped), so the count never leaks.
struct InFlight<'a>(&'a Mutex<State>);

impl<'a> InFlight<'a> {
    fn enter(state: &'a Mutex<State>) -> Self {
        let mut st = lock(state);
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        lock(self.0).in_flight -= 1;
    }
}

async fn handle_inner(
    sock: &mut TcpStream,
    state: &Mutex<State>,
    options: &Options,
) -> std::io::Result<()> {
    let Some(req) = read_request(sock).await else {
        return Ok(());
    };
    // Held until this function returns: after the delay, the whole body and
    // the shutdown.
    let _in_flight = InFlight::enter(state);
    let target = req
        .path
        .split('?')
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    let known = req.method == "POST"
        && (target.ends_with("/chat/completions") || target.ends_with("/responses"));
    enum Pick {
        Unknown,
        Unmatched(usize),
        Found(Reply),
    }
    let (pick, seq) = {
        let mut st = lock(state);
        st.requests.push(req.clone());
        let seq = st.requests.len();
        let pick = if !known {
            Pick::Unknown
        } else {
            let pos = st
                .queue
                .iter()
                .position(|r| r.matcher.as_ref().is_none_or(|m| m(&req)));
            match pos {
                Some(p) => Pick::Found(st.queue.remove(p)),
                None => {
                    st.unmatched += 1;
                    Pick::Unmatched(st.queue.len())
                }
            }
        };
        (pick, seq)
    };
    let reply = match pick {
        Pick::Found(reply) => reply,
        Pick::Unknown => {
            let body = json!({"error": {"message": format!("scripted server: unknown endpoint {} {}", req.method, req.path)}});
            return write_simple(sock, 404, &body.to_string(), &[]).await;
        }
        Pick::Unmatched(left) => {
            let body = json!({"error": {
                "message": format!("scripted server: no scripted reply matches request #{seq} ({} {}); {left} replies queued", req.method, req.path),
                "type": "scripted_server_error", "code": "script_exhausted"}});
            return write_simple(sock, 400, &body.to_string(), &[]).await;
        }
    };
    let Reply { action, delay, .. } = reply;
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let responses = target.ends_with("/responses");
    let render = |turn: &super::Turn| {
        let events = if responses {
            render::responses(turn, &req, seq)
        } else {
            render::chat(turn, &req, seq)
        };
        render::encode(&events, options.crlf)
    };
    match action {
        Action::Turn(turn) => write_sse(sock, render(&turn), options, None).await,
        Action::Drop { turn, after_bytes } => {
            write_sse(sock, render(&turn), options, Some(after_bytes)).await
        }
        Action::Error {
            status,
            body,
            retry_after,
        } => {
            let extra: Vec<(&str, String)> = retry_after
                .into_iter()
                .map(|v| ("Retry-After", v))
                .collect();
            write_simple(sock, status, &body, &extra).await
        }
        Action::Raw(pieces) => write_sse(sock, pieces, options, None).await,
        Action::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
    }
}
