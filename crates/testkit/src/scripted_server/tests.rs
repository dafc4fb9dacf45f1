//! Unit tests of the server bookkeeping (the wire format is exercised by the
//! provider and engine tests).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Reply, Script, ScriptedServer};

/// Posts a small chat request over raw HTTP/1.1 and returns the whole
/// response (the server closes the connection when it is done).
async fn post(server: &ScriptedServer, path: &str, task: &str) -> String {
    let body = serde_json::json!({
        "model": "m",
        "stream": true,
        "messages": [{"role": "user", "content": task}],
    })
    .to_string();
    let mut sock = TcpStream::connect(server.addr()).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    sock.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn max_in_flight_counts_overlapping_delayed_replies() {
    let delay = Duration::from_millis(150);
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::text("a").delay(delay).when_last_user_contains("A"))
            .reply(Reply::text("b").delay(delay).when_last_user_contains("B"))
            .reply(Reply::text("c").delay(delay).when_last_user_contains("C"))
            .reply(Reply::text("d").delay(delay).when_last_user_contains("D")),
    )
    .await;
    assert_eq!((server.in_flight(), server.max_in_flight()), (0, 0));

    // One at a time: never more than one.
    let a = post(&server, "/v1/chat/completions", "A").await;
    assert!(a.contains("data: [DONE]"), "{a}");
    assert_eq!((server.in_flight(), server.max_in_flight()), (0, 1));

    // Three at once, each held by its delay.
    let (b, c, d) = tokio::join!(
        post(&server, "/v1/chat/completions", "B"),
        post(&server, "/v1/chat/completions", "C"),
        post(&server, "/v1/chat/completions", "D"),
    );
    for r in [b, c, d] {
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    }
    assert_eq!((server.in_flight(), server.max_in_flight()), (0, 3));

    // Error replies count while served and are released too.
    let e = post(&server, "/v1/chat/completions", "nothing queued").await;
    assert!(e.starts_with("HTTP/1.1 400"), "{e}");
    let e = post(&server, "/v1/models", "x").await;
    assert!(e.starts_with("HTTP/1.1 404"), "{e}");
    assert_eq!((server.in_flight(), server.max_in_flight()), (0, 3));
    assert_eq!(server.requests().len(), 6);
}

#[tokio::test]
async fn a_hanging_reply_stays_in_flight() {
    let server = ScriptedServer::start(Script::new().reply(Reply::hang())).await;
    let mut sock = TcpStream::connect(server.addr()).await.unwrap();
    let body = r#"{"messages":[{"role":"user","content":"x"}]}"#;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    // Wait until the server has read the request.
    for _ in 0..200 {
        if server.in_flight() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!((server.in_flight(), server.max_in_flight()), (1, 1));
    assert_eq!(server.remaining(), 0);
}
