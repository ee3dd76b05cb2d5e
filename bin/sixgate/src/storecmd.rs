//! `sixgate backup`, `sixgate restore` and `sixgate kek`: the store as a
//! whole, and the key-encryption key its secrets are sealed with
//! (sixgate_store::backup, sixgate_store::sealed).

use std::path::Path;

use anyhow::{Context, bail};
use sixgate_store::sealed::{KEK_ENV, Kek};

/// The key-encryption key: from a file (`--kek-file`, or `[store]
/// kek_file` for `serve`) or from `SIXGATE_KEK`; one place, not both,
/// so that no one wonders which is used.
pub(crate) fn kek(file: Option<&Path>) -> anyhow::Result<Option<Kek>> {
    let env = std::env::var(KEK_ENV).ok().filter(|v| !v.trim().is_empty());
    match (file, env) {
        (Some(f), Some(_)) => {
            bail!("a key-encryption key is given both in {} and in {KEK_ENV}: give one", f.display())
        }
        (Some(f), None) => Ok(Some(Kek::read_file(f)?)),
        (None, Some(text)) => Ok(Some(Kek::parse(&text).with_context(|| format!("reading {KEK_ENV}"))?)),
        (None, None) => Ok(None),
    }
}

/// Makes the key-encryption key the one every store open of this process
/// uses.
pub(crate) fn install_kek(file: Option<&Path>) -> anyhow::Result<()> {
    sixgate_store::sealed::install(kek(file)?);
    Ok(())
}

/// `sixgate backup FILE`.
pub(crate) fn backup(dir: &Path, file: &Path) -> anyhow::Result<()> {
    let summary = sixgate_store::backup::backup(dir, file)
        .with_context(|| format!("backing up the store in {} to {}", dir.display(), file.display()))?;
    println!("backup\t{}", file.display());
    println!("{summary}");
    Ok(())
}

/// `sixgate restore FILE`.
pub(crate) fn restore(dir: &Path, file: &Path, force: bool) -> anyhow::Result<()> {
    let summary = sixgate_store::backup::restore(file, dir, force)
        .with_context(|| format!("restoring {} into {}", file.display(), dir.display()))?;
    println!("restored\t{}", dir.display());
    println!("{summary}");
    Ok(())
}

/// `sixgate kek create FILE`: a new random key, in a new 0600 file.
pub(crate) fn kek_create(file: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(sixgate_store::files::FILE_MODE)
        .open(file)
        .with_context(|| format!("creating {} (an existing key is never overwritten)", file.display()))?;
    f.write_all(format!("{}\n", Kek::generate_text()).as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", file.display()))?;
    let id = Kek::read_file(file)?.id();
    println!("kek\t{}\t{:016x}", file.display(), id as u64);
    Ok(())
}

/// `sixgate kek rotate NEW_FILE`.
pub(crate) fn kek_rotate(dir: &Path, new_file: &Path) -> anyhow::Result<()> {
    if !dir.join(sixgate_store::DB_FILE).is_file() {
        bail!("no store in {}", dir.display());
    }
    let new = std::sync::Arc::new(Kek::read_file(new_file)?);
    // Servers keep the old key in memory: they must not run meanwhile.
    let _lock = sixgate_store::files::lock_exclusive(dir)?;
    let mut store =
        sixgate_store::Store::open(dir).with_context(|| format!("opening store in {}", dir.display()))?;
    let id = new.id();
    let n = store.rekey(new)?;
    println!("rotated\t{n}\t{:016x}", id as u64);
    Ok(())
}
