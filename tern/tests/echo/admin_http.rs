//! Talking to a container's admin listener from a test: raw exchanges, requests,
//! `GET`s that must succeed, and reading a metric sample.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends `request` as it is and returns everything read until the listener closes
/// (an empty string if it closed at once); reads give up after 5 s.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub(crate) fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the admin listener");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `method path` with an empty body: the status line and the body.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub(crate) fn request(addr: SocketAddr, method: &str, path: &str) -> (String, String) {
    let answer = exchange(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    );
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// `GET path`, which must answer 200: the body.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub(crate) fn get(addr: SocketAddr, path: &str) -> String {
    let (status, body) = request(addr, "GET", path);
    assert!(status.starts_with("HTTP/1.1 200 OK"), "{path}: {status}");
    body
}

/// The value of the sample of `metric` whose labels include every one of `labels`.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub(crate) fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<u64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .find(|l| labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
