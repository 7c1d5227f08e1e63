//! The one rule for every directory the host (outside the sandbox) writes
//! and later reads back or runs from: the compile cache, the quarantine, the
//! registry store, the files `wasmtel serve` writes. Nobody but this user and
//! root may be able to change what the path names:
//! - the directory itself is a real directory (not a symbolic link), owned by
//!   the effective user (or root), and neither group nor others may write to it;
//! - every ancestor (as written and as resolved) is owned by root or the
//!   effective user, and is not writable by group or others unless it is
//!   sticky (`/tmp`): there nobody else can rename or remove our entry.
//!
//! Callers check at the point of use (before each write or load), not once at
//! start, so a directory swapped or loosened later is refused then.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Why a directory cannot be trusted, naming it.
#[derive(Debug, thiserror::Error)]
pub enum UntrustedDir {
    /// The path (or one of its ancestors) cannot be examined or created.
    #[error("{path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Another user could change what the path names.
    #[error("{path} {why}; it must belong to this user (uid {uid}) or root and be writable by nobody else")]
    Untrusted {
        /// The offending path (the directory or one of its ancestors).
        path: PathBuf,
        /// What is wrong with it.
        why: String,
        /// This process's effective uid.
        uid: u32,
    },
}

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

/// Creates `dir` if needed (missing parts mode 0700) and checks it with
/// [`check`].
pub fn ensure(dir: &Path) -> Result<(), UntrustedDir> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| UntrustedDir::Io { path: dir.to_path_buf(), source })?;
    check(dir)
}

/// Checks that only this user (and root) can change what `dir` names: see
/// the module documentation for the rule.
pub fn check(dir: &Path) -> Result<(), UntrustedDir> {
    let me = effective_uid();
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().map_err(|source| UntrustedDir::Io { path: dir.to_path_buf(), source })?.join(dir)
    };
    let metadata = lstat(&absolute)?;
    let untrusted = |path: &Path, why: String| UntrustedDir::Untrusted { path: path.to_path_buf(), why, uid: me };
    if metadata.file_type().is_symlink() {
        return Err(untrusted(&absolute, "is a symbolic link".into()));
    }
    if !metadata.is_dir() {
        return Err(untrusted(&absolute, "is not a directory".into()));
    }
    // Root's own directories are trusted as every ancestor is.
    if metadata.uid() != me && metadata.uid() != 0 {
        return Err(untrusted(&absolute, format!("is owned by uid {}", metadata.uid())));
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(untrusted(&absolute, format!("has mode {:o}", metadata.mode() & 0o7777)));
    }
    // The ancestors as written (symbolic links included, judged by who owns
    // the link), then as resolved, so a link cannot lead the walk around them.
    check_ancestors(&absolute, me)?;
    let resolved = fs::canonicalize(&absolute).map_err(|source| UntrustedDir::Io { path: absolute.clone(), source })?;
    check_ancestors(&resolved, me)
}

fn check_ancestors(path: &Path, me: u32) -> Result<(), UntrustedDir> {
    let mut prefix = PathBuf::new();
    let parts: Vec<Component<'_>> = path.components().collect();
    // Every proper prefix of the path: the directory itself was checked apart.
    for part in &parts[..parts.len().saturating_sub(1)] {
        prefix.push(part);
        let metadata = lstat(&prefix)?;
        let owner = metadata.uid();
        if owner != 0 && owner != me {
            return Err(UntrustedDir::Untrusted {
                path: prefix,
                why: format!("(an ancestor) is owned by uid {owner}"),
                uid: me,
            });
        }
        if metadata.file_type().is_symlink() {
            // A link's own mode means nothing; its directory was checked above.
            continue;
        }
        let mode = metadata.permissions().mode();
        let sticky = mode & 0o1000 != 0;
        if mode & 0o022 != 0 && !sticky {
            return Err(UntrustedDir::Untrusted {
                path: prefix,
                why: format!("(an ancestor) has mode {:o}: others may write to it and it is not sticky", mode & 0o7777),
                uid: me,
            });
        }
    }
    Ok(())
}

fn lstat(path: &Path) -> Result<fs::Metadata, UntrustedDir> {
    fs::symlink_metadata(path).map_err(|source| UntrustedDir::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh private directory under the system's sticky temporary one.
    fn tempdir() -> PathBuf {
        tempfile::tempdir().unwrap().keep()
    }

    #[test]
    fn a_new_directory_is_created_private_and_accepted() {
        let base = tempdir();
        let dir = base.join("a/b/c");
        ensure(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(base.join("a")).unwrap().mode() & 0o777, 0o700);
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let base = tempdir();
        let dir = base.join("open");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let error = ensure(&dir).unwrap_err().to_string();
        assert!(error.contains("open") && error.contains("has mode 777"), "{error}");
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn an_ancestor_others_can_write_is_refused_unless_sticky() {
        let base = tempdir();
        let open = base.join("shared");
        let dir = open.join("mine");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let error = check(&dir).unwrap_err().to_string();
        assert!(error.contains("shared (an ancestor) has mode 777"), "{error}");
        // The same ancestor with the sticky bit (as /tmp) may hold our directory.
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        check(&dir).unwrap();
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_symbolic_link_is_refused_as_the_directory() {
        let base = tempdir();
        let real = base.join("real");
        fs::DirBuilder::new().mode(0o700).create(&real).unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let error = check(&link).unwrap_err().to_string();
        assert!(error.contains("is a symbolic link"), "{error}");
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_link_in_the_ancestors_is_followed_and_its_target_checked() {
        let base = tempdir();
        let open = base.join("open");
        let dir = open.join("mine");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let link = base.join("via");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        let error = check(&link.join("mine")).unwrap_err().to_string();
        assert!(error.contains("open (an ancestor) has mode 777"), "{error}");
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        if effective_uid() != 0 {
            return; // Only root can give a directory away.
        }
        let base = tempdir();
        let dir = base.join("theirs");
        fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let error = check(&dir).unwrap_err().to_string();
        assert!(error.contains("is owned by uid 65534"), "{error}");
        let inner = dir.join("mine");
        fs::DirBuilder::new().mode(0o700).create(&inner).unwrap();
        let error = check(&inner).unwrap_err().to_string();
        assert!(error.contains("theirs (an ancestor) is owned by uid 65534"), "{error}");
        fs::remove_dir_all(base).unwrap();
    }
}
