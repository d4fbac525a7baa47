//! The container image's runtime contract, proved with the binary itself (containers cannot
//! run on the CI machines): Herald starts, serves and stops cleanly as a non-root user whose
//! working tree is read-only, writing only to the data directory it is given — what
//! `deploy/Containerfile` sets up with `USER 65532:65532`, a read-only root and a volume.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The numeric user the image runs as (distroless `nonroot`).
const IMAGE_UID: u32 = 65532;

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn herald_runs_as_a_non_root_user_on_a_read_only_tree_writing_only_its_data_directory() {
    // The image's layout: /app (config, read-only) and a data volume owned by the user.
    let root = tempfile::tempdir().expect("temp dir");
    let app = root.path().join("app");
    let data = root.path().join("data");
    std::fs::create_dir_all(app.join("config")).expect("mkdir app/config");
    std::fs::create_dir_all(&data).expect("mkdir data");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(
        repo.join("config/sources.toml"),
        app.join("config/sources.toml"),
    )
    .expect("copy sources.toml");
    let binary = app.join("herald");
    std::fs::copy(env!("CARGO_BIN_EXE_herald"), &binary).expect("copy herald");
    for dir in [root.path(), app.as_path(), app.join("config").as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    }
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let before = files_under(&app);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut command = if is_root() {
        // Root ignores permissions: drop to the image's user, as the container runtime does.
        std::os::unix::fs::chown(&data, Some(IMAGE_UID), Some(IMAGE_UID)).expect("chown data");
        let mut command = Command::new("setpriv");
        command.args([
            "--reuid",
            &IMAGE_UID.to_string(),
            "--regid",
            &IMAGE_UID.to_string(),
            "--clear-groups",
        ]);
        command.arg(&binary);
        command
    } else {
        Command::new(&binary)
    };
    let mut child = command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(&app)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env(
            "HERALD__DATABASE__URL",
            format!("sqlite://{}/herald.db", data.display()),
        )
        .env(
            "HERALD__CATALOG__SOURCES_FILE",
            app.join("config/sources.toml"),
        )
        .env("HERALD__HTTP__SHUTDOWN_GRACE_SECONDS", "3")
        .env("HERALD__LOG__FORMAT", "json")
        // No publisher is reachable from the test; this keeps the log free of fetch errors.
        .env("HERALD__INGEST__DEFAULT_INTERVAL_SECONDS", "86400")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start herald");

    let started = Instant::now();
    let ready = loop {
        let output = Command::new(&binary)
            .args(["probe", "--listen", &format!("127.0.0.1:{port}")])
            .env_clear()
            .output()
            .expect("herald probe");
        if output.status.success() {
            break true;
        }
        if started.elapsed() > Duration::from_secs(30) || child.try_wait().ok().flatten().is_some()
        {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !ready {
        let _ = child.kill();
        let mut log = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut log);
        }
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut log);
        }
        panic!("herald did not become ready as a non-root user: {log}");
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("try_wait") {
            break Some(exit);
        }
        if started.elapsed() > Duration::from_secs(8) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut log);
    }
    assert!(
        exit.is_some_and(|e| e.success()),
        "herald did not exit 0 within the grace period after SIGTERM ({exit:?}): {log}"
    );
    assert_eq!(
        files_under(&app),
        before,
        "herald wrote into its working tree"
    );
    assert!(
        data.join("herald.db").exists(),
        "the database is in the data directory"
    );
    // Put permissions back so the temporary directory can be removed.
    for dir in [root.path(), app.as_path(), app.join("config").as_path()] {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    }
}
