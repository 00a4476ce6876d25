//! The media root: every file the planes read from it is opened relative
//! to the root directory and confined to it.
//!
//! Names in URLs are already `[A-Za-z0-9_.-]`, so a URL cannot name a path
//! outside the root; a *symlink* inside the root can still point outside
//! it (`outlink.mp4 -> /etc/...`, or a directory `outdir -> /`). Every open
//! here goes through `openat2(2)` from a descriptor of the root, with
//! `RESOLVE_BENEATH` (nothing resolves above the root, absolute paths
//! included) and, by default, `RESOLVE_NO_SYMLINKS` (no symlink anywhere in
//! the path). What an operator may allow instead is [`Symlinks`]. The
//! root itself may be a symlink: it is the operator's own path.
//!
//! `openat2` is Linux 5.6 and later; an older kernel gets a clear error
//! naming it rather than unconfined opens.

use std::fs::{File, Metadata};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// How symlinks under the media root are treated (`media.symlinks`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Symlinks {
    /// No symlink in any path under the root (the default).
    #[default]
    Refuse,
    /// Symlinks that resolve inside the root (relative ones that do not
    /// climb above it); anything that would leave it is refused.
    WithinRoot,
    /// Any symlink, wherever it points: for operators who assemble a
    /// library from links to other mounts, knowing what they link.
    Follow,
}

impl Symlinks {
    fn resolve(self) -> Option<ResolveFlags> {
        match self {
            Symlinks::Refuse => Some(
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            ),
            Symlinks::WithinRoot => Some(ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS),
            Symlinks::Follow => None,
        }
    }
}

/// A media root directory and its symlink policy.
#[derive(Clone, Debug)]
pub struct MediaRoot {
    path: PathBuf,
    symlinks: Symlinks,
}

impl MediaRoot {
    /// The root at `path` (not opened until used: a root replaced on disk
    /// is picked up by the next open).
    pub fn new(path: PathBuf, symlinks: Symlinks) -> Self {
        MediaRoot { path, symlinks }
    }

    /// The root's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The symlink policy.
    pub fn symlinks(&self) -> Symlinks {
        self.symlinks
    }

    fn open_at(&self, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        if rel.is_absolute() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "an absolute path is not under the media root",
            ));
        }
        let root = rustix::fs::open(
            &self.path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let flags = flags | OFlags::CLOEXEC;
        let fd = match self.symlinks.resolve() {
            Some(resolve) => rustix::fs::openat2(&root, rel, flags, Mode::empty(), resolve)
                .map_err(|e| match e {
                    rustix::io::Errno::XDEV => io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "resolves outside the media root",
                    ),
                    rustix::io::Errno::LOOP => io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "is or goes through a symlink (media.symlinks = \"refuse\")",
                    ),
                    rustix::io::Errno::NOSYS => io::Error::new(
                        io::ErrorKind::Unsupported,
                        "this kernel has no openat2 (Linux 5.6 or later is needed to confine paths)",
                    ),
                    other => other.into(),
                })?,
            None => rustix::fs::openat(&root, rel, flags, Mode::empty())?,
        };
        Ok(fd)
    }

    /// Opens `rel` (relative to the root) for reading, confined.
    pub fn open(&self, rel: &Path) -> io::Result<File> {
        Ok(File::from(self.open_at(rel, OFlags::RDONLY)?))
    }

    /// The metadata of `rel`, confined (the path resolved as an open would
    /// resolve it; a symlink the policy refuses is an error, not followed).
    pub fn metadata(&self, rel: &Path) -> io::Result<Metadata> {
        File::from(self.open_at(rel, OFlags::PATH)?).metadata()
    }

    /// The names in directory `rel`, confined (`.` and `..` left out).
    pub fn read_dir(&self, rel: &Path) -> io::Result<Vec<String>> {
        let fd = self.open_at(rel, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&fd)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy();
            if name != "." && name != ".." {
                names.push(name.into_owned());
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("in.mp4"), b"in").unwrap();
        std::fs::write(root.join("sub/deep.mp4"), b"deep").unwrap();
        std::fs::write(dir.path().join("secret.mp4"), b"secret").unwrap();
        symlink(dir.path().join("secret.mp4"), root.join("outlink.mp4")).unwrap();
        symlink(dir.path(), root.join("outdir")).unwrap();
        symlink("in.mp4", root.join("inlink.mp4")).unwrap();
        symlink("sub", root.join("subdir")).unwrap();
        (dir, root)
    }

    #[test]
    fn refuse_allows_no_symlink_anywhere() {
        let (_d, root) = tree();
        let r = MediaRoot::new(root, Symlinks::Refuse);
        assert!(r.open(Path::new("in.mp4")).is_ok());
        assert!(r.open(Path::new("sub/deep.mp4")).is_ok());
        for bad in [
            "outlink.mp4",
            "outdir/secret.mp4",
            "inlink.mp4",
            "subdir/deep.mp4",
            "../secret.mp4",
            "sub/../../secret.mp4",
            "/etc/passwd",
        ] {
            assert!(r.open(Path::new(bad)).is_err(), "{bad}");
            assert!(r.metadata(Path::new(bad)).is_err(), "{bad}");
        }
        assert!(r.read_dir(Path::new("outdir")).is_err());
        let mut names = r.read_dir(Path::new("sub")).unwrap();
        names.sort();
        assert_eq!(names, ["deep.mp4"]);
    }

    #[test]
    fn within_root_allows_links_that_stay_inside() {
        let (_d, root) = tree();
        let r = MediaRoot::new(root, Symlinks::WithinRoot);
        assert!(r.open(Path::new("inlink.mp4")).is_ok());
        assert!(r.open(Path::new("subdir/deep.mp4")).is_ok());
        for bad in ["outlink.mp4", "outdir/secret.mp4", "../secret.mp4"] {
            assert!(r.open(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn follow_follows() {
        let (_d, root) = tree();
        let r = MediaRoot::new(root, Symlinks::Follow);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut r.open(Path::new("outlink.mp4")).unwrap(), &mut s)
            .unwrap();
        assert_eq!(s, "secret");
    }

    /// A temporary directory, removed on drop (no dependency for one test).
    mod tempdir {
        use std::path::{Path, PathBuf};

        pub(super) struct Dir(PathBuf);

        impl Dir {
            pub(super) fn new() -> Self {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos();
                let p = std::env::temp_dir()
                    .join(format!("headwater-root-{}-{nanos}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }

            pub(super) fn path(&self) -> &Path {
                &self.0
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
