//! Password policy and argon2id hashing, off the async threads.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{AuthError, PasswordError};

/// Fewest characters a new password may have (OWASP ASVS 2.1.1). Older, shorter passwords
/// still log in: the policy applies when a password is chosen, not when it is checked.
pub const MIN_CHARS: usize = 12;
/// Most characters a password may have.
pub const MAX_CHARS: usize = 256;

/// A UTF-8 character is at most 4 bytes, so longer input cannot be a valid password.
const MAX_BYTES: usize = MAX_CHARS * 4;

static COMMON_PASSWORDS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_lowercase)
        .collect()
});

/// A password that meets the policy: 12–256 characters and not a commonly used one.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Checks user input against the password policy.
    pub fn parse(input: &str) -> Result<Password, PasswordError> {
        // Checked on bytes first so a huge body is refused without walking it.
        if input.len() > MAX_BYTES {
            return Err(PasswordError::TooLong);
        }
        let chars = input.chars().count();
        if chars < MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        if COMMON_PASSWORDS.contains(&input.to_lowercase()) {
            return Err(PasswordError::Common);
        }
        Ok(Password(input.to_owned()))
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
fn hasher() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(19_456, 2, 1, None)
        .map_err(|e| AuthError::Internal(format!("argon2 params: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &[u8]) -> Result<String, AuthError> {
    let hash = hasher()?
        .hash_password(password)
        .map_err(|e| AuthError::Internal(format!("argon2 hash: {e}")))?;
    Ok(hash.to_string())
}

/// Hash of a random password, checked when an account does not exist so its absence takes as long to find as a mismatch.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let mut secret = [0_u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
    hash_blocking(&secret).ok()
});

/// At most a configured number of argon2id computations at once (each takes 19 MiB and a core
/// for tens of milliseconds): a burst of sign-ins queues here for a short while, then is told to
/// come back (503 + `Retry-After`) instead of growing memory without bound.
#[derive(Debug)]
pub struct HashGate {
    permits: tokio::sync::Semaphore,
    wait: std::time::Duration,
    running: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

impl HashGate {
    /// A gate letting `concurrent` hashes run at once, each waiting at most `wait` for its turn.
    pub fn new(concurrent: usize, wait: std::time::Duration) -> Self {
        Self {
            permits: tokio::sync::Semaphore::new(concurrent.max(1)),
            wait,
            running: std::sync::atomic::AtomicUsize::new(0),
            peak: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Runs `work` (a hash or a check) once a slot is free, or answers `Busy`.
    pub async fn run<F: std::future::Future>(&self, work: F) -> Result<F::Output, AuthError> {
        use std::sync::atomic::Ordering;
        let permit = tokio::time::timeout(self.wait, self.permits.acquire())
            .await
            .map_err(|_| AuthError::Busy {
                retry_after_seconds: 1,
            })?
            .map_err(|_| AuthError::Internal("the hashing gate is closed".into()))?;
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let output = work.await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        drop(permit);
        Ok(output)
    }

    /// The most hashes that ever ran at once through this gate.
    pub fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A few long-lived threads that do all argon2 work. Tokio's blocking pool would spread the
/// hashes over up to hundreds of threads, and the allocator keeps a 19 MiB buffer around in
/// each thread's arena after use; on a fixed handful of threads, memory stays flat however
/// many sign-ins have come and gone.
struct HashPool {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>>,
}

static HASH_POOL: LazyLock<HashPool> = LazyLock::new(|| {
    let (jobs, queue) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    for n in 0..threads {
        let queue = std::sync::Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name(format!("herald-argon2-{n}"))
            .spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a password hashing thread");
        }
    }
    HashPool {
        jobs: std::sync::Mutex::new(jobs),
    }
});

/// Runs `work` on the hashing threads and waits for its result.
async fn on_hash_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AuthError> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        let _ = done.send(work());
    });
    HASH_POOL
        .jobs
        .lock()
        .map_err(|_| AuthError::Internal("the hashing pool is poisoned".into()))?
        .send(job)
        .map_err(|_| AuthError::Internal("the hashing threads have stopped".into()))?;
    result
        .await
        .map_err(|_| AuthError::Internal("a hashing job was dropped".into()))
}

/// Hashes a password with argon2id (PHC string, random salt) on a hashing thread.
pub async fn hash(password: Password) -> Result<String, AuthError> {
    on_hash_pool(move || hash_blocking(password.expose().as_bytes())).await?
}

/// Hashes a password that has just matched its stored hash, to replace a hash made with older
/// parameters. No policy check: a password chosen under an older, shorter minimum still logs in.
pub(crate) async fn rehash(password: String) -> Result<String, AuthError> {
    on_hash_pool(move || hash_blocking(password.as_bytes())).await?
}

/// Computes the dummy hash now (call at startup) so the first login for an unknown email is not slower than the rest.
pub async fn warm_up() {
    let _ = on_hash_pool(|| DUMMY_HASH.is_some()).await;
}

/// Checks a login attempt against a stored PHC hash; with no stored hash it does the same work and returns false.
pub async fn verify(candidate: String, stored: Option<String>) -> bool {
    // No stored password can be this long, and argon2 should not chew on megabytes.
    if candidate.len() > MAX_BYTES {
        return false;
    }
    let outcome = on_hash_pool(move || verify_blocking(&candidate, stored.as_deref())).await;
    match outcome {
        Ok(matched) => matched,
        Err(e) => {
            tracing::error!(error = %e, "password verification task failed");
            false
        }
    }
}

fn verify_blocking(candidate: &str, stored: Option<&str>) -> bool {
    let Ok(argon2) = hasher() else {
        return false;
    };
    match stored {
        Some(stored) => match PasswordHash::new(stored) {
            Ok(parsed) => argon2
                .verify_password(candidate.as_bytes(), &parsed)
                .is_ok(),
            Err(e) => {
                tracing::error!(error = %e, "stored password hash is not a PHC string");
                false
            }
        },
        None => {
            match DUMMY_HASH.as_deref().map(PasswordHash::new) {
                Some(Ok(dummy)) => {
                    let _ = argon2.verify_password(candidate.as_bytes(), &dummy);
                }
                _ => {
                    let _ = hash_blocking(candidate.as_bytes());
                }
            }
            false
        }
    }
}

/// True when a stored hash was made with other parameters than today's and should be replaced after a successful login.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    let decimal = |name: &str| parsed.params.get_decimal(name);
    parsed.algorithm.as_str() != "argon2id"
        || parsed.version != Some(0x13)
        || decimal("m") != Some(19_456)
        || decimal("t") != Some(2)
        || decimal("p") != Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strong() -> Password {
        match Password::parse("correct horse battery staple") {
            Ok(p) => p,
            Err(e) => panic!("strong password refused: {e}"),
        }
    }

    #[tokio::test]
    async fn hash_round_trips() -> Result<(), AuthError> {
        let stored = hash(strong()).await?;
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(!needs_rehash(&stored));
        assert!(verify("correct horse battery staple".to_owned(), Some(stored)).await);
        Ok(())
    }

    #[tokio::test]
    async fn salts_differ() -> Result<(), AuthError> {
        assert_ne!(hash(strong()).await?, hash(strong()).await?);
        Ok(())
    }

    #[tokio::test]
    async fn wrong_password_is_refused() -> Result<(), AuthError> {
        let stored = hash(strong()).await?;
        assert!(!verify("correct horse battery stapler".to_owned(), Some(stored)).await);
        Ok(())
    }

    #[tokio::test]
    async fn missing_account_is_refused() {
        warm_up().await;
        assert!(!verify("correct horse battery staple".to_owned(), None).await);
        assert!(DUMMY_HASH.is_some());
    }

    #[tokio::test]
    async fn garbage_stored_hash_is_refused() {
        assert!(!verify("whatever it is".to_owned(), Some("not a hash".to_owned())).await);
        assert!(needs_rehash("not a hash"));
    }

    #[tokio::test]
    async fn huge_candidate_is_refused_without_hashing() {
        let huge = "x".repeat(10 * 1024);
        assert!(!verify(huge, None).await);
    }

    #[test]
    fn weaker_params_need_rehash() {
        let old =
            "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A";
        assert!(needs_rehash(old));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(Password::parse("short"), Err(PasswordError::TooShort));
        assert_eq!(Password::parse("12345678901"), Err(PasswordError::TooShort));
        assert_eq!(Password::parse("eleven chrs"), Err(PasswordError::TooShort));
        assert!(Password::parse("twelve chars").is_ok());
        // 11 characters but 33 bytes.
        assert_eq!(
            Password::parse("日本語のパスワードです"),
            Err(PasswordError::TooShort)
        );
        assert!(Password::parse("日本語のパスワードですね").is_ok());
        assert!(Password::parse(&"é".repeat(256)).is_ok());
        assert_eq!(
            Password::parse(&"é".repeat(257)),
            Err(PasswordError::TooLong)
        );
    }

    #[test]
    fn oversized_input_is_refused() {
        assert_eq!(
            Password::parse(&"a".repeat(10 * 1024)),
            Err(PasswordError::TooLong)
        );
        assert_eq!(
            Password::parse(&"a".repeat(257)),
            Err(PasswordError::TooLong)
        );
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for common in [
            "password1234",
            "123456789abc",
            "LordOfTheRings",
            "QWERTY123456",
            "Password123!",
        ] {
            assert_eq!(
                Password::parse(common),
                Err(PasswordError::Common),
                "{common}"
            );
        }
    }

    #[test]
    fn common_list_is_substantial() {
        let usable = COMMON_PASSWORDS
            .iter()
            .filter(|p| p.chars().count() >= MIN_CHARS)
            .count();
        // Most of the list is shorter than the minimum and refused for its length anyway; what
        // is left still catches the usual long guesses.
        assert!(
            usable >= 50,
            "only {usable} entries of {MIN_CHARS}+ characters"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", strong());
        assert_eq!(shown, "Password([redacted])");
    }
}
