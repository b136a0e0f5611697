//! The operator's view of a real container process: the commands that talk to its
//! admin listener (`components`, `top`, `trace-flow`, `logs --level`), the debug
//! switch they turn on (every message of the flow logged, off by itself), and the
//! status page at `/`, rendered in headless Chromium when it is installed (Debian's
//! `chromium`): skipped with a message otherwise, unless `TERN_REQUIRE_CHROMIUM=1`
//! (CI), which turns the skip into a failure. The page's screenshot goes to
//! `TERN_SCREENSHOT_DIR` (CI's artifacts) or the system's temporary directory.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use tern::app::App;

mod echo;
use echo::admin_http::get;
use echo::{AdminContainer, Echo, Ping, Reaper, client_node};

fn app() -> App {
    echo::app("ops-test")
}

/// Runs `cmd` to its end, killed after `limit`; its stdout, or `None` if it did not
/// end in time or failed.
fn run_bounded(mut cmd: Command, limit: Duration) -> Option<String> {
    let mut child = Reaper(Some(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?,
    ));
    let c = child.0.as_mut()?;
    let step = Duration::from_millis(50);
    for _ in 0..=limit.as_millis() / step.as_millis() {
        if let Ok(Some(status)) = c.try_wait() {
            let mut out = String::new();
            c.stdout.take()?.read_to_string(&mut out).ok()?;
            child.0 = None;
            return status.success().then_some(out);
        }
        std::thread::sleep(step);
    }
    None // the Reaper kills it
}

/// The status page in headless Chromium: the DOM after its script ran, and a
/// screenshot. Skipped (with a message) without Chromium unless CI requires it.
fn status_page_in_chromium(admin: SocketAddr) {
    let required = std::env::var("TERN_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    let browser = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(browser) = browser else {
        assert!(
            !required,
            "TERN_REQUIRE_CHROMIUM=1 but no chromium is installed (apt-get install chromium)"
        );
        eprintln!(
            "SKIPPED: the status page in headless Chromium (no `chromium` on PATH; apt-get install chromium)"
        );
        return;
    };
    let url = format!("http://{admin}/");
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--virtual-time-budget=4000",
    ];
    let mut dump = Command::new(browser);
    dump.args(common).arg("--dump-dom").arg(&url);
    let dom =
        run_bounded(dump, Duration::from_secs(60)).expect("chromium --dump-dom ended in time");
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's script filled it: {dom}"
    );
    assert!(dom.contains("<span id=\"node\">n1</span>"), "{dom}");
    assert!(dom.contains("<td>echo</td>"), "the components table: {dom}");
    assert!(dom.contains("<td>client</td>"), "the members table: {dom}");
    assert!(
        dom.contains("handle echo test.v1.Ping"),
        "the spans table: {dom}"
    );

    let dir =
        std::env::var_os("TERN_SCREENSHOT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let png = dir.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    let mut shot = Command::new(browser);
    shot.args(common)
        .arg("--window-size=1200,1100")
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url);
    run_bounded(shot, Duration::from_secs(60)).expect("chromium --screenshot ended in time");
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "a real PNG"
    );
    eprintln!("status page screenshot: {}", png.display());
}

#[test]
fn operator_commands_debug_flow_and_status_page_on_a_real_container() {
    const CHILD: &str = "TERN_TEST_OPS_NODE_CONFIG";
    if let Ok(config) = std::env::var(CHILD) {
        let code = app().main_from(["app", "node", "--config", &config, "--log-level", "warn"]);
        assert_eq!(code, ExitCode::SUCCESS);
        return;
    }
    let container = AdminContainer::write("tern-ops", "");
    let (node_port, client_port, admin) =
        (container.node_port, container.client_port, container.admin);
    let config = container.config.clone();
    let cfg = config.to_str().expect("utf-8 path").to_owned();
    let mut child = container.spawn(
        "operator_commands_debug_flow_and_status_page_on_a_real_container",
        CHILD,
        Stdio::piped(),
    );

    let asks = |n: u32, first: u32| {
        tern::Runtime::new().expect("runtime").block_on(async {
            let node = client_node(client_port, node_port);
            let echo = node.lookup::<Echo>("echo");
            let mut ok = 0;
            for i in first..first + n {
                if echo.ask(Ping(i)).timeout(Duration::from_secs(20)).await == Ok(i) {
                    ok += 1;
                }
            }
            node.shutdown();
            ok
        })
    };
    assert_eq!(asks(5, 0), 5, "the container answers");

    // `components` and `top` answer; `/components` lists echo on n1.
    let run = |args: &[&str]| app().main_from(["app"].iter().chain(args).copied());
    assert_eq!(run(&["components", "--config", &cfg]), ExitCode::SUCCESS);
    assert_eq!(
        run(&["top", "--config", &cfg, "--count", "2", "--every", "100ms"]),
        ExitCode::SUCCESS
    );
    let components: serde_json::Value =
        serde_json::from_str(&get(admin, "/components")).expect("JSON");
    assert_eq!(components[0]["name"], "echo");
    assert_eq!(components[0]["hosts"][0]["node"], "n1");
    let status: serde_json::Value = serde_json::from_str(&get(admin, "/status")).expect("JSON");
    assert_eq!(status["ask_latency_ms"]["count"], 0, "n1 made no asks");
    assert!(get(admin, "/metrics").contains("tern_ask_latency_seconds_count{node=\"n1\"} 0"));

    // A debug switch for 2 s: the flow's messages are logged, then it ends by itself.
    assert_eq!(
        run(&[
            "trace-flow",
            "echo",
            "--for",
            "2s",
            "--budget",
            "3",
            "--config",
            &cfg
        ]),
        ExitCode::SUCCESS
    );
    let on: serde_json::Value = serde_json::from_str(&get(admin, "/debug")).expect("JSON");
    assert_eq!(on[0]["target"], "echo", "{on}");
    assert_eq!(on[0]["budget"], 3, "{on}");
    assert_eq!(asks(5, 100), 5);
    std::thread::sleep(Duration::from_millis(3500));
    let off: serde_json::Value = serde_json::from_str(&get(admin, "/debug")).expect("JSON");
    assert_eq!(off, serde_json::json!([]), "off by itself");
    // Refused, typed: a target that is no target, a zero duration.
    assert_ne!(
        run(&["trace-flow", "a b", "--config", &cfg]),
        ExitCode::SUCCESS
    );
    assert_ne!(
        run(&["trace-flow", "echo", "--for", "0s", "--config", &cfg]),
        ExitCode::SUCCESS
    );
    // A named flow: `flow:NAME` (its requests carry no other flow here, so nothing
    // is logged); an empty flow name is refused.
    assert_eq!(
        run(&["trace-flow", "flow:orders", "--for", "1s", "--config", &cfg]),
        ExitCode::SUCCESS
    );
    let on: serde_json::Value = serde_json::from_str(&get(admin, "/debug")).expect("JSON");
    assert_eq!(on[0]["target"], "flow:orders", "{on}");
    assert_ne!(
        run(&["trace-flow", "flow:", "--config", &cfg]),
        ExitCode::SUCCESS
    );

    // `logs --level`: the node logged at warn; debug now, at once.
    assert_ne!(
        run(&["logs", "--level", "info,[", "--config", &cfg]),
        ExitCode::SUCCESS
    );
    assert_eq!(
        run(&["logs", "--level", "debug", "--config", &cfg]),
        ExitCode::SUCCESS
    );
    let _ = get(admin, "/status"); // logged at debug: "admin request served"

    status_page_in_chromium(admin);

    let c = child.0.as_mut().expect("child");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let mut log = String::new();
    c.stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("the node's log");
    let status = c.wait().expect("wait");
    child.0 = None;
    assert!(status.success(), "the node exited with {status}: {log}");
    let _ = std::fs::remove_file(config);

    let flow: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tern.debug.message"))
        .collect();
    assert_eq!(
        flow.len(),
        3,
        "the budget: 3 of the 5 asks are recorded: {log}"
    );
    assert!(
        flow.iter()
            .all(|l| l.contains("echo") && l.contains("test.v1.Ping")),
        "{log}"
    );
    assert!(log.contains("tern.debug.switched_off"), "{log}");
    assert!(log.contains("tern.log.filter_changed"), "{log}");
    assert!(
        log.contains("admin request served"),
        "debug lines after logs --level: {log}"
    );
}
