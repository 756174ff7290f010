//! A full disk under a local destination: a 1 MiB tmpfs mounted for the
//! test (needs root, which the test machines and CI have). The upload fails
//! with a clear ENOSPC error, no partial or temporary file is left, and the
//! objects already there are intact.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use pgharbor_objstore::{Destination, DestinationOptions, ObjstoreErrorKind};

/// A small tmpfs, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// The reason, as an error, when mounting is impossible (not root, no
    /// `mount`, a container without CAP_SYS_ADMIN).
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let parent = tempfile::tempdir().map_err(|e| said(&e))?;
        let dir = parent.path().join("full");
        std::fs::create_dir(&dir).map_err(|e| said(&e))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs {
            dir,
            _parent: parent,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn full_disk_is_a_clear_enospc_error_and_leaves_nothing_behind() {
    let fs = match Tmpfs::mount("1M") {
        Ok(fs) => fs,
        Err(reason) if !is_root() => {
            eprintln!("skipped: mounting a tmpfs needs root ({reason})");
            return;
        }
        Err(reason) => panic!("mount -t tmpfs failed as root: {reason}"),
    };
    let dest =
        Destination::parse(fs.dir.to_str().unwrap(), &DestinationOptions::default()).unwrap();
    dest.put_bytes("b1/manifest.json", r#"{"state":"complete"}"#)
        .await
        .unwrap();

    let big = vec![1u8; 3 * 1024 * 1024];
    let e = dest.put_stream("b2/app.dump", &big[..]).await.unwrap_err();
    assert_eq!(e.kind(), ObjstoreErrorKind::NoSpace, "{e}");
    let msg = said(&e);
    assert!(msg.contains("no space left on device (ENOSPC)"), "{msg}");
    assert!(msg.contains("'b2/app.dump'"), "{msg}");
    assert!(msg.contains(&fs.dir.display().to_string()), "{msg}");
    assert!(msg.contains("free space"), "{msg}");

    // The partial file is gone, the earlier backup is intact, and the space
    // is free again: a small manifest still fits.
    assert!(files_in(&fs.dir.join("b2")).is_empty());
    assert_eq!(
        &dest.get_bytes("b1/manifest.json").await.unwrap()[..],
        br#"{"state":"complete"}"#
    );
    let names: Vec<String> = dest
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["b1/manifest.json"]);
    dest.put_bytes("b2/manifest.json", r#"{"state":"failed"}"#)
        .await
        .unwrap();

    // A manifest that does not fit fails the same way, and the old one stays.
    let e = dest
        .put_bytes("b1/manifest.json", vec![b' '; 2 * 1024 * 1024])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ObjstoreErrorKind::NoSpace, "{e}");
    assert_eq!(
        &dest.get_bytes("b1/manifest.json").await.unwrap()[..],
        br#"{"state":"complete"}"#
    );
    assert_eq!(files_in(&fs.dir.join("b1")), ["manifest.json"]);
}

#[tokio::test]
async fn read_only_directory_is_permission_denied() {
    let fs = match Tmpfs::mount("1M") {
        Ok(fs) => fs,
        Err(reason) if !is_root() => {
            eprintln!("skipped: mounting a tmpfs needs root ({reason})");
            return;
        }
        Err(reason) => panic!("mount -t tmpfs failed as root: {reason}"),
    };
    let status = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&fs.dir)
        .status()
        .unwrap();
    assert!(status.success(), "remount read-only");
    let dest =
        Destination::parse(fs.dir.to_str().unwrap(), &DestinationOptions::default()).unwrap();
    let e = dest.put_bytes("manifest.json", "{}").await.unwrap_err();
    assert_eq!(e.kind(), ObjstoreErrorKind::PermissionDenied, "{e}");
    assert!(said(&e).contains("read-only file system"), "{e}");
}

/// An error and its causes as one line, as the CLI prints it.
fn said(e: &(dyn std::error::Error + 'static)) -> String {
    pgharbor_conn::chain_text(e, &pgharbor_objstore::keeps_cause_apart)
}
