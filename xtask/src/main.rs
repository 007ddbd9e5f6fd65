//! Project tasks: `cargo xtask <command>` (alias in .cargo/config.toml).

mod ebpf;
mod image;
mod layers;
mod run;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use crate::run::{cargo, run};

#[derive(Parser)]
#[command(about = "lanbridge project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building and testing need (scripts/setup.sh; root).
    Setup,
    /// Build the eBPF object into target/bpf/lanbridge.bpf.o (nightly).
    BuildEbpf,
    /// Build the eBPF object, then the lanbridge binary, which embeds it.
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Build the static (musl) release binary and the container image from
    /// deploy/Containerfile with podman, offline (`FROM scratch`).
    Image {
        /// Name and tag of the image (podman prefixes `localhost/`).
        #[arg(long, default_value_t = image::default_tag())]
        tag: String,
        /// Also write the image to this file as an OCI archive.
        #[arg(long)]
        archive: Option<PathBuf>,
    },
    /// Set up, build, then run the workspace tests (root: they use netns).
    Test {
        /// Passed on to `cargo test --workspace`, e.g. `-- --nocapture`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Set up, build, then run the demo.
    Demo,
    /// rustfmt check and clippy with warnings denied.
    Lint,
    /// Build the release binary, run the Criterion micro-benchmarks and the
    /// side-by-side benchmark against the reference plugins (root; writes
    /// docs/bench/ and the README's Benchmarks section, or target/bench/quick).
    Bench {
        /// Short run (under 3 minutes).
        #[arg(long)]
        quick: bool,
        /// Passed on to lanbridge-bench, e.g. `-- --only latency`.
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    let root = workspace_root();
    match Cli::parse().task {
        Task::Setup => setup(&root),
        Task::BuildEbpf => ebpf::build(&root),
        Task::Build { release } => build(&root, release),
        Task::Image { tag, archive } => image::build(&root, &tag, archive.as_deref()),
        Task::Test { args } => {
            require_root("the tests create network namespaces")?;
            setup(&root)?;
            // The integration tests run target/debug/lanbridge; the image
            // test builds its image from the static one.
            build(&root, false)?;
            image::static_binary(&root)?;
            // Every failure of the run, not just the first test binary's.
            let mut test = vec!["test", "--workspace", "--no-fail-fast"];
            test.extend(args.iter().map(String::as_str));
            cargo(&root, &test)
        }
        Task::Demo => {
            setup(&root)?;
            build(&root, false)?;
            cargo(&root, &["run", "-p", "lanbridge-tests", "--bin", "demo"])
        }
        Task::Bench { quick, args } => bench(&root, quick, &args),
        Task::Lint => {
            cargo(&root, &["fmt", "--all", "--", "--check"])?;
            cargo(
                &root,
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            )?;
            layers::check(&root.join("cni-plugin/src"))?;
            ebpf::clippy(&root)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn setup(root: &Path) -> Result<()> {
    require_root("setup installs packages")?;
    run(root, "bash", [root.join("scripts/setup.sh").as_os_str()])
}

fn build(root: &Path, release: bool) -> Result<()> {
    ebpf::build(root)?;
    let mut args = vec!["build", "-p", "lanbridge"];
    if release {
        args.push("--release");
    }
    cargo(root, &args)
}

fn bench(root: &Path, quick: bool, args: &[String]) -> Result<()> {
    require_root("the benchmark creates network namespaces")?;
    setup(root)?;
    build(root, true)?;
    let (warm_up, measure) = if quick { ("0.5", "1") } else { ("1", "3") };
    cargo(
        root,
        &[
            "bench",
            "-p",
            "lanbridge-bench",
            "--bench",
            "micro",
            "--",
            "--noplot",
            "--warm-up-time",
            warm_up,
            "--measurement-time",
            measure,
        ],
    )?;
    let mut run = vec!["run", "--release", "-p", "lanbridge-bench", "--"];
    if quick {
        run.push("--quick");
    }
    run.extend(args.iter().map(String::as_str));
    // Ctrl-C reaches the benchmark too, which removes what it made and
    // exits; xtask waits for that instead of dying first.
    ignore_sigint();
    cargo(root, &run)
}

/// A no-op SIGINT handler for this process (a handler, unlike SIG_IGN, is
/// not inherited by the children it execs).
fn ignore_sigint() {
    extern "C" fn noop(_: libc::c_int) {}
    // SAFETY: installs an async-signal-safe handler that does nothing.
    unsafe {
        libc::signal(libc::SIGINT, noop as *const () as libc::sighandler_t);
    }
}

fn require_root(why: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("this task must run as root: {why}");
    }
    Ok(())
}
