//! The getting-started application (`examples/kv.rs`, shown in
//! `docs/getting-started.md`) runs as the guide says: in one process, on the simulator
//! through a partition (over a sweep of seeds, replaying exactly), and as three
//! processes over loopback. The guide's code is the example's code, verbatim.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[allow(dead_code)]
#[path = "../kv.rs"]
mod kv;

const GUIDE: &str = include_str!("../../docs/getting-started.md");
const SOURCE: &str = include_str!("../kv.rs");

#[test]
fn in_one_process_a_put_is_read_back() {
    assert_eq!(kv::local().unwrap(), Some("hello".to_owned()));
}

#[test]
fn on_the_simulator_the_partition_fails_asks_and_the_heal_ends_it() {
    for seed in 0..20 {
        let lines = kv::simulate(seed).unwrap();
        assert_eq!(lines.len(), 7, "seed {seed}: {lines:#?}");
        assert_eq!(lines[0], "t=0 s  put: Ok(None)", "seed {seed}");
        assert_eq!(lines[1], r#"t=1 s  get: Ok(Some("hello"))"#, "seed {seed}");
        // Cut from 1.9 s to 3.9 s: the asks at 2 s and 3 s fail with a typed error.
        for line in &lines[2..4] {
            assert!(
                line.contains("get: Err(") && line.ends_with("(unavailable: retry later)"),
                "seed {seed}: {lines:#?}"
            );
        }
        // Healed: the store answers again, with the value it kept.
        for line in &lines[5..] {
            assert!(
                line.ends_with(r#"get: Ok(Some("hello"))"#),
                "seed {seed}: {lines:#?}"
            );
        }
        assert_eq!(kv::simulate(seed).unwrap(), lines, "seed {seed} replays");
    }
}

/// The entry point of the child processes of [`as_three_processes`]: runs the kv
/// command line in `KV_CHILD_ARGS` (tab-separated) when set.
#[test]
#[ignore = "run by as_three_processes in its child processes"]
fn kv_child_process() {
    let args = std::env::var("KV_CHILD_ARGS").expect("KV_CHILD_ARGS names the command line");
    let mut argv = vec!["kv".to_owned()];
    argv.extend(args.split('\t').map(str::to_owned));
    kv::run(&argv).unwrap();
}

fn child(args: &[&str]) -> Child {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--ignored", "--exact", "kv_child_process", "--nocapture"])
        .env("KV_CHILD_ARGS", args.join("\t"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a child process")
}

/// Waits up to 30 s for `c`; its success and output. Killed and reaped past that.
fn finish(mut c: Child) -> (bool, String) {
    let mut waited = Duration::ZERO;
    while c.try_wait().expect("poll the child").is_none() {
        if waited > Duration::from_secs(30) {
            let _ = c.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        waited += Duration::from_millis(20);
    }
    let out = c.wait_with_output().expect("the child's output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Kills the store if the test fails before stopping it.
struct Guard(Option<Child>);
impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    tern::transport::loopback_port().expect("a free port")
}

#[test]
fn as_three_processes() {
    // The committed files, on a free port instead of the fixed one.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port().to_string();
    let store_toml = dir.join("store.toml");
    let client_toml = dir.join("client.toml");
    for (name, path) in [("store", &store_toml), ("client", &client_toml)] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("kv/{name}.toml")),
        )
        .unwrap();
        assert!(text.contains("47301"), "{name}.toml moved off port 47301");
        std::fs::write(path, text.replace("47301", &port)).unwrap();
    }
    let (store, client) = (store_toml.to_str().unwrap(), client_toml.to_str().unwrap());
    let mut guard = Guard(Some(child(&[
        "node",
        "--config",
        store,
        "--log-level",
        "warn",
    ])));

    let (ok, out) = finish(child(&["put", "--config", client, "greeting", "hello"]));
    assert!(ok && out.contains("greeting = None"), "put: {out}");
    let (ok, out) = finish(child(&["get", "--config", client, "greeting"]));
    assert!(
        ok && out.contains(r#"greeting = Some("hello")"#),
        "get: {out}"
    );

    // SIGTERM: the store stops cleanly and exits 0.
    let store = guard.0.take().unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(store.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let (ok, out) = finish(store);
    assert!(ok, "the store did not exit cleanly: {out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_guide_shows_the_example_verbatim() {
    let mut shown = 0;
    for part in SOURCE.split("// ANCHOR: ").skip(1) {
        let (name, rest) = part.split_once('\n').unwrap();
        let code = rest.split("// ANCHOR_END:").next().unwrap();
        assert!(
            GUIDE.contains(&format!("```rust\n{code}```")),
            "docs/getting-started.md does not show the `{name}` part of examples/kv.rs verbatim"
        );
        shown += 1;
    }
    assert_eq!(shown, 5);
    // And the files and commands it names exist.
    for file in ["examples/kv/store.toml", "examples/kv/client.toml"] {
        assert!(GUIDE.contains(file), "the guide does not name {file}");
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(file.trim_start_matches("examples/"))
                .exists()
        );
    }
}
