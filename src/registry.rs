//! Finding widgets and their backend files in the widget folders.
//!
//! This is pure file-system work with no processes involved, so that `wbe check`, the
//! server's start-up and a reload all agree on what a widget is. The rules are the stage
//! backend's: every sub-folder of a widgets folder is a widget (plain files, symbolic
//! links and the `ignore_folders` are skipped); its backend is `<backend_filename>.js` or
//! `.ts`, and when both exist the `.js` wins with a warning. The first folder that holds
//! a widget id wins over later `--widgets` folders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::WidgetsConfig;

/// One widget folder as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetSource {
    pub id: String,
    pub dir: PathBuf,
    /// The backend file to run, if the widget has one.
    pub backend: Option<PathBuf>,
    /// Changes whenever a file in the widget folder is added, removed or modified.
    pub fingerprint: u64,
}

/// The result of scanning the widget folders: widgets by id, and what the operator should
/// hear about (duplicate ids, ambiguous backends, unreadable folders).
#[derive(Debug, Default)]
pub struct Scan {
    pub widgets: BTreeMap<String, WidgetSource>,
    pub warnings: Vec<String>,
}

pub fn scan(config: &WidgetsConfig) -> Scan {
    let mut scan = Scan::default();
    for dir in &config.dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                scan.warnings.push(format!("cannot read widgets folder {}: {e}", dir.display()));
                continue;
            }
        };
        let mut ids: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .filter(|(name, _)| !config.ignore_folders.iter().any(|i| i == name))
            .collect();
        ids.sort();
        for (id, path) in ids {
            if let Some(existing) = scan.widgets.get(&id) {
                scan.warnings.push(format!(
                    "widget `{id}` in {} is hidden by the one in {}",
                    path.display(),
                    existing.dir.display()
                ));
                continue;
            }
            let backend = find_backend(&path, config, &mut scan.warnings);
            let fingerprint = fingerprint(&path);
            scan.widgets.insert(id.clone(), WidgetSource { id, dir: path, backend, fingerprint });
        }
    }
    scan
}

fn find_backend(dir: &Path, config: &WidgetsConfig, warnings: &mut Vec<String>) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = config
        .backend_extensions
        .iter()
        .map(|ext| dir.join(format!("{}.{ext}", config.backend_filename)))
        .filter(|p| p.is_file())
        .collect();
    // The contract's rule: with both, `.js` is used.
    found.sort_by_key(|p| p.extension().map_or(true, |e| e != "js"));
    if found.len() > 1 {
        warnings.push(format!(
            "{} and {} both exist; using {}",
            found[0].display(),
            found[1].display(),
            found[0].display()
        ));
    }
    found.into_iter().next()
}

/// Files looked at per widget when fingerprinting; a widget folder is a handful of files,
/// and the bound keeps a mistaken folder (say, one holding a `node_modules`) cheap.
const FINGERPRINT_FILES: usize = 2000;

/// A hash of the names, sizes, modification times, inodes and change times of the files
/// under `dir`: a file copied in with its old size and modification time (`cp -p`,
/// `rsync -t`) still has a new inode or change time. Cheap enough to recompute on every
/// rescan, which is what makes polling for changes (on file systems without change
/// notification) practical.
fn fingerprint(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut pending = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            seen += 1;
            if seen > FINGERPRINT_FILES {
                return hasher.finish();
            }
            let Ok(meta) = entry.metadata() else { continue };
            entry.path().hash(&mut hasher);
            meta.len().hash(&mut hasher);
            meta.modified().ok().hash(&mut hasher);
            (meta.ino(), meta.ctime(), meta.ctime_nsec()).hash(&mut hasher);
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    hasher.finish()
}

/// Whether a `widget-id` header value can name a widget folder: a plain folder name, so
/// that no value can point the gateway anywhere but at a direct child of a widgets folder.
pub fn is_valid_widget_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id != "."
        && !id.contains("..")
        && !id.chars().any(|c| matches!(c, '/' | '\\' | ':' | '%') || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn config(dirs: Vec<PathBuf>) -> WidgetsConfig {
        WidgetsConfig { dirs, ..WidgetsConfig::default() }
    }

    #[test]
    fn finds_widgets_and_backends() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("a")).unwrap();
        fs::write(root.join("a/backend.js"), "").unwrap();
        fs::create_dir_all(root.join("b")).unwrap();
        fs::write(root.join("b/backend.ts"), "").unwrap();
        fs::create_dir_all(root.join("no-backend")).unwrap();
        fs::create_dir_all(root.join("common")).unwrap();
        fs::write(root.join("common/backend.js"), "").unwrap();
        fs::write(root.join("plain-file"), "").unwrap();

        let scan = scan(&config(vec![root.to_path_buf()]));
        let ids: Vec<&str> = scan.widgets.keys().map(String::as_str).collect();
        assert_eq!(ids, ["a", "b", "no-backend"]);
        assert_eq!(scan.widgets["a"].backend.as_deref(), Some(root.join("a/backend.js").as_path()));
        assert_eq!(scan.widgets["b"].backend.as_deref(), Some(root.join("b/backend.ts").as_path()));
        assert_eq!(scan.widgets["no-backend"].backend, None);
        assert!(scan.warnings.is_empty(), "{:?}", scan.warnings);
    }

    #[test]
    fn fingerprint_changes_with_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("backend.js"), "a").unwrap();
        let before = fingerprint(tmp.path());
        assert_eq!(before, fingerprint(tmp.path()));
        fs::write(tmp.path().join("backend.js"), "ab").unwrap();
        let changed = fingerprint(tmp.path());
        assert_ne!(before, changed);
        fs::create_dir(tmp.path().join("lib")).unwrap();
        fs::write(tmp.path().join("lib/util.js"), "x").unwrap();
        assert_ne!(changed, fingerprint(tmp.path()));
    }

    #[test]
    fn fingerprint_sees_a_file_replaced_with_its_old_size_and_time() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("backend.js");
        fs::write(&file, "a").unwrap();
        let before = fingerprint(tmp.path());
        // What `cp -p` or `rsync -t` of another version does: same size and mtime.
        let staging = tempfile::tempdir_in(tmp.path().parent().unwrap()).unwrap();
        let staged = staging.path().join("backend.js");
        fs::write(&staged, "b").unwrap();
        let mtime = fs::metadata(&file).unwrap().modified().unwrap();
        fs::File::options().write(true).open(&staged).unwrap().set_modified(mtime).unwrap();
        fs::rename(&staged, &file).unwrap();
        assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), mtime);
        assert_ne!(before, fingerprint(tmp.path()));
    }

    #[test]
    fn js_wins_over_ts_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("w")).unwrap();
        fs::write(tmp.path().join("w/backend.ts"), "").unwrap();
        fs::write(tmp.path().join("w/backend.js"), "").unwrap();
        let scan = scan(&config(vec![tmp.path().to_path_buf()]));
        assert!(scan.widgets["w"].backend.as_ref().unwrap().ends_with("backend.js"));
        assert_eq!(scan.warnings.len(), 1);
    }

    #[test]
    fn first_folder_wins_for_duplicate_ids() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        fs::create_dir_all(one.path().join("w")).unwrap();
        fs::create_dir_all(two.path().join("w")).unwrap();
        let scan = scan(&config(vec![one.path().to_path_buf(), two.path().to_path_buf()]));
        assert_eq!(scan.widgets["w"].dir, one.path().join("w"));
        assert_eq!(scan.warnings.len(), 1);
    }

    #[test]
    fn missing_folder_is_a_warning_not_a_failure() {
        let scan = scan(&config(vec![PathBuf::from("/nonexistent/widgets")]));
        assert!(scan.widgets.is_empty());
        assert_eq!(scan.warnings.len(), 1);
    }

    #[test]
    fn widget_ids_must_be_plain_folder_names() {
        for ok in ["status", "my-widget_2", "Widget.v2"] {
            assert!(is_valid_widget_id(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../etc", "a/b", "a\\b", "a\0b", "a\nb", "c:x"] {
            assert!(!is_valid_widget_id(bad), "{bad:?}");
        }
    }
}
