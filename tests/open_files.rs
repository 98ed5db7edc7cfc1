//! Every viewer holds a socket: the server raises its soft limit on open files to the hard
//! limit at start (a soft limit of 1,024 is a common default and would cap a node near 1,000
//! viewers), and reports open files against that limit on `/metrics`. It also turns
//! transparent huge pages off for itself (memory in 2 MiB steps; BENCHMARKS.md, Soak).

mod common;

use common::process::Served;

/// The rest of the line of `/proc/PID/FILE` that starts with `field`.
fn proc_line(pid: u32, file: &str, field: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/{file}:\n{text}"))
        .to_string()
}

fn soft_limit_of(pid: u32) -> u64 {
    let line = proc_line(pid, "limits", "Max open files");
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// `THP_enabled` of `/proc/PID/status`: 0 once the process turned huge pages off.
fn huge_pages_of(pid: u32) -> String {
    proc_line(pid, "status", "THP_enabled:").trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_raises_its_open_file_limit_turns_huge_pages_off_and_reports_open_files() {
    // This test binary runs this one test: the lowered limit is inherited by the server only.
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    assert!(
        hard > 1024,
        "this test needs a hard limit above 1024, not {hard}"
    );
    rlimit::Resource::NOFILE.set(1024, hard).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Served::start([
        "--dev".into(),
        "--data-dir".into(),
        std::ffi::OsString::from(dir.path()),
    ])
    .await;
    assert_eq!(soft_limit_of(server.child.id()), hard);
    assert_eq!(
        huge_pages_of(std::process::id()),
        "1",
        "this test needs a kernel with transparent huge pages, left on for this process"
    );
    assert_eq!(huge_pages_of(server.child.id()), "0");

    let metrics = common::rtc_client::http(
        ([127, 0, 0, 1], server.http).into(),
        "GET",
        "/metrics",
        &[],
        "",
    )
    .await
    .body;
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("process_max_fds"), hard);
    let open = value("process_open_fds");
    assert!((5..1024).contains(&open), "{open} open files");
    server.child.kill().unwrap();
}
