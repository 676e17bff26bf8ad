//! Bounded file reads. Config, password, token and CA files are small;
//! reading one without a limit lets a mistake such as
//! `MIKROTIK_EDGE_ROUTER_PASSWORD_FILE=/dev/zero` allocate until the box
//! dies. Each caller names its own limit.

use std::fmt;
use std::io::Read;
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
    TooLarge { limit: u64 },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::TooLarge { limit } => {
                write!(f, "larger than the {limit}-byte limit for this file")
            }
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            ReadError::TooLarge { .. } => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_zero_is_refused_quickly() {
        let err = read_limited(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { limit: 1024 }));
        assert!(err.to_string().contains("1024-byte limit"));
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
