//! The Python the interop test runs: a virtual environment under `target/` that the
//! test creates on first use (`python3 -m venv`, then `pip install` of the pinned
//! `pyzmq` and `protobuf` from PyPI) and reuses afterwards, so `cargo test` needs
//! nothing installed beforehand but `python3` itself.
//!
//! `TERN_PYTHON` names an interpreter to use instead (it must import `zmq` and
//! `google.protobuf`); nothing is installed then.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The client's dependencies, pinned so every machine runs the same client.
pub(crate) const PINS: [&str; 2] = ["pyzmq==26.2.0", "protobuf==5.29.3"];

/// What the interop client imports.
const IMPORTS: &str = "import zmq, google.protobuf";

/// How long creating the environment and installing into it may take, each.
const SETUP_LIMIT: Duration = Duration::from_secs(300);

/// Where the environment lives: under cargo's per-target temporary directory
/// (`target/tmp`), named for the pins so a change of pins builds a new one.
fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(venv_name())
}

fn venv_name() -> String {
    format!("interop-venv-{}", PINS.join("-").replace("==", "-"))
}

fn venv_python(dir: &Path) -> PathBuf {
    dir.join("bin").join("python")
}

/// Whether `python` runs and imports the client's modules.
fn imports_modules(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", IMPORTS])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` to completion within [`SETUP_LIMIT`]; its output (both streams) on
/// failure. The child is killed and reaped when it runs past the limit.
fn run_bounded(what: &str, cmd: &mut Command) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    let mut waited = Duration::ZERO;
    let step = Duration::from_millis(50);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if waited >= SETUP_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: still running after {SETUP_LIMIT:?}"));
            }
            Ok(None) => {
                std::thread::sleep(step);
                waited += step;
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n--- stdout\n{}--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The interpreter for the interop client, set up if needed; an error says what is
/// missing and how to fix it.
pub(crate) fn interop_python() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("TERN_PYTHON")
        && !p.is_empty()
    {
        let p = PathBuf::from(p);
        return if imports_modules(&p) {
            Ok(p)
        } else {
            Err(format!(
                "TERN_PYTHON={} does not import zmq and google.protobuf (pip install {})",
                p.display(),
                PINS.join(" ")
            ))
        };
    }
    let dir = venv_dir();
    if imports_modules(&venv_python(&dir)) {
        return Ok(venv_python(&dir));
    }
    let base = Path::new("python3");
    if Command::new(base)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return Err(
            "python3 is not on the PATH: the interop test needs Python 3 (3.8 or \
                    newer, with the venv module) to run its client; install it, point \
                    TERN_PYTHON at an interpreter with pyzmq and protobuf, or set \
                    TERN_SKIP_INTEROP=1 to skip this test"
                .into(),
        );
    }
    // Built beside the final place and renamed into it, so a concurrent run of the
    // same test never sees a half-installed environment.
    let building = dir.with_file_name(format!("{}.building-{}", venv_name(), std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let built = run_bounded(
        "python3 -m venv",
        Command::new(base).arg("-m").arg("venv").arg(&building),
    )
    .and_then(|()| {
        run_bounded(
            "pip install",
            Command::new(venv_python(&building))
                .args(["-m", "pip", "install", "--no-input", "--quiet"])
                .args(["--disable-pip-version-check"])
                .args(PINS),
        )
    });
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&building);
        return Err(format!(
            "setting up the interop test's Python in {} failed: {e}\n(the test needs \
             python3 with the venv module, e.g. Debian's python3-venv, and PyPI; or point \
             TERN_PYTHON at an interpreter with {}, or set TERN_SKIP_INTEROP=1)",
            dir.display(),
            PINS.join(" ")
        ));
    }
    // A stale environment that no longer imports (moved, broken) is replaced.
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::rename(&building, &dir).is_err() {
        // Another run finished first: use its environment.
        let _ = std::fs::remove_dir_all(&building);
    }
    let python = venv_python(&dir);
    if imports_modules(&python) {
        Ok(python)
    } else {
        Err(format!(
            "the virtual environment {} was set up but does not import zmq and \
             google.protobuf",
            dir.display()
        ))
    }
}
