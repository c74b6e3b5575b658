//! The embedded HSM: a SoftHSM2 token directory owned by one qcert home.
//!
//! SoftHSM reads its configuration from the file named by `SOFTHSM2_CONF`
//! when the module is initialised, so the variable must be set before the
//! first call to [`crate::module`] in the process.

use std::path::{Path, PathBuf};

/// Where Debian's softhsm2 package installs the PKCS#11 module.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The environment variable SoftHSM reads its configuration path from.
pub const CONF_ENV: &str = "SOFTHSM2_CONF";

/// Write `dir/softhsm2.conf` with a token directory `dir/tokens` (created,
/// mode 0700) and return the configuration file's path.
pub fn write_config(dir: &Path) -> std::io::Result<PathBuf> {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)?;
    restrict(&tokens, 0o700)?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "# SoftHSM2 token store of this qcert home\n\
             directories.tokendir = {}\n\
             objectstore.backend = file\n\
             log.level = ERROR\n\
             slots.removable = false\n",
            tokens.display()
        ),
    )?;
    Ok(conf)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}
