//! The process-wide PKCS#11 context and token discovery/initialisation.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use secrecy::SecretString;

use crate::HsmError;

/// One `Pkcs11` per module and process: `C_Initialize` may run only once.
static MODULES: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

/// The process's `Pkcs11` context for `path`, loaded and initialised (with
/// OS locking, so threads may call it concurrently) on first use.
pub fn module(path: &Path) -> Result<Pkcs11, HsmError> {
    let mut modules = MODULES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, p)) = modules.iter().find(|(p, _)| p == path) {
        return Ok(p.clone());
    }
    let module_err = |reason: String| HsmError::Module { module: path.display().to_string(), reason };
    if !path.exists() {
        return Err(module_err("file not found (is the HSM library installed?)".into()));
    }
    let pkcs11 = Pkcs11::new(path).map_err(|e| module_err(e.to_string()))?;
    pkcs11.initialize(CInitializeArgs::OsThreads).map_err(|e| module_err(e.to_string()))?;
    modules.push((path.to_owned(), pkcs11.clone()));
    Ok(pkcs11)
}

/// The slot holding the initialised token labelled `label`.
pub(crate) fn find_slot(pkcs11: &Pkcs11, label: &str) -> Result<Slot, HsmError> {
    let slots = pkcs11.get_slots_with_token().map_err(|e| HsmError::from_pkcs11("list slots", e))?;
    for slot in slots {
        let Ok(info) = pkcs11.get_token_info(slot) else { continue };
        if info.token_initialized() && info.label().trim_end() == label {
            return Ok(slot);
        }
    }
    Err(HsmError::TokenNotFound(label.to_owned()))
}

/// Initialise a new token labelled `label` in a free slot, setting its SO PIN
/// and user PIN. Refuses a label already in use.
pub fn init_token(
    module_path: &Path,
    label: &str,
    so_pin: &SecretString,
    user_pin: &SecretString,
) -> Result<(), HsmError> {
    static INIT: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INIT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let pkcs11 = module(module_path)?;
    if find_slot(&pkcs11, label).is_ok() {
        return Err(HsmError::Pkcs11 { op: "init token", rv: format!("a token labelled {label:?} already exists") });
    }
    let slots = pkcs11.get_slots_with_token().map_err(|e| HsmError::from_pkcs11("list slots", e))?;
    let free = slots
        .into_iter()
        .find(|s| pkcs11.get_token_info(*s).map(|i| !i.token_initialized()).unwrap_or(false))
        .ok_or(HsmError::NoFreeSlot)?;
    pkcs11.init_token(free, so_pin, label).map_err(|e| HsmError::from_pkcs11("init token", e))?;
    let slot = find_slot(&pkcs11, label)?;
    let session = pkcs11.open_rw_session(slot).map_err(|e| HsmError::from_pkcs11("open session", e))?;
    session.login(UserType::So, Some(so_pin)).map_err(|e| HsmError::from_pkcs11("SO login", e))?;
    session.init_pin(user_pin).map_err(|e| HsmError::from_pkcs11("init PIN", e))?;
    session.logout().map_err(|e| HsmError::from_pkcs11("logout", e))?;
    tracing::info!(label, "initialised HSM token");
    Ok(())
}
