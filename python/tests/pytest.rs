//! Runs the Python test suite (`python/tests/test_*.py`) as part of `cargo test`.
//!
//! It makes a virtual environment under the target directory (`target/python-venv`, reused
//! when it already has what the suite needs), installs maturin, pyarrow, numpy, pandas and
//! pytest into it, builds and installs the extension with `maturin develop`, and runs
//! `python -m pytest`; the test fails if pytest does.
//!
//! Without a usable `python3` (3.10 or later) or without network access for the installs the
//! test says it skipped, unless `TICKERTABLE_REQUIRE_PYTHON=1` (CI), where that is a failure.
//! `TICKERTABLE_PYTHON` names another interpreter to make the environment with.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// What the suite needs in the environment; `pip install` gets these names.
const PACKAGES: &[&str] = &[
    "maturin>=1.5,<2",
    "pyarrow>=15",
    "numpy",
    "pandas",
    "pytest",
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| manifest_dir().join("..").join("target"), PathBuf::from)
}

fn required() -> bool {
    std::env::var("TICKERTABLE_REQUIRE_PYTHON").is_ok_and(|v| v == "1")
}

/// Skips (or, where Python is required, fails) with `why`.
fn skip(why: &str) {
    assert!(
        !required(),
        "TICKERTABLE_REQUIRE_PYTHON=1 and the Python suite cannot run: {why}"
    );
    eprintln!("skipped: the Python suite cannot run here: {why}");
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{shown} failed ({s})")),
        Err(e) => Err(format!("{shown} could not start: {e}")),
    }
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// Whether the environment already has everything.
fn venv_ready(venv: &Path) -> bool {
    venv.join("bin").join("maturin").exists()
        && Command::new(venv_python(venv))
            .args(["-c", "import pyarrow, numpy, pandas, pytest"])
            .status()
            .is_ok_and(|s| s.success())
}

/// Makes (or reuses) the environment.
fn make_venv(venv: &Path) -> Result<(), String> {
    if venv_ready(venv) {
        return Ok(());
    }
    let python = std::env::var("TICKERTABLE_PYTHON").unwrap_or_else(|_| "python3".into());
    let version_ok = Command::new(&python)
        .args(["-c", "import sys; sys.exit(sys.version_info < (3, 10))"])
        .status()
        .map_err(|e| format!("no {python}: {e}"))?;
    if !version_ok.success() {
        return Err(format!("{python} is older than 3.10"));
    }
    if !venv_python(venv).exists() {
        run(Command::new(&python).args(["-m", "venv"]).arg(venv))?;
    }
    run(Command::new(venv_python(venv))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PACKAGES))
}

#[test]
fn python_suite_passes() {
    let venv = target_dir().join("python-venv");
    let start = Instant::now();
    if let Err(why) = make_venv(&venv) {
        skip(&why);
        return;
    }
    let bin = venv.join("bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.clone()];
    paths.extend(std::env::split_paths(&path));
    let path = std::env::join_paths(paths).expect("invariant: paths from PATH and a venv");
    let env = |cmd: &mut Command| {
        cmd.current_dir(manifest_dir())
            .env("VIRTUAL_ENV", &venv)
            .env("PATH", &path)
            .env_remove("PYTHONHOME");
    };
    let mut build = Command::new(bin.join("maturin"));
    build.args(["develop", "--quiet"]);
    env(&mut build);
    run(&mut build).expect("maturin develop");
    eprintln!(
        "python suite: environment and build took {:?}",
        start.elapsed()
    );
    let mut pytest = Command::new(venv_python(&venv));
    pytest.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]);
    env(&mut pytest);
    run(&mut pytest).expect("the Python suite (pytest) failed");
}
