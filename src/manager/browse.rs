//! `files` and `cat`: what a generation holds, and one file of it, from the archives'
//! indexes (see [`crate::browse`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result, bail};

use super::archives::{Found, find_archive, generation, restore_only};
use crate::archive::{entry_name, needs_identity};
use crate::browse::{Item, View};
use crate::encryption::Identity;
use crate::generations::chain;
use crate::home::Home;
use crate::index::Entry;
use crate::tar::{DUMPDIR, VOLUME_LABEL};

/// A generation picked on the command line, and its chain.
pub(super) struct Picked {
    /// The archive.
    pub(super) found: Found,
    /// Its chain: itself, or its full and every incremental up to it.
    pub(super) chain: Vec<PathBuf>,
    /// The identity that opens it, when it is encrypted.
    pub(super) key: Option<Rc<Identity>>,
}

impl Picked {
    /// The generation of `name` (a NAME or an archive's file name) at `at`, or the newest;
    /// an encrypted one needs the identity file `identity`, which is read here.
    pub(super) fn new(
        home: &Home,
        name: &str,
        at: Option<&str>,
        identity: Option<&Path>,
    ) -> Result<Self> {
        let name = match at {
            Some(at) => generation(home, name, at)?,
            None => name.to_owned(),
        };
        let found = find_archive(home, &name)?;
        let key = match (found.format.encrypted, identity) {
            (false, _) => None,
            (true, None) => bail!("{}", needs_identity(Path::new(&found.shown()))),
            (true, Some(path)) => Some(Rc::new(Identity::load(path)?)),
        };
        let chain = chain::chain_to(&home.backups(), &found.file_name, found.format)
            .with_context(|| format!("reading {}", found.shown()))?;
        Ok(Picked { found, chain, key })
    }

    /// The generation's tree.
    pub(super) fn view(&self) -> Result<View> {
        self.view_only(&|_| true)
    }

    /// The entries of the generation's tree that `wanted` takes.
    pub(super) fn view_only(&self, wanted: &dyn Fn(&[u8]) -> bool) -> Result<View> {
        View::open_as(&self.chain, (self.found.format, self.key.clone()), wanted)
            .with_context(|| format!("reading {}", self.found.shown()))
    }

    /// The entries of the generation's tree named by one of `names`, as stored.
    pub(super) fn view_named(&self, names: &[Vec<u8>]) -> Result<View> {
        View::open_named(&self.chain, (self.found.format, self.key.clone()), names)
            .with_context(|| format!("reading {}", self.found.shown()))
    }

    /// The entries of the generation's tree that the `paths` name, and those under them:
    /// each path must name one.
    pub(super) fn view_under(&self, home: &Home, paths: &[String]) -> Result<(View, Vec<Vec<u8>>)> {
        let candidates: Vec<Vec<u8>> = paths
            .iter()
            .flat_map(|p| self.stored_names(home, p))
            .collect();
        let view = self.view_only(&|n| candidates.iter().any(|c| is_under(n, c)))?;
        let wanted = self.resolve(home, paths, |n| view.find(n).is_some())?;
        Ok((view, wanted))
    }

    /// The names an entry may be stored under for `path`, as the user gave it: the
    /// absolute source path, the name as stored in the archive, or a path relative to
    /// the schedule's PATH. Most likely first.
    pub(super) fn stored_names(&self, home: &Home, path: &str) -> Vec<Vec<u8>> {
        let mut names = Vec::new();
        let mut push = |name: PathBuf| {
            let bytes = std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()).to_vec();
            if !names.contains(&bytes) {
                names.push(bytes);
            }
        };
        let given = Path::new(path);
        if let Some(schedule) = &self.found.schedule {
            let root = home.resolve(Path::new(&schedule.path));
            let prefix = entry_name(&schedule.path);
            if given.is_absolute() {
                if let Ok(rest) = std::path::absolute(given)
                    .unwrap_or_else(|_| given.to_owned())
                    .strip_prefix(&root)
                {
                    push(prefix.join(entry_name(&rest.to_string_lossy())));
                }
            } else {
                push(entry_name(path));
                push(prefix.join(entry_name(path)));
            }
        }
        push(entry_name(path));
        names.retain(|n| !n.is_empty() || path == "." || path == "/");
        names
    }

    /// Resolves the paths the user gave to the names they have in `items`: each must
    /// name an entry.
    pub(super) fn resolve(
        &self,
        home: &Home,
        paths: &[String],
        items: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<Vec<u8>>> {
        paths
            .iter()
            .map(|path| {
                self.stored_names(home, path)
                    .into_iter()
                    .find(|name| items(name))
                    .with_context(|| format!("{} holds no {path:?}", self.found.shown()))
            })
            .collect()
    }
}

/// `restore NAME DEST [--path P...]`: as [`super::restore`]; with paths, of only the
/// entries they name and what is under them, each path taken as the absolute source
/// path, as stored, or relative to the schedule's PATH. A path the generation does not
/// hold is refused before anything is written.
pub fn restore_paths(
    home: &Home,
    name: &str,
    dest: &Path,
    flags: (bool, bool),
    identity: Option<&Path>,
    paths: &[String],
) -> Result<super::Finished> {
    if paths.is_empty() {
        return restore_only(home, name, dest, flags, identity, None);
    }
    let picked = Picked::new(home, name, None, identity)?;
    let (view, mut only) = picked.view_under(home, paths)?;
    // A hard link comes back with the file it links to, wherever that is: the archive
    // holds the data only once, with the first of its names.
    let targets: Vec<Vec<u8>> = view
        .items
        .iter()
        .filter(|item| item.entry.kind() == crate::tar::Kind::HardLink)
        .map(|item| item.entry.link.clone())
        .filter(|target| !only.iter().any(|o| is_under(target, o)))
        .collect();
    only.extend(targets);
    restore_only(home, name, dest, flags, identity, Some(&only))
}

/// Whether `name` is `under` or inside it.
pub(super) fn is_under(name: &[u8], under: &[u8]) -> bool {
    under.is_empty()
        || name == under
        || (name.len() > under.len() && name.starts_with(under) && name[under.len()] == b'/')
}

/// `files NAME [PATH...]`: gives each entry of the generation (under the PATHs, if
/// any) to `each`, in the archive's order. Returns the warnings to show (an index not
/// used).
pub fn files(
    home: &Home,
    name: &str,
    (at, identity): (Option<&str>, Option<&Path>),
    paths: &[String],
    each: &mut dyn FnMut(&Entry) -> Result<()>,
) -> Result<Vec<String>> {
    let picked = Picked::new(home, name, at, identity)?;
    if picked.chain.len() == 1 && paths.is_empty() {
        // One archive, whole: read as it is listed, never held in memory.
        let catalog = crate::browse::Catalog::open_as(
            &picked.chain[0],
            picked.found.format,
            picked.key.clone(),
        )?;
        catalog.for_each(&mut |entry| {
            match entry.type_flag {
                VOLUME_LABEL => {}
                DUMPDIR => {
                    let mut dir = entry.clone();
                    dir.type_flag = b'5';
                    each(&dir)?;
                }
                _ => each(entry)?,
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })?;
        return Ok(catalog.warning.into_iter().collect());
    }
    let (view, wanted) = if paths.is_empty() {
        (picked.view()?, Vec::new())
    } else {
        picked.view_under(home, paths)?
    };
    let warnings = view.warnings().map(str::to_owned).collect();
    for item in &view.items {
        if wanted.is_empty() || wanted.iter().any(|w| is_under(&item.entry.name, w)) {
            each(&item.entry)?;
        }
    }
    Ok(warnings)
}

/// `cat NAME PATH`: writes the file PATH of the generation to `out`. Returns the
/// warnings to show.
pub fn cat(
    home: &Home,
    name: &str,
    (at, identity): (Option<&str>, Option<&Path>),
    path: &str,
    out: &mut dyn Write,
) -> Result<Vec<String>> {
    let picked = Picked::new(home, name, at, identity)?;
    let names = picked.stored_names(home, path);
    let view = picked.view_named(&names)?;
    let warnings = view.warnings().map(str::to_owned).collect();
    let Some(item): Option<&Item> = names.iter().find_map(|n| view.find(n)) else {
        bail!("{} holds no {path:?}", picked.found.shown());
    };
    if item.entry.kind() == crate::tar::Kind::HardLink {
        // Its data is its target's.
        let target = item.entry.link.clone();
        let linked = picked.view_named(std::slice::from_ref(&target))?;
        match linked.find(&target) {
            Some(found) => linked.copy_data(found, out)?,
            None => bail!(
                "{path:?} is a hard link to {}, which {} does not hold",
                String::from_utf8_lossy(&target),
                picked.found.shown()
            ),
        };
    } else {
        view.copy_data(item, out)?;
    }
    out.flush().context("writing to stdout")?;
    Ok(warnings)
}
