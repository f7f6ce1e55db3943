//! Before any worker starts: is the shim there, with its npm dependencies installed?
//!
//! Without them every worker would die in its handshake with Node's `MODULE_NOT_FOUND`
//! and be restarted forever; one clear error at start-up, naming what is missing and
//! the command that installs it, is what the person starting wbe needs instead.

use std::path::Path;

use serde::Deserialize;

#[derive(Deserialize)]
struct PackageJson {
    #[serde(default)]
    dependencies: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Checks that `shim` exists and that every dependency its `package.json` declares is
/// installed in the `node_modules` beside it.
pub fn check_installed(shim: &Path) -> Result<(), String> {
    let dir = shim.parent().unwrap_or(Path::new("."));
    let setup = "run scripts/setup in the wbe checkout, or set WBE_HOME to a checkout where it has run";
    if !shim.is_file() {
        return Err(format!("the Node shim is missing: {} does not exist; {setup}", shim.display()));
    }
    let manifest = dir.join("package.json");
    let text = std::fs::read_to_string(&manifest).map_err(|e| format!("cannot read {}: {e}; {setup}", manifest.display()))?;
    let package: PackageJson = serde_json::from_str(&text).map_err(|e| format!("{} is not valid: {e}", manifest.display()))?;
    let modules = dir.join("node_modules");
    let missing: Vec<&str> = package
        .dependencies
        .keys()
        .map(String::as_str)
        .filter(|name| !modules.join(name).join("package.json").is_file())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the Node shim's dependencies are not installed in {} (missing: {}); {setup} (it runs `npm ci --prefix {}`)",
        modules.display(),
        missing.join(", "),
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shim_dir(dependencies: &str, installed: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shim.js"), "").unwrap();
        std::fs::write(dir.path().join("package.json"), format!(r#"{{"dependencies":{dependencies}}}"#)).unwrap();
        for name in installed {
            let package = dir.path().join("node_modules").join(name);
            std::fs::create_dir_all(&package).unwrap();
            std::fs::write(package.join("package.json"), "{}").unwrap();
        }
        dir
    }

    #[test]
    fn names_what_is_missing_and_how_to_install_it() {
        let dir = shim_dir(r#"{"qs":"6","mime-types":"2","vary":"1"}"#, &["vary"]);
        let error = check_installed(&dir.path().join("shim.js")).unwrap_err();
        assert!(error.contains("(missing: mime-types, qs)"), "{error}");
        assert!(error.contains("scripts/setup"), "{error}");
    }

    #[test]
    fn accepts_a_complete_install_and_refuses_a_missing_shim() {
        let dir = shim_dir(r#"{"qs":"6"}"#, &["qs"]);
        assert_eq!(check_installed(&dir.path().join("shim.js")), Ok(()));
        assert!(check_installed(&dir.path().join("nope.js")).unwrap_err().contains("does not exist"));
    }
}
