//! Listing and cleaning the named segments of this crate in `/dev/shm`: what `multiproc shm
//! list` and `shm clean` show and do.

use super::header::{self, HEADER_LEN};
use super::name::temp_creator;
use super::Segment;
use crate::sys;
use std::io::Read;

/// A named segment of ours found in `/dev/shm`, as `multiproc shm list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamedSegmentInfo {
    /// The name, without a leading `/` (as [`Segment::name`](crate::Segment::name) shows it).
    pub name: String,
    /// Size in bytes.
    pub len: u64,
    /// Pid of the process that created it.
    pub creator_pid: u32,
    /// Whether that process (the same one: pid and start time match) still runs.
    pub creator_alive: bool,
    /// Whether the creator published it (finished initializing it).
    pub published: bool,
    /// What it holds, as `Kind<type>` (`Queue<u64>`, `Lock`, `Segment`), or `?` for a
    /// leftover temporary file whose header is incomplete.
    pub object: String,
    /// A temporary name of the fallback creation scheme (`/.mp-…`): a creator that was killed
    /// before renaming it, or one still at work.
    pub temporary: bool,
}

/// Lists the named segments in `/dev/shm` that belong to the current user and are this
/// crate's: a valid header, or a temporary name of ours. Other files are skipped.
///
/// Headers are read with `read(2)`, never mapped, so a file truncated meanwhile cannot raise
/// SIGBUS here.
///
/// # Errors
/// Only if `/dev/shm` cannot be read.
///
/// # Examples
///
/// ```
/// use multiproc::{list_named, Segment};
///
/// let name = format!("doc-list-{}", std::process::id());
/// let _seg = Segment::create(&name, 4096)?;
/// let found = list_named()?.into_iter().find(|s| s.name == name).unwrap();
/// assert!(found.creator_alive && found.published);
/// assert_eq!(found.object, "Segment");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn list_named() -> std::io::Result<Vec<NamedSegmentInfo>> {
    let mut out = Vec::new();
    let uid = sys::mman::getuid();
    for entry in std::fs::read_dir(sys::mman::SHM_DIR)? {
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || std::os::unix::fs::MetadataExt::uid(&meta) != uid {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(info) = judge(&name, &entry.path(), meta.len()) {
            out.push(info);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// What one file in `/dev/shm` is, if it is ours.
fn judge(name: &str, path: &std::path::Path, len: u64) -> Option<NamedSegmentInfo> {
    let mut buf = [0u8; HEADER_LEN];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut buf)).is_ok();
    let header = if read { header::validate_header(&buf, len).ok() } else { None };
    let temp = temp_creator(name);
    let (creator_pid, creator_start, published, object) = match (header, temp) {
        (Some(h), _) => (h.creator_pid, h.creator_start, true, h.describe()),
        (None, Some((pid, start))) => (pid, start, false, "?".to_owned()),
        (None, None) => return None,
    };
    Some(NamedSegmentInfo {
        name: name.to_owned(),
        len,
        creator_pid,
        creator_alive: sys::process::is_alive(creator_pid, creator_start),
        published,
        object,
        temporary: temp.is_some(),
    })
}

impl Segment {
    /// Unlinks every named segment of ours whose creator has died (see [`list_named`]),
    /// including temporary files left by a creator killed mid-creation, and returns their
    /// names. Segments whose creator is alive are never touched.
    ///
    /// A persisted segment of a creator that has exited counts as stale: call this only when
    /// no process still means to open such segments (it is what `multiproc shm clean` does).
    ///
    /// # Errors
    /// Only if `/dev/shm` cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// let removed = multiproc::Segment::clean_stale()?;
    /// assert!(removed.iter().all(|n| n.starts_with('/')));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn clean_stale() -> std::io::Result<Vec<String>> {
        let mut removed = Vec::new();
        for s in list_named()? {
            if !s.creator_alive && sys::mman::shm_unlink(&format!("/{}", s.name)).is_ok() {
                removed.push(s.name);
            }
        }
        Ok(removed)
    }
}
