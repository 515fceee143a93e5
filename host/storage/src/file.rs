//! `storage.file`: one file per vCon under a directory, with the Python backend's
//! options and layout (`<path>/YYYY/MM/DD/<uuid>.json[.gz]`, dated by `created_at`,
//! flat `<path>/<uuid>.json[.gz]` when the date is unusable). Writes go to a temp
//! file in the target directory and are renamed into place, so a reader never sees
//! half a vCon.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::Deserialize;
use serde_json::Value;

use crate::{Storage, StorageError};

/// Options of `storage.file`; each falls back to its default on its own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileOptions {
    /// Base directory.
    pub path: PathBuf,
    /// Put files under `YYYY/MM/DD/` from the vCon's `created_at`.
    pub organize_by_date: bool,
    /// Gzip the files (`.json.gz`).
    pub compression: bool,
    /// Refuse vCons whose JSON is larger than this many bytes.
    pub max_file_size: u64,
    /// Mode of written files (an integer such as 420, or an octal string `"0o644"`).
    #[serde(deserialize_with = "mode")]
    pub file_permissions: u32,
    /// Mode of created directories.
    #[serde(deserialize_with = "mode")]
    pub dir_permissions: u32,
    /// Accepted for compatibility with the Python options; unused.
    pub name: Option<String>,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/data/vcons"),
            organize_by_date: true,
            compression: false,
            max_file_size: 10 * 1024 * 1024,
            file_permissions: 0o644,
            dir_permissions: 0o755,
            name: None,
        }
    }
}

fn mode<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= 0o7777)
            .ok_or_else(|| serde::de::Error::custom("a file mode must be between 0 and 0o7777")),
        Value::String(s) => {
            let digits = s.trim().trim_start_matches("0o").trim_start_matches("0O");
            u32::from_str_radix(digits, 8)
                .ok()
                .filter(|n| *n <= 0o7777)
                .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not an octal file mode like \"0o644\"")))
        }
        other => Err(serde::de::Error::custom(format!("a file mode must be a number or an octal string, got {other}"))),
    }
}

impl FileOptions {
    /// Parse the options of storage `name` (null means all defaults).
    pub fn from_value(name: &str, value: Value) -> Result<Self, StorageError> {
        if value.is_null() {
            return Ok(Self::default());
        }
        serde_json::from_value(value)
            .map_err(|e| StorageError::Options { storage: name.to_string(), message: e.to_string() })
    }

    fn extension(&self) -> &'static str {
        if self.compression { "json.gz" } else { "json" }
    }
}

/// The file storage.
#[derive(Debug, Clone)]
pub struct FileStorage {
    name: String,
    options: FileOptions,
}

impl FileStorage {
    /// A file storage called `name`.
    pub fn new(name: &str, options: FileOptions) -> Self {
        Self { name: name.to_string(), options }
    }

    fn io(&self, operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
        let path = path.display().to_string();
        move |source| StorageError::Io { storage: self.name.clone(), operation, path, source }
    }

    /// Where `uuid` is written, given its `created_at`.
    fn target(&self, uuid: &str, created_at: Option<&str>) -> PathBuf {
        let file = format!("{uuid}.{}", self.options.extension());
        let dated = self.options.organize_by_date.then(|| created_at.and_then(date_dirs)).flatten();
        match dated {
            Some(dirs) => self.options.path.join(dirs).join(file),
            None => self.options.path.join(file),
        }
    }

    fn save_blocking(&self, uuid: &str, json: &str) -> Result<(), StorageError> {
        if json.len() as u64 > self.options.max_file_size {
            return Err(StorageError::TooLarge {
                storage: self.name.clone(),
                uuid: uuid.to_string(),
                size: json.len(),
                limit: self.options.max_file_size,
            });
        }
        let created_at = serde_json::from_str::<CreatedAt>(json).ok().and_then(|c| c.created_at);
        let target = self.target(uuid, created_at.as_deref());
        let dir = target.parent().unwrap_or(&self.options.path).to_path_buf();
        self.make_dirs(&dir)?;
        let bytes = if self.options.compression {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(json.as_bytes()).and_then(|()| encoder.finish()).map_err(self.io("compress", &target))?
        } else {
            json.as_bytes().to_vec()
        };
        // One temp file per write (two writes of one uuid may run at once), removed
        // whatever fails after it was created (a full disk must not fill up with them).
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = dir.join(format!(".{uuid}.{}.{n}.tmp", std::process::id()));
        let written = fs::write(&temp, bytes)
            .map_err(self.io("write", &temp))
            .and_then(|()| {
                fs::set_permissions(&temp, fs::Permissions::from_mode(self.options.file_permissions))
                    .map_err(self.io("chmod", &temp))
            })
            .and_then(|()| fs::rename(&temp, &target).map_err(self.io("rename into", &target)));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written
    }

    /// `mkdir -p` with the configured mode on every directory it creates.
    fn make_dirs(&self, dir: &Path) -> Result<(), StorageError> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            self.make_dirs(parent)?;
        }
        match fs::create_dir(dir) {
            Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(self.options.dir_permissions))
                .map_err(self.io("chmod", dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(self.io("create directory", dir)(e)),
        }
    }

    /// The file holding `uuid`: the flat path first, then a search of the dated
    /// tree, trying the configured extension before the other one.
    fn locate(&self, uuid: &str) -> Option<PathBuf> {
        let extensions = if self.options.compression { ["json.gz", "json"] } else { ["json", "json.gz"] };
        let names: Vec<String> = extensions.iter().map(|ext| format!("{uuid}.{ext}")).collect();
        for name in &names {
            let flat = self.options.path.join(name);
            if flat.is_file() {
                return Some(flat);
            }
        }
        for name in &names {
            if let Some(found) = find_file(&self.options.path, name, 3) {
                return Some(found);
            }
        }
        None
    }

    fn get_blocking(&self, uuid: &str) -> Result<Option<String>, StorageError> {
        let Some(path) = self.locate(uuid) else {
            return Ok(None);
        };
        let bytes = fs::read(&path).map_err(self.io("read", &path))?;
        let text = if path.extension().is_some_and(|e| e == "gz") {
            let mut out = String::new();
            GzDecoder::new(bytes.as_slice()).read_to_string(&mut out).map_err(self.io("decompress", &path))?;
            out
        } else {
            String::from_utf8(bytes).map_err(|e| self.io("decode", &path)(std::io::Error::other(e)))?
        };
        Ok(Some(text))
    }

    fn delete_blocking(&self, uuid: &str) -> Result<bool, StorageError> {
        let Some(path) = self.locate(uuid) else {
            return Ok(false);
        };
        fs::remove_file(&path).map_err(self.io("delete", &path))?;
        // Remove directories left empty, up to (not including) the base.
        let mut dir = path.parent();
        while let Some(current) = dir {
            if current == self.options.path
                || !current.starts_with(&self.options.path)
                || fs::remove_dir(current).is_err()
            {
                break;
            }
            dir = current.parent();
        }
        Ok(true)
    }
}

#[derive(Deserialize)]
struct CreatedAt {
    created_at: Option<String>,
}

/// `YYYY/MM/DD` from an ISO date or date-time (a trailing `Z` is fine).
fn date_dirs(created_at: &str) -> Option<PathBuf> {
    let date = created_at.get(..10)?;
    let parsed = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(PathBuf::from(parsed.format("%Y/%m/%d").to_string()))
}

/// Depth-limited search for a file called `name` under `dir`.
fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if depth > 0
                && let Some(found) = find_file(&path, name, depth - 1)
            {
                return Some(found);
            }
        } else if entry.file_name().to_str() == Some(name) {
            return Some(path);
        }
    }
    None
}

async fn blocking<T: Send + 'static>(
    storage: &FileStorage,
    job: impl FnOnce(FileStorage) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    let owned = storage.clone();
    let name = storage.name.clone();
    tokio::task::spawn_blocking(move || job(owned)).await.unwrap_or_else(|e| {
        Err(StorageError::Io { storage: name, operation: "run", path: String::new(), source: std::io::Error::other(e) })
    })
}

#[async_trait]
impl Storage for FileStorage {
    fn name(&self) -> &str {
        &self.name
    }

    async fn save(&self, uuid: &str, vcon_json: &str) -> Result<(), StorageError> {
        let (uuid, json) = (uuid.to_string(), vcon_json.to_string());
        blocking(self, move |s| s.save_blocking(&uuid, &json)).await
    }

    async fn get(&self, uuid: &str) -> Result<Option<String>, StorageError> {
        let uuid = uuid.to_string();
        blocking(self, move |s| s.get_blocking(&uuid)).await
    }

    async fn delete(&self, uuid: &str) -> Result<bool, StorageError> {
        let uuid = uuid.to_string();
        blocking(self, move |s| s.delete_blocking(&uuid)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UUID: &str = "0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60";

    fn storage(dir: &Path, extra: Value) -> FileStorage {
        let mut options = json!({"path": dir});
        if let (Value::Object(o), Value::Object(e)) = (&mut options, extra) {
            o.extend(e);
        }
        FileStorage::new("file", FileOptions::from_value("file", options).unwrap())
    }

    #[tokio::test]
    async fn saves_under_the_date_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = storage(dir.path(), json!({}));
        let doc = format!(r#"{{"uuid":"{UUID}","created_at":"2024-03-05T10:00:00Z"}}"#);
        s.save(UUID, &doc).await.unwrap();
        let path = dir.path().join(format!("2024/03/05/{UUID}.json"));
        assert_eq!(fs::read_to_string(&path).unwrap(), doc);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        assert_eq!(s.get(UUID).await.unwrap(), Some(doc));
    }

    #[tokio::test]
    async fn compression_permissions_and_a_bad_date() {
        let dir = tempfile::tempdir().unwrap();
        let s = storage(dir.path(), json!({"compression": true, "file_permissions": "0o600"}));
        let doc = format!(r#"{{"uuid":"{UUID}","created_at":"yesterday"}}"#);
        s.save(UUID, &doc).await.unwrap();
        let path = dir.path().join(format!("{UUID}.json.gz"));
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(s.get(UUID).await.unwrap(), Some(doc));
    }

    #[tokio::test]
    async fn the_size_limit_refuses_big_vcons() {
        let dir = tempfile::tempdir().unwrap();
        let s = storage(dir.path(), json!({"max_file_size": 10}));
        let err = s.save(UUID, r#"{"uuid":"0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60"}"#).await.unwrap_err();
        assert!(matches!(err, StorageError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn delete_removes_the_file_and_empty_directories() {
        let dir = tempfile::tempdir().unwrap();
        let s = storage(dir.path(), json!({}));
        s.save(UUID, r#"{"created_at":"2024-03-05"}"#).await.unwrap();
        assert!(s.delete(UUID).await.unwrap());
        assert!(!dir.path().join("2024").exists());
        assert!(!s.delete(UUID).await.unwrap());
        assert_eq!(s.get(UUID).await.unwrap(), None);
    }

    #[test]
    fn bad_options_are_refused_at_load() {
        assert!(FileOptions::from_value("f", json!({"compresion": true})).is_err());
        assert!(FileOptions::from_value("f", json!({"file_permissions": "rw"})).is_err());
        assert_eq!(FileOptions::from_value("f", Value::Null).unwrap(), FileOptions::default());
    }
}
