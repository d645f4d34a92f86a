//! Refusing plugin files that other users could have replaced.

use std::path::Path;

use crate::error::{HostError, HostErrorKind};

/// Fails when `path` (followed through symlinks) is writable by every user: anyone could then
/// make the server run their code.
pub(crate) fn check_not_world_writable(path: &Path) -> Result<(), HostError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| HostError::new(HostErrorKind::Io, format!("{}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o002 != 0 {
            let what = if meta.is_dir() { "plugin directory" } else { "plugin library" };
            return Err(HostError::new(
                HostErrorKind::InsecurePermissions,
                format!(
                    "{what} {} is world-writable (mode {:o}); refusing to load code any user could replace \
                     (fix with `chmod o-w {}`)",
                    path.display(),
                    mode & 0o7777,
                    path.display()
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}
