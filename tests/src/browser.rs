//! Runs a Playwright script of `tests/browser/` against a running app and fails the test
//! unless it exits 0.
//!
//! The scripts drive Debian's Chromium (`/usr/bin/chromium`) through Playwright for Python,
//! with the shared harness `tests/browser/harness.py`. When either is missing the test fails
//! and says how to install them (`bash tests/browser/setup.sh`): it never skips silently.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// The Chromium the scripts drive.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long a script may run before the test fails.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(420);

/// `tests/browser/`, where the scripts and the harness live.
pub fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Panics, naming the setup script, unless Chromium and Playwright are installed.
pub fn require_browser() {
    let setup = "run `bash tests/browser/setup.sh` (installs Debian's chromium and the pinned \
                 playwright and axe-playwright-python)";
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: {setup}"
    );
    let imports = std::process::Command::new("python3")
        .args(["-c", "import playwright.sync_api, axe_playwright_python"])
        .output();
    match imports {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "Playwright is not importable ({}): {setup}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) => panic!("python3 cannot run ({err}): {setup}"),
    }
}

/// Runs `tests/browser/{script}` with `HERALD_BASE_URL=base_url` and `env`, prints what it
/// printed, and returns its output; panics (with the output) unless it exits 0 in time.
pub async fn run_script(script: &str, base_url: &str, env: &[(&str, String)]) -> String {
    require_browser();
    let path = scripts_dir().join(script);
    assert!(path.exists(), "no browser script at {}", path.display());
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(&path)
        .current_dir(scripts_dir())
        .env("HERALD_BASE_URL", base_url)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().expect("start python3");
    let output = match tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output()).await {
        Ok(result) => result.expect("wait for the browser script"),
        Err(_) => panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("---- {script} ----\n{text}---- end of {script} ----");
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{text}",
        output.status
    );
    text
}
