#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The binary as an operator runs it: start-up errors, signals, and the user commands.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HERALD: &str = env!("CARGO_BIN_EXE_herald");

fn herald(dir: &Path) -> Command {
    let mut command = Command::new(HERALD);
    command
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("HERALD__DATABASE__URL", "sqlite://data/herald.db");
    command
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ready(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ =
                stream.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if response.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "herald exited during start-up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("herald did not become ready");
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("herald did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_config_typo_stops_start_up_with_one_line_naming_the_key_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = herald(dir.path())
        .env("HERALD__DATABASE__URLL", "sqlite://elsewhere.db")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("database.urll"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "start-up created files");
}

#[test]
fn a_malformed_database_url_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let output = herald(dir.path())
        .env("HERALD__DATABASE__URL", "postgres://localhost:notaport/db")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("database.url"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = herald(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child);

    // A slow client: headers and half the body now, the rest after the signal.
    let body = br#"{"email":"slow@example.com","password":"not the right one at all"}"#;
    let (first, rest) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(first).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let sent = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(700));
    stream.write_all(rest).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 401"),
        "in-flight request was cut: {response:?}"
    );

    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    assert!(sent.elapsed() < Duration::from_secs(10));
    // And it no longer listens.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn user_create_then_set_role() {
    let dir = tempfile::tempdir().unwrap();
    let created = herald(dir.path())
        .env("HERALD_PASSWORD", "a long enough secret")
        .args([
            "user",
            "create",
            "--email",
            "Editor@Example.com",
            "--role",
            "reader",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("editor@example.com (reader)"));

    let again = herald(dir.path())
        .env("HERALD_PASSWORD", "a long enough secret")
        .args(["user", "create", "--email", "editor@example.com"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("set-role"));

    let promoted = herald(dir.path())
        .args([
            "user",
            "set-role",
            "--email",
            "editor@example.com",
            "--role",
            "editor",
        ])
        .output()
        .unwrap();
    assert!(
        promoted.status.success(),
        "{}",
        String::from_utf8_lossy(&promoted.stderr)
    );
    assert!(String::from_utf8_lossy(&promoted.stdout).contains("is now editor"));

    let weak = herald(dir.path())
        .env("HERALD_PASSWORD", "short")
        .args(["user", "create", "--email", "b@example.com"])
        .output()
        .unwrap();
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 12"));
}

#[test]
fn migrate_status_lists_applied_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let output = herald(dir.path()).args(["migrate", "up"]).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = herald(dir.path())
        .args(["migrate", "status"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        stdout.contains("applied  m20261126_000001_create_key_material"),
        "{stdout}"
    );
    assert!(!stdout.contains("pending"), "{stdout}");
}

#[test]
fn alert_send_names_every_wrong_option_by_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let refused = herald(dir.path())
        .args([
            "alert",
            "send",
            "--title",
            "Polls close",
            "--url",
            "ftp://news.example/p",
            "--topic",
            "world",
            "--send-at",
            "yesterday",
            "--local-time",
            "8am",
            "--image",
            "http://cdn.example/i.jpg",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    for flag in ["--url", "--image", "--send-at", "--local-time"] {
        assert!(stderr.contains(flag), "{flag} not named in: {stderr}");
    }
    let unknown = herald(dir.path())
        .args([
            "alert",
            "send",
            "--title",
            "Polls close",
            "--url",
            "https://news.example/p",
            "--topic",
            "atlantis",
        ])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown topic(s): atlantis"));
}
