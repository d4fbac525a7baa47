//! Private keys at rest: the token signing keys, the VAPID key and the cursor key are stored
//! encrypted (AES-256-GCM) under a key that is not in the database, so a copy of the database
//! (a backup, a dump, a stolen volume) holds no usable private key.
//!
//! Where the encryption key comes from (`[secrets]`):
//! - `secrets.key` (set it as `HERALD__SECRETS__KEY`), or `secrets.key_file` (a file holding
//!   it): one or more base64 keys of 32 bytes, separated by commas, spaces or newlines. The
//!   first encrypts; every one decrypts (rotation).
//! - Neither, on SQLite: `herald.key` beside the database file, created on first start,
//!   owner-only (0600). Back it up with the database: neither is usable without the other.
//! - Neither, on PostgreSQL: keys stay unencrypted and start-up says so in the log, since
//!   processes on several machines cannot share a file Herald makes by itself.
//!
//! A stored key is `hsk1` ‖ key id (8 bytes) ‖ nonce (12) ‖ ciphertext and tag, with the row's
//! purpose and id as associated data, so a sealed key cannot be moved to another row. Rows
//! stored before a key was configured (plain PKCS#8 or secret bytes) and rows sealed under an
//! older key are re-sealed under the first key by [`Keyring::reseal_all`] at start.

use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use herald_store::keys::{self, StoredKey};
use herald_store::{Db, Secret, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// What a sealed key starts with; plaintext PKCS#8 starts with 0x30.
const MAGIC: &[u8; 4] = b"hsk1";
/// Bytes of the key id after the magic.
const KEY_ID_LEN: usize = 8;
/// Bytes of an AES-256 key.
const KEY_LEN: usize = 32;
/// The file name of the key Herald creates beside an SQLite database.
pub const DEFAULT_KEY_FILE: &str = "herald.key";

/// The `[secrets]` section: where the key that encrypts private keys at rest comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SealingConfig {
    /// The key(s) themselves, base64, first one current; for `HERALD__SECRETS__KEY`.
    pub key: Option<Secret<String>>,
    /// A file holding the key(s), in the same form (e.g. a mounted Kubernetes secret).
    pub key_file: Option<PathBuf>,
}

/// Why keys could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    /// The configured key is not one.
    #[error("{0}")]
    Config(String),
    /// The key file could not be read or created.
    #[error("{0}")]
    File(String),
    /// A stored key cannot be opened with the keys configured.
    #[error("{0}")]
    Open(String),
    /// The database failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A new key could not be generated.
    #[error("key generation failed: {0}")]
    Generate(String),
}

struct SealKey {
    id: [u8; KEY_ID_LEN],
    key: LessSafeKey,
}

/// The keys that seal and open private keys at rest; empty when none is configured
/// (PostgreSQL without `[secrets]`), in which case keys are stored as they are.
pub struct Keyring {
    keys: Vec<SealKey>,
    source: String,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys.len())
            .field("source", &self.source)
            .finish()
    }
}

impl Keyring {
    /// The keyring configuration asks for: `secrets.key`, else `secrets.key_file`, else on
    /// SQLite the key file beside `sqlite_path` (created owner-only on first start), else none.
    pub fn open(config: &SealingConfig, sqlite_path: Option<&Path>) -> Result<Self, SealingError> {
        if let Some(key) = &config.key {
            return Self::parse(key.expose(), "secrets.key");
        }
        if let Some(path) = &config.key_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                SealingError::File(format!("secrets.key_file {}: {e}", path.display()))
            })?;
            warn_if_shared(path);
            return Self::parse(&text, &format!("secrets.key_file {}", path.display()));
        }
        let Some(db_file) = sqlite_path else {
            return Ok(Self {
                keys: Vec::new(),
                source: "none".into(),
            });
        };
        let dir = db_file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let path = dir.join(DEFAULT_KEY_FILE);
        let text = read_or_create_key_file(&path)?;
        Self::parse(&text, &path.display().to_string())
    }

    /// A keyring from text holding base64 keys; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, SealingError> {
        let mut keys = Vec::new();
        for (n, word) in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .enumerate()
        {
            let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(word).ok())
                .filter(|bytes| bytes.len() == KEY_LEN)
                .ok_or_else(|| {
                    SealingError::Config(format!(
                        "{source}: key {} is not 32 bytes in base64 (make one with `openssl rand -base64 32`)",
                        n + 1
                    ))
                })?;
            keys.push(SealKey::new(&bytes)?);
        }
        if keys.is_empty() {
            return Err(SealingError::Config(format!(
                "{source}: holds no key (make one with `openssl rand -base64 32`)"
            )));
        }
        Ok(Self {
            keys,
            source: source.to_string(),
        })
    }

    /// True when private keys are stored encrypted.
    pub fn encrypts(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Where the keys came from, for the log (never the keys).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `plaintext` sealed under the current key for the row (`purpose`, `id`); unchanged
    /// when no key is configured.
    pub fn seal(&self, purpose: &str, id: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealingError> {
        let Some(current) = self.keys.first() else {
            return Ok(plaintext.to_vec());
        };
        let mut nonce = [0_u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|_| SealingError::Generate("no randomness for a nonce".into()))?;
        let mut sealed = plaintext.to_vec();
        current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(purpose, id)),
                &mut sealed,
            )
            .map_err(|_| SealingError::Generate("AES-GCM sealing failed".into()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + KEY_ID_LEN + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plaintext of a stored private part, sealed or (stored before a key was configured)
    /// not.
    pub fn unseal(&self, purpose: &str, id: &str, stored: &[u8]) -> Result<Vec<u8>, SealingError> {
        let Some(rest) = stored.strip_prefix(MAGIC.as_slice()) else {
            return Ok(stored.to_vec());
        };
        let cannot = |why: &str| {
            SealingError::Open(format!(
                "the stored {purpose} key {id} {why}; configure the key it was sealed with \
                 in secrets.key or secrets.key_file (keys: {})",
                self.source
            ))
        };
        if rest.len() < KEY_ID_LEN + NONCE_LEN {
            return Err(cannot("is truncated"));
        }
        let (key_id, rest) = rest.split_at(KEY_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let key = self
            .keys
            .iter()
            .find(|k| k.id.as_slice() == key_id)
            .ok_or_else(|| cannot("is encrypted with a key that is not configured"))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| cannot("is truncated"))?;
        let mut buffer = ciphertext.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(aad(purpose, id)), &mut buffer)
            .map_err(|_| cannot("does not decrypt (altered, or moved from another row)"))?;
        Ok(plain.to_vec())
    }

    /// Whether a stored private part is already sealed under the current key.
    fn is_current(&self, stored: &[u8]) -> bool {
        match self.keys.first() {
            None => !stored.starts_with(MAGIC),
            Some(current) => stored
                .strip_prefix(MAGIC.as_slice())
                .is_some_and(|rest| rest.starts_with(&current.id)),
        }
    }

    /// Re-stores every key not sealed under the current key (plaintext from before a key was
    /// configured, or sealed under a key being rotated out); the number re-stored. Without a
    /// configured key, nothing changes (and sealed rows stay sealed: they cannot be opened).
    pub async fn reseal_all(&self, db: &Db) -> Result<usize, SealingError> {
        if !self.encrypts() {
            return Ok(0);
        }
        let mut resealed = 0;
        for stored in keys::all(db).await? {
            let old = stored.private_der.expose();
            if self.is_current(old) {
                continue;
            }
            let plain = self.unseal(&stored.purpose, &stored.id, old)?;
            let new = self.seal(&stored.purpose, &stored.id, &plain)?;
            if keys::replace_private(db, &stored.id, old, new).await? {
                resealed += 1;
            }
        }
        Ok(resealed)
    }

    /// The oldest active key of `purpose` (plaintext), creating and storing one (sealed) with
    /// `generate` when there is none; see [`keys::load_or_create`].
    pub async fn load_or_create<E: fmt::Display>(
        &self,
        db: &Db,
        purpose: &str,
        generate: impl FnOnce() -> Result<StoredKey, E>,
    ) -> Result<StoredKey, SealingError> {
        let stored = keys::load_or_create(db, purpose, || {
            let key = generate().map_err(|e| SealingError::Generate(e.to_string()))?;
            let sealed = self.seal(&key.purpose, &key.id, key.private_der.expose())?;
            Ok::<_, SealingError>(StoredKey {
                private_der: Secret::new(sealed),
                ..key
            })
        })
        .await
        .map_err(|e| match e {
            keys::LoadOrCreateError::Store(e) => SealingError::Store(e),
            keys::LoadOrCreateError::Generate(e) => e,
        })?;
        self.opened(stored)
    }

    /// The active keys of `purpose` (plaintext), oldest first.
    pub async fn active(&self, db: &Db, purpose: &str) -> Result<Vec<StoredKey>, SealingError> {
        keys::active(db, purpose)
            .await?
            .into_iter()
            .map(|stored| self.opened(stored))
            .collect()
    }

    fn opened(&self, stored: StoredKey) -> Result<StoredKey, SealingError> {
        let plain = self.unseal(&stored.purpose, &stored.id, stored.private_der.expose())?;
        Ok(StoredKey {
            private_der: Secret::new(plain),
            ..stored
        })
    }
}

impl SealKey {
    fn new(bytes: &[u8]) -> Result<Self, SealingError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| SealingError::Config("not an AES-256 key".into()))?;
        let digest = Sha256::new()
            .chain_update(b"herald key sealing key id\0")
            .chain_update(bytes)
            .finalize();
        let mut id = [0_u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Ok(Self {
            id,
            key: LessSafeKey::new(key),
        })
    }
}

fn aad(purpose: &str, id: &str) -> Vec<u8> {
    format!("herald key_material\0{purpose}\0{id}").into_bytes()
}

/// A fresh random key as the key file holds it: base64 and a newline.
pub fn generate_key_text() -> Result<String, SealingError> {
    let mut key = [0_u8; KEY_LEN];
    aws_lc_rs::rand::fill(&mut key)
        .map_err(|_| SealingError::Generate("no randomness for a key".into()))?;
    Ok(format!("{}\n", STANDARD.encode(key)))
}

/// The key file at `path`, created owner-only with a fresh key if missing. Several processes
/// starting at once agree on one file: each writes its own candidate and links it into place,
/// and the link fails for all but the first.
fn read_or_create_key_file(path: &Path) -> Result<String, SealingError> {
    let failed = |what: &str, e: std::io::Error| {
        SealingError::File(format!(
            "cannot {what} the key file {}: {e}",
            path.display()
        ))
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_shared(path);
            return Ok(text);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed("read", e)),
    }
    let candidate = path.with_extension(format!("key.new-{}", std::process::id()));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&candidate)?;
        std::io::Write::write_all(
            &mut file,
            generate_key_text()
                .map_err(std::io::Error::other)?
                .as_bytes(),
        )?;
        file.sync_all()?;
        match std::fs::hard_link(&candidate, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&candidate);
    written.map_err(|e| failed("create", e))?;
    tracing::info!(path = %path.display(), "created the key that encrypts private keys at rest; back it up with the database");
    std::fs::read_to_string(path).map_err(|e| failed("read", e))
}

/// A key file others may read defeats its purpose; say so (a mounted secret may still be fine
/// when the directory is private, so this does not stop start-up).
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the key file is readable by other users; chmod 600 it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[[u8; 32]]) -> Keyring {
        let text: Vec<String> = keys.iter().map(|k| STANDARD.encode(k)).collect();
        Keyring::parse(&text.join(","), "test").expect("a keyring")
    }

    #[test]
    fn sealed_keys_open_only_in_their_row_and_under_their_key() {
        let ring_a = ring(&[[1; 32]]);
        let sealed = ring_a.seal("vapid", "k1", b"private bytes").unwrap();
        assert!(sealed.starts_with(MAGIC));
        assert!(!sealed.windows(13).any(|w| w == b"private bytes"));
        assert_eq!(
            ring_a.unseal("vapid", "k1", &sealed).unwrap(),
            b"private bytes"
        );
        assert!(ring_a.unseal("vapid", "k2", &sealed).is_err());
        assert!(ring_a.unseal("cursor", "k1", &sealed).is_err());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(ring_a.unseal("vapid", "k1", &altered).is_err());
        assert!(ring(&[[2; 32]]).unseal("vapid", "k1", &sealed).is_err());
        // Rotation: the new key first, the old one still opens what it sealed.
        let rotating = ring(&[[2; 32], [1; 32]]);
        assert_eq!(
            rotating.unseal("vapid", "k1", &sealed).unwrap(),
            b"private bytes"
        );
        assert!(!rotating.is_current(&sealed));
        assert!(rotating.is_current(&rotating.seal("vapid", "k1", b"x").unwrap()));
        // Plaintext from before encryption reads as it is.
        assert_eq!(
            rotating.unseal("vapid", "k1", &[0x30, 1, 2]).unwrap(),
            [0x30, 1, 2]
        );
        assert!(!rotating.is_current(&[0x30, 1, 2]));
    }

    #[test]
    fn bad_key_text_is_refused_with_its_source() {
        for text in ["", "  ,  ", "not base64!", &STANDARD.encode([1_u8; 16])] {
            let err = Keyring::parse(text, "secrets.key").unwrap_err().to_string();
            assert!(err.starts_with("secrets.key:"), "{err}");
        }
        assert!(Keyring::parse(&URL_SAFE_NO_PAD.encode([9_u8; 32]), "x").is_ok());
    }

    #[test]
    fn without_a_key_nothing_is_sealed() {
        let none = Keyring::open(&SealingConfig::default(), None).unwrap();
        assert!(!none.encrypts());
        assert_eq!(none.seal("vapid", "k", b"abc").unwrap(), b"abc");
        assert!(
            none.unseal(
                "vapid",
                "k",
                &ring(&[[1; 32]]).seal("vapid", "k", b"abc").unwrap()
            )
            .is_err()
        );
    }

    #[test]
    fn the_default_key_file_is_created_once_owner_only() {
        let dir = tempfile_dir();
        let db_file = dir.join("herald.db");
        let first = Keyring::open(&SealingConfig::default(), Some(&db_file)).unwrap();
        let key_file = dir.join(DEFAULT_KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let sealed = first.seal("vapid", "k", b"abc").unwrap();
        let again = Keyring::open(&SealingConfig::default(), Some(&db_file)).unwrap();
        assert_eq!(again.unseal("vapid", "k", &sealed).unwrap(), b"abc");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("herald-sealing-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
