//! Bounded file reads. Config, password, token and CA files are small;
//! reading one without a limit lets a mistake such as
//! `MIKROTIK_EDGE_ROUTER_PASSWORD_FILE=/dev/zero` allocate until the box
//! dies. Each caller names its own limit.
//!
//! Config, secret and CA files must also be regular files: a FIFO given
//! by mistake (or on purpose) would block `open()` until a writer appears,
//! so those are opened non-blocking and checked before a byte is read.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Limit for config files.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Limit for password and token files.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;
/// Limit for PEM certificate bundles.
pub const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    TooLarge {
        limit: u64,
    },
    /// A FIFO, device, socket or directory where a plain file is expected.
    NotRegular {
        kind: &'static str,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::TooLarge { limit } => {
                write!(f, "larger than the {limit}-byte limit for this file")
            }
            ReadError::NotRegular { kind } => write!(f, "not a regular file (a {kind})"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            ReadError::TooLarge { .. } | ReadError::NotRegular { .. } => None,
        }
    }
}

/// Reads at most `limit` bytes; a longer file (or an endless one such as
/// `/dev/zero`) is an error after reading `limit + 1` bytes, not an
/// allocation of its whole size.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let mut out = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(ReadError::Io)?;
    if out.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(out)
}

/// [`read_limited`] for files that must be regular files (config,
/// password, token, CA): opened with `O_NONBLOCK`, so a FIFO cannot block
/// the open, then refused unless `fstat` says regular file. A systemd
/// credential (under `$CREDENTIALS_DIRECTORY`) is a regular file.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(ReadError::Io)?;
    // fstat on the opened file, not stat on the path: the file checked is
    // the file read, even if the path is swapped in between.
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular {
            kind: file_kind(&meta.file_type()),
        });
    }
    let mut out = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(ReadError::Io)?;
    if out.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(out)
}

fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "FIFO"
    } else if t.is_dir() {
        "directory"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_zero_is_refused_quickly() {
        let err = read_limited(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { limit: 1024 }));
        assert!(err.to_string().contains("1024-byte limit"));
    }

    #[allow(unsafe_code)]
    #[test]
    fn fifo_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_regular(&fifo, 1024).unwrap_err();
        assert!(
            err.to_string().contains("not a regular file (a FIFO)"),
            "{err}"
        );
        let err = read_regular(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(matches!(err, ReadError::NotRegular { .. }), "{err}");
        let err = read_regular(dir.path(), 1024).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
        std::fs::write(dir.path().join("f"), b"abc").unwrap();
        assert_eq!(read_regular(&dir.path().join("f"), 3).unwrap(), b"abc");
        assert!(matches!(
            read_regular(&dir.path().join("f"), 2),
            Err(ReadError::TooLarge { .. })
        ));
    }

    #[test]
    fn small_file_reads_whole() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), b"abc").unwrap();
        assert_eq!(read_limited(f.path(), 3).unwrap(), b"abc");
        assert!(matches!(
            read_limited(f.path(), 2),
            Err(ReadError::TooLarge { .. })
        ));
        assert!(matches!(
            read_limited(Path::new("/nonexistent/x"), 2),
            Err(ReadError::Io(_))
        ));
    }
}
