//! `lanbridge install`: puts the running binary into the CNI bin directory and
//! a network config into the runtime's config directory — what a DaemonSet's
//! init container does on every node.
//!
//! Each file is written next to its destination, fsynced and renamed over it,
//! so a runtime never sees half a binary or half a config; a file that is
//! already identical is not written at all (its mtime stays). The binary goes
//! first: a config never names a plugin that is not there yet.

use std::fs::{self, File, Permissions};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

/// `lanbridge install ...`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print what would be written and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Prefix of every destination (e.g. where the host's root is mounted).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// A CNI network config (.conflist, .conf or .json) to install into --net-dir
    /// under its own file name.
    #[arg(long, value_name = "FILE")]
    conflist: Option<PathBuf>,
    /// With --node: the peers file whose entry for this node fills
    /// `{{podCidr}}` in the config (one config for every node).
    #[arg(long, value_name = "FILE", requires = "node")]
    peers: Option<PathBuf>,
    /// This node's name in the peers file.
    #[arg(long, value_name = "NAME", env = "NODE_NAME")]
    node: Option<String>,
    /// Where the runtime looks for plugins.
    #[arg(long, value_name = "DIR", default_value = "/opt/cni/bin")]
    bin_dir: PathBuf,
    /// Where the runtime looks for network configs.
    #[arg(long, value_name = "DIR", default_value = "/etc/cni/net.d")]
    net_dir: PathBuf,
}

/// The placeholder a config may hold for the node's pod subnet.
pub const POD_CIDR: &str = "{{podCidr}}";

/// What a destination gets: a file's contents (the binary) or bytes (the
/// config, rendered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// One file to put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub src: Source,
    pub dst: PathBuf,
    pub mode: u32,
    pub state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    New,
    Changed,
    Unchanged,
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.state {
            State::New => "install",
            State::Changed => "update",
            State::Unchanged => "unchanged",
        };
        write!(f, "{verb} {}", self.dst.display())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {reason}", path.display())]
    BadConfig { path: PathBuf, reason: String },
    #[error("{0}")]
    Peers(#[from] crate::agent::peers::PeersError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn main(args: Args) -> ExitCode {
    let bin_dir = under(&args.root, &args.bin_dir);
    let net_dir = under(&args.root, &args.net_dir);
    // /proc/self/exe opens this very binary even if its path was replaced.
    let binary = PathBuf::from("/proc/self/exe");
    let pod_cidr = match (&args.peers, &args.node) {
        (Some(peers), Some(node)) => {
            match crate::agent::peers::Peers::load(peers).and_then(|p| Ok(p.node(node)?.pod_cidr)) {
                Ok(cidr) => Some(cidr.to_string()),
                Err(e) => {
                    eprintln!("lanbridge install: {e} (nothing written)");
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => None,
    };
    let conf = args.conflist.as_deref().map(|c| (c, pod_cidr.as_deref()));
    let items = match plan(&binary, conf, &bin_dir, &net_dir) {
        Ok(items) => items,
        Err(e) => {
            eprintln!("lanbridge install: {e} (nothing written)");
            return ExitCode::FAILURE;
        }
    };
    for item in &items {
        println!("{item}");
    }
    if args.dry_run {
        println!("(dry run: nothing written)");
        return ExitCode::SUCCESS;
    }
    match apply(&items) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lanbridge install: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `dir` below `root` (`/opt/cni/bin` under `/tmp/r` is `/tmp/r/opt/cni/bin`).
pub fn under(root: &Path, dir: &Path) -> PathBuf {
    root.join(dir.strip_prefix("/").unwrap_or(dir))
}

/// What to write: the binary as `<bin_dir>/lanbridge`, then the config (if
/// any; `{{podCidr}}` replaced by the given pod subnet, then validated) as
/// `<net_dir>/<its name>`. Reads, never writes.
pub fn plan(
    binary: &Path,
    conflist: Option<(&Path, Option<&str>)>,
    bin_dir: &Path,
    net_dir: &Path,
) -> Result<Vec<Item>, InstallError> {
    let mut items = vec![item(
        Source::File(binary.to_path_buf()),
        bin_dir.join("lanbridge"),
        0o755,
    )?];
    if let Some((conf, pod_cidr)) = conflist {
        let rendered = render_config(conf, pod_cidr)?;
        let name = conf.file_name().ok_or_else(|| InstallError::BadConfig {
            path: conf.to_path_buf(),
            reason: "has no file name".into(),
        })?;
        items.push(item(Source::Bytes(rendered), net_dir.join(name), 0o644)?);
    }
    Ok(items)
}

fn item(src: Source, dst: PathBuf, mode: u32) -> Result<Item, InstallError> {
    let state = match fs::metadata(&dst) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => State::New,
        Err(e) => return Err(io_err(&dst)(e)),
        Ok(meta) if meta.permissions().mode() & 0o7777 != mode => State::Changed,
        Ok(_) => {
            let same = match &src {
                Source::File(path) => same_contents(path, &dst)?,
                Source::Bytes(bytes) => fs::read(&dst).map_err(io_err(&dst))? == *bytes,
            };
            if same {
                State::Unchanged
            } else {
                State::Changed
            }
        }
    };
    Ok(Item {
        src,
        dst,
        mode,
        state,
    })
}

fn same_contents(a: &Path, b: &Path) -> Result<bool, InstallError> {
    let mut fa = File::open(a).map_err(io_err(a))?;
    let mut fb = File::open(b).map_err(io_err(b))?;
    let (la, lb) = (
        fa.metadata().map_err(io_err(a))?.len(),
        fb.metadata().map_err(io_err(b))?.len(),
    );
    // /proc/self/exe reports its real size; other special files may report 0.
    if la != lb && la != 0 {
        return Ok(false);
    }
    let mut ba = vec![0u8; 1 << 16];
    let mut bb = vec![0u8; 1 << 16];
    loop {
        let n = read_full(&mut fa, &mut ba).map_err(io_err(a))?;
        let m = read_full(&mut fb, &mut bb).map_err(io_err(b))?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The config at `path` with `{{podCidr}}` filled in, if it is one the
/// runtime would load: a conflist (`name`, `cniVersion`, non-empty `plugins`
/// each with a `type`) or a single config with `type`.
fn render_config(path: &Path, pod_cidr: Option<&str>) -> Result<Vec<u8>, InstallError> {
    let bad = |reason: String| InstallError::BadConfig {
        path: path.to_path_buf(),
        reason,
    };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "conflist" | "conf" | "json") {
        return Err(bad(
            "runtimes only load .conflist, .conf and .json files".into()
        ));
    }
    let mut bytes = fs::read(path).map_err(io_err(path))?;
    let text = String::from_utf8_lossy(&bytes);
    if text.contains(POD_CIDR) {
        let Some(cidr) = pod_cidr else {
            return Err(bad(format!(
                "holds {POD_CIDR}: give --peers and --node to fill it in"
            )));
        };
        bytes = text.replace(POD_CIDR, cidr).into_bytes();
    }
    check_config(&bytes).map_err(bad)?;
    Ok(bytes)
}

fn check_config(bytes: &[u8]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    for key in ["cniVersion", "name"] {
        match obj.get(key).and_then(Value::as_str) {
            Some(s) if !s.is_empty() => {}
            _ => return Err(format!("{key:?} is missing or not a string")),
        }
    }
    match obj.get("plugins") {
        Some(Value::Array(plugins)) if !plugins.is_empty() => {
            for (i, p) in plugins.iter().enumerate() {
                if p.get("type")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(format!("plugins[{i}] has no \"type\""));
                }
            }
            Ok(())
        }
        Some(_) => Err("\"plugins\" must be a non-empty list".into()),
        None if obj.get("type").and_then(Value::as_str).is_some() => Ok(()),
        None => Err("has neither \"plugins\" nor \"type\"".into()),
    }
}

/// Writes every new or changed item: temp file in the destination directory,
/// fsync, rename over the destination, fsync the directory.
pub fn apply(items: &[Item]) -> Result<(), InstallError> {
    for item in items.iter().filter(|i| i.state != State::Unchanged) {
        write_atomic(&item.src, &item.dst, item.mode)?;
    }
    Ok(())
}

fn write_atomic(src: &Source, dst: &Path, mode: u32) -> Result<(), InstallError> {
    let dir = dst.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.lanbridge-tmp.{}", std::process::id()));
    let written = (|| {
        fs::remove_file(&tmp).ok();
        match src {
            Source::File(path) => fs::copy(path, &tmp).map(drop),
            Source::Bytes(bytes) => fs::write(&tmp, bytes),
        }
        .map_err(io_err(&tmp))?;
        fs::set_permissions(&tmp, Permissions::from_mode(mode)).map_err(io_err(&tmp))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&tmp))?;
        fs::rename(&tmp, dst).map_err(io_err(dst))
    })();
    if let Err(e) = written {
        // The destination is untouched; leave no temp file behind either.
        fs::remove_file(&tmp).ok();
        return Err(e);
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFLIST: &str =
        r#"{"cniVersion": "1.0.0", "name": "pods", "plugins": [{"type": "lanbridge"}]}"#;

    struct Fixture {
        dir: tempfile::TempDir,
        pod_cidr: Option<&'static str>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join("bin-src"), b"\x7fELF pretend").unwrap();
            fs::write(dir.path().join("10-pods.conflist"), CONFLIST).unwrap();
            Fixture {
                dir,
                pod_cidr: None,
            }
        }
        fn p(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
        fn plan(&self) -> Result<Vec<Item>, InstallError> {
            let root = self.p("root");
            plan(
                &self.p("bin-src"),
                Some((&self.p("10-pods.conflist"), self.pod_cidr)),
                &under(&root, Path::new("/opt/cni/bin")),
                &under(&root, Path::new("/etc/cni/net.d")),
            )
        }
        fn states(&self) -> Vec<State> {
            self.plan().unwrap().iter().map(|i| i.state).collect()
        }
    }

    #[test]
    fn installs_then_leaves_identical_files_alone() {
        let f = Fixture::new();
        let items = f.plan().unwrap();
        assert_eq!(
            items[0].to_string(),
            format!("install {}", f.p("root/opt/cni/bin/lanbridge").display())
        );
        assert_eq!(items[1].dst, f.p("root/etc/cni/net.d/10-pods.conflist"));
        apply(&items).unwrap();
        let bin = f.p("root/opt/cni/bin/lanbridge");
        assert_eq!(fs::read(&bin).unwrap(), b"\x7fELF pretend");
        assert_eq!(
            fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let conf = f.p("root/etc/cni/net.d/10-pods.conflist");
        assert_eq!(
            fs::metadata(&conf).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(f.states(), [State::Unchanged, State::Unchanged]);
        // No temp files left.
        assert_eq!(fs::read_dir(f.p("root/opt/cni/bin")).unwrap().count(), 1);

        fs::write(f.p("10-pods.conflist"), CONFLIST.replace("pods", "pods2")).unwrap();
        assert_eq!(f.states(), [State::Unchanged, State::Changed]);
        fs::set_permissions(&bin, Permissions::from_mode(0o700)).unwrap();
        assert_eq!(f.states(), [State::Changed, State::Changed]);
    }

    #[test]
    fn bad_configs_are_refused_before_anything_is_written() {
        let f = Fixture::new();
        for (text, says) in [
            ("{", "not valid JSON"),
            ("[]", "not a JSON object"),
            (
                r#"{"cniVersion": "1.0.0", "plugins": [{"type": "x"}]}"#,
                "\"name\" is missing",
            ),
            (
                r#"{"cniVersion": "1.0.0", "name": "n", "plugins": []}"#,
                "non-empty",
            ),
            (
                r#"{"cniVersion": "1.0.0", "name": "n", "plugins": [{}]}"#,
                "plugins[0] has no \"type\"",
            ),
            (r#"{"cniVersion": "1.0.0", "name": "n"}"#, "neither"),
        ] {
            fs::write(f.p("10-pods.conflist"), text).unwrap();
            let e = f.plan().unwrap_err().to_string();
            assert!(
                e.contains("10-pods.conflist") && e.contains(says),
                "{text}: {e}"
            );
        }
        fs::write(f.p("x.txt"), CONFLIST).unwrap();
        let e = plan(
            &f.p("bin-src"),
            Some((&f.p("x.txt"), None)),
            &f.p("b"),
            &f.p("n"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(".conflist"), "{e}");
        assert!(!f.p("root").exists());
    }

    #[test]
    fn the_pod_subnet_is_filled_in() {
        let mut f = Fixture::new();
        let templ = r#"{"cniVersion": "1.0.0", "name": "pods", "plugins": [{"type": "lanbridge",
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "{{podCidr}}"}]]}}]}"#;
        fs::write(f.p("10-pods.conflist"), templ).unwrap();
        let e = f.plan().unwrap_err().to_string();
        assert!(e.contains("{{podCidr}}") && e.contains("--peers"), "{e}");
        f.pod_cidr = Some("10.244.2.0/24");
        let items = f.plan().unwrap();
        assert_eq!(
            items[1].src,
            Source::Bytes(templ.replace("{{podCidr}}", "10.244.2.0/24").into_bytes())
        );
        apply(&items).unwrap();
        assert_eq!(f.states(), [State::Unchanged, State::Unchanged]);
        f.pod_cidr = Some("10.244.3.0/24");
        assert_eq!(f.states(), [State::Unchanged, State::Changed]);
    }
}
